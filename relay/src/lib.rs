#![doc = include_str!("../README.md")]

pub mod braid;
pub mod cell;
pub mod circuit;
pub mod error;
pub mod handshake;
pub mod layer;
pub mod measure;
pub mod msg;
pub mod ratelimit;
#[cfg(feature = "driver")]
pub mod service;
#[cfg(feature = "driver")]
pub mod shared;
pub mod stats;

pub use cell::{BODY_LEN, CELL_LEN, Cell, CellKind, DestroyReason};
pub use circuit::{ClientCircuit, HopCircuit};
pub use error::CellError;
#[cfg(feature = "driver")]
pub use error::RelayError;
pub use handshake::{AcceptedHop, CircuitRequest, HopSpec, NextHop, accept_create};
pub use msg::{EndReason, RelayMsg, StreamId, Target};

/// Most hops a circuit may have.
pub const MAX_HOPS: usize = 8;
