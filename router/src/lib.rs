#![doc = include_str!("../README.md")]

#[cfg(feature = "driver")]
pub mod circuit;
#[cfg(feature = "driver")]
pub mod error;
pub mod guards;
pub mod http_connect;
#[cfg(feature = "driver")]
pub mod identities;
#[cfg(feature = "driver")]
pub mod manager;
pub mod path;
#[cfg(feature = "driver")]
pub mod proxy;
pub mod socks5;
#[cfg(feature = "driver")]
pub mod stats;
#[cfg(feature = "driver")]
pub mod strands;

#[cfg(feature = "driver")]
pub use error::RouterError;
#[cfg(feature = "driver")]
pub use manager::{
    CircuitManager, CircuitSummary, REFILL_WAIT, Refill, RouterSettings, StrandActivity,
    StreamRecord,
};
#[cfg(feature = "driver")]
pub use proxy::ProxySettings;
#[cfg(feature = "driver")]
pub use stats::RouterStats;
