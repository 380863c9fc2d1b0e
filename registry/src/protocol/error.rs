//! Why a `/braid/registry/1` frame could not be read. Texts name the field or rule, never a key
//! or a client address, so a server can send them back in a refusal and log them.

use braid_directory::snapshot::SnapshotError;

use super::PROTOCOL_VERSION;

/// Everything that makes a registry protocol frame unreadable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// More bytes are needed: a strict prefix of a frame.
    #[error("incomplete registry frame: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The version byte is not one this build speaks.
    #[error(
        "unsupported registry protocol version {0} (this node speaks version {PROTOCOL_VERSION})"
    )]
    BadVersion(u8),
    /// The header announces a body longer than its kind allows; refused before reading it.
    #[error(
        "registry frame of kind {kind:#04x} announces {len} body bytes, over its limit of {max}"
    )]
    Oversized {
        /// The kind byte.
        kind: u8,
        /// The announced body length.
        len: usize,
        /// [`max_body_len`](super::max_body_len) of the kind.
        max: usize,
    },
    /// The frame or a field breaks the format (trailing bytes, wrong direction, bad text ...).
    #[error("malformed registry frame: {what}")]
    Malformed {
        /// Which field or rule.
        what: &'static str,
    },
    /// A `Publish` body is not a valid signed descriptor (its signature is checked).
    #[error("bad descriptor in the request: {0}")]
    BadDescriptor(braid_directory::Error),
    /// A snapshot body does not decode (structure only; signatures are checked later).
    #[error("bad snapshot in the frame: {0}")]
    BadSnapshot(SnapshotError),
}

impl ProtocolError {
    /// A codec read error as a protocol error, keeping what was being read: running out of a
    /// stream prefix is [`ProtocolError::Incomplete`] with the exact shortfall, anything else
    /// [`ProtocolError::Malformed`] naming the field.
    pub(crate) fn from_codec(e: braid_codec::Error) -> Self {
        match e.needed() {
            Some(needed) => ProtocolError::Incomplete { needed },
            None => ProtocolError::Malformed { what: e.what() },
        }
    }
}
