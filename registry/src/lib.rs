#![doc = include_str!("../README.md")]

mod codec;
pub mod descriptor;
pub mod directory;
mod error;
pub mod policy;
pub mod protocol;
#[cfg(feature = "raft")]
pub mod raft;
#[cfg(feature = "service")]
pub mod service;
pub mod snapshot;
pub mod state;
#[cfg(feature = "store")]
pub mod store;

pub use descriptor::{DESCRIPTOR_VERSION, Descriptor, SignedDescriptor};
pub use directory::Directory;
pub use error::Error;
pub use policy::{AddrPattern, ExitPolicy, ExitRule};
pub use snapshot::{
    RegistrySet, SignedSnapshot, Snapshot, SnapshotError, VerifiedSnapshot, accept_newer,
};
