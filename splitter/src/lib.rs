#![doc = include_str!("../README.md")]

pub mod config;
pub mod erasure;
pub mod error;
#[cfg(feature = "harness")]
pub mod harness;
pub mod key;
pub mod receiver;
mod rng;
pub mod scheduler;
pub mod sender;
pub mod stats;
pub mod wire;

pub use config::Config;
pub use erasure::ErasureParams;
pub use error::Error;
pub use key::{DirectionKeys, FragmentKey};
pub use receiver::{Received, Receiver};
pub use sender::{AckVerdict, SendAction, Sender};
pub use stats::{DropCounts, DropReason, ReceiverStats, SenderStats, StrandStats};
pub use wire::{StrandId, StreamId};
