#![doc = include_str!("../README.md")]

mod codec;
pub mod descriptor;
pub mod directory;
mod error;
pub mod policy;

pub use descriptor::{DESCRIPTOR_VERSION, Descriptor, SignedDescriptor};
pub use directory::Directory;
pub use error::Error;
pub use policy::{AddrPattern, ExitPolicy, ExitRule};
