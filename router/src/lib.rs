#![doc = include_str!("../README.md")]

pub mod circuit;
pub mod error;
pub mod manager;
pub mod path;
pub mod proxy;
pub mod socks5;

pub use error::RouterError;
pub use manager::{CircuitManager, RouterSettings};
pub use proxy::ProxySettings;
