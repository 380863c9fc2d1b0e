#![doc = include_str!("../README.md")]

pub mod descriptor;
pub mod directory;
mod error;
pub mod listing;
pub mod policy;
pub mod snapshot;

pub use descriptor::{DESCRIPTOR_VERSION, Descriptor, SignedDescriptor, UncheckedDescriptor};
pub use directory::Directory;
pub use error::Error;
pub use listing::{ListedRelay, ListingInput, ListingParams, RelayFlags, build_listing};
pub use policy::{AddrPattern, ExitPolicy, ExitRule};
pub use snapshot::{
    RegistrySet, SignedSnapshot, Snapshot, SnapshotError, VerifiedSnapshot, accept_newer,
};
