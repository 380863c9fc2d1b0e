//! What can go wrong in the registry service: setup, one exchange with a peer, a refused
//! snapshot. Every variant names the peer or the setting concerned; none carries a key or an
//! address. Texts are meant to be logged as they are.

use std::path::PathBuf;
use std::time::Duration;

use braid_directory::snapshot::SnapshotError;
use braid_transport::PeerId;

#[cfg(feature = "server")]
use super::ReplicaError;
use crate::protocol::{ProtocolError, Refusal};

/// Everything that can go wrong in the registry service.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A setting is out of range.
    #[error("registry service setting {field}: {reason}")]
    Config {
        /// The setting, as `section.name`.
        field: &'static str,
        /// The allowed range.
        reason: &'static str,
    },
    /// The registry list (or this node's place in it) is unusable.
    #[error("registry list: {reason}")]
    Registries {
        /// What is wrong.
        reason: String,
    },
    /// The local transport refused (already serving the protocol, shut down, bad address ...).
    #[error("transport, while {context}: {source}")]
    Transport {
        /// What the service was doing.
        context: &'static str,
        /// What the transport said.
        source: braid_transport::Error,
    },
    /// No stream to the peer (unreachable, does not serve `/braid/registry/1` ...).
    #[error("{peer}: no stream: {source}")]
    Stream {
        /// The peer.
        peer: Box<PeerId>,
        /// What the transport said.
        source: braid_transport::Error,
    },
    /// Reading or writing the stream failed (reset, closed early).
    #[error("{peer}: {context}: {source}")]
    Io {
        /// The peer.
        peer: Box<PeerId>,
        /// What was being done.
        context: &'static str,
        /// What the stream said.
        source: std::io::Error,
    },
    /// The exchange did not finish in time.
    #[error("{peer}: no answer within {after:?}")]
    Timeout {
        /// The peer.
        peer: Box<PeerId>,
        /// The bound.
        after: Duration,
    },
    /// The peer's answer does not decode.
    #[error("{peer}: bad answer: {source}")]
    Protocol {
        /// The peer.
        peer: Box<PeerId>,
        /// What the codec said.
        source: ProtocolError,
    },
    /// The peer answered something that does not fit the request.
    #[error("{peer}: unexpected answer: {what}")]
    Unexpected {
        /// The peer.
        peer: Box<PeerId>,
        /// What came back.
        what: String,
    },
    /// The peer refused the request.
    #[error("{peer} refused: {refusal}")]
    Refused {
        /// The peer.
        peer: Box<PeerId>,
        /// Its code and text.
        refusal: Refusal,
    },
    /// A fetched directory snapshot was refused; the last good one stays in use.
    #[error("directory snapshot from {peer} refused: {source}")]
    Snapshot {
        /// The source it came from.
        peer: Box<PeerId>,
        /// Why (too few signatures, a forged descriptor, stale, older than the one in use ...).
        source: SnapshotError,
    },
    /// No snapshot was built or not enough registries signed it; the served one stays.
    #[error("no new directory snapshot: {reason}")]
    Build {
        /// Why (the build error, or who signed and why the others did not).
        reason: String,
    },
    /// `fetch_from` was given a peer that is not one of the feed's sources.
    #[error("{peer} is not a configured directory source")]
    UnknownSource {
        /// The peer.
        peer: Box<PeerId>,
    },
    /// No registry listed the descriptor; one entry per registry tried.
    #[error("no registry listed the descriptor: {}", .attempts.join("; "))]
    PublishFailed {
        /// `"<peer>: <why>"` for each registry, in the order tried.
        attempts: Vec<String>,
        /// Whether any registry answered (and refused); false when none could be reached or
        /// none speaks `/braid/registry/1` yet (registries still starting).
        answered: bool,
    },
    /// The replicated state failed.
    #[cfg(feature = "server")]
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    /// The served snapshot could not be written to or read from disk.
    #[error("snapshot file {path}: {source}")]
    Persist {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

impl ServiceError {
    /// The refusal, if the peer refused.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ServiceError::Refused { refusal, .. } => Some(refusal),
            _ => None,
        }
    }
}
