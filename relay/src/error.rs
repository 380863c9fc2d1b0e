//! The relay crate's error types: one enum for the sans-IO core, one for the driver.

#[cfg(feature = "driver")]
use crate::cell::DestroyReason;

/// Errors of the cell, layer, message and handshake codecs (the sans-IO core).
#[non_exhaustive]
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CellError {
    /// More bytes are needed to parse the item.
    #[error("incomplete: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The version byte is not one this implementation speaks.
    #[error("unsupported cell version {0}")]
    BadVersion(u8),
    /// Content does not fit in a cell body.
    #[error("content of {len} bytes does not fit in {max}")]
    ContentTooLong {
        /// Content length.
        len: usize,
        /// Space available.
        max: usize,
    },
    /// A field is malformed.
    #[error("malformed {what}")]
    Malformed {
        /// Which field or structure.
        what: &'static str,
    },
    /// An onion layer failed to authenticate: the cell was altered, replayed or reordered.
    #[error("onion layer {layer} failed authentication (altered, replayed or reordered cell)")]
    Integrity {
        /// Which layer (1 = first hop) failed, as seen by the party that checked.
        layer: usize,
    },
    /// The per-direction cell counter would wrap; the circuit must be closed.
    #[error("cell counter exhausted")]
    CounterExhausted,
    /// The Noise handshake failed.
    #[error("handshake failed at {stage}: {reason}")]
    Handshake {
        /// Which step failed.
        stage: &'static str,
        /// What the Noise library said.
        reason: String,
    },
    /// A circuit length outside the supported range.
    #[error("unsupported number of hops {0} (1..={max})", max = crate::MAX_HOPS)]
    BadHopCount(usize),
    /// A relay message that is not allowed in this place.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
}

impl CellError {
    /// A codec read error as a cell error, keeping what was being read: running out of a
    /// stream prefix is [`CellError::Incomplete`] (with the exact shortfall), anything else is
    /// [`CellError::Malformed`] naming the field.
    pub(crate) fn read(e: braid_codec::Error) -> Self {
        match e.needed() {
            Some(needed) => CellError::Incomplete { needed },
            None => CellError::Malformed { what: e.what() },
        }
    }

    /// A codec write error as a cell error: a field too long for its length prefix is
    /// [`CellError::ContentTooLong`] with the limit it broke.
    pub(crate) fn write(e: braid_codec::WriteError) -> Self {
        match e {
            braid_codec::WriteError::TooLong { len, max, .. } => {
                CellError::ContentTooLong { len, max }
            }
            _ => CellError::Malformed { what: e.what() },
        }
    }
}

/// Errors of the relay driver (I/O around the core).
#[cfg(feature = "driver")]
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// A protocol error from the core.
    #[error("protocol: {0}")]
    Protocol(#[from] CellError),
    /// Reading or writing a circuit-hop stream failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The transport failed (dial, stream open).
    #[error("transport: {0}")]
    Transport(#[from] braid_transport::Error),
    /// The circuit was destroyed by a peer.
    #[error("circuit destroyed: {0:?}")]
    Destroyed(DestroyReason),
    /// A timeout elapsed.
    #[error("timed out while {0}")]
    Timeout(&'static str),
    /// A configured limit was reached.
    #[error("limit reached: {0}")]
    Limit(&'static str),
    /// Bad configuration.
    #[error("config: {0}")]
    Config(String),
}
