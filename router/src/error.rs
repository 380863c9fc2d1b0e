//! The router crate's error type.

use braid_relay::EndReason;

use crate::socks5::ReplyCode;

/// What can go wrong on the client side.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The onion protocol failed.
    #[error("circuit protocol: {0}")]
    Cell(#[from] braid_relay::CellError),
    /// The relay driver failed.
    #[error("circuit I/O: {0}")]
    Relay(#[from] braid_relay::RelayError),
    /// The transport failed (dial or stream open to the guard).
    #[error("transport: {0}")]
    Transport(#[from] braid_transport::Error),
    /// The circuit could not be built.
    #[error("circuit build failed: {0}")]
    BuildFailed(String),
    /// No usable path.
    #[error("no path: {0}")]
    NoPath(#[from] crate::path::PathError),
    /// No relay in the directory will exit to this target.
    #[error("no exit allows the target port {0}")]
    NoExit(u16),
    /// The circuit ended.
    #[error("circuit closed")]
    CircuitClosed,
    /// The exit refused the stream.
    #[error("exit ended the stream: {0:?}")]
    StreamRefused(EndReason),
    /// A timeout elapsed.
    #[error("timed out {0}")]
    Timeout(&'static str),
    /// A limit was reached.
    #[error("limit reached: {0}")]
    Limit(&'static str),
    /// No primary entry guard is usable (none sampled, or none listed).
    #[error("no usable entry guard")]
    NoGuard,
    /// The directory has no usable relays.
    #[error("directory: {0}")]
    Directory(String),
}

impl RouterError {
    /// Whether another attempt on a fresh circuit may succeed: the circuit or its build failed
    /// (a relay died, a link dropped, a handshake timed out). Refusals, policy, missing paths and
    /// limits are not transient: retrying would give the same answer.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RouterError::Cell(_)
                | RouterError::Relay(_)
                | RouterError::Transport(_)
                | RouterError::BuildFailed(_)
                | RouterError::CircuitClosed
        )
    }

    /// The SOCKS5 reply code that tells an app what happened.
    pub fn reply_code(&self) -> ReplyCode {
        match self {
            RouterError::NoExit(_) => ReplyCode::NotAllowed,
            RouterError::StreamRefused(r) => match r {
                EndReason::ExitPolicy => ReplyCode::NotAllowed,
                EndReason::Refused => ReplyCode::ConnectionRefused,
                EndReason::Unreachable | EndReason::ResolveFailed => ReplyCode::HostUnreachable,
                EndReason::Timeout => ReplyCode::TtlExpired,
                _ => ReplyCode::GeneralFailure,
            },
            RouterError::Timeout(_) => ReplyCode::TtlExpired,
            _ => ReplyCode::GeneralFailure,
        }
    }
}
