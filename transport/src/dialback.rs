//! Reachability self-test by dial-back (`/braid/dialback/1`): a node asks another node to open
//! a *new* connection to each address it claims and say whether it reached it there.
//!
//! - [`wire`]: the frame codec (sans-IO, built without the `driver` feature too, fuzzed).
//! - [`probe`]: one dial-back: a short-lived transport with a fresh identity dials exactly one
//!   address and expects the claimed peer id; the server and, later, registries use it.
//! - [`DialbackServer`]: answers requests on a node's swarm, with anti-abuse limits.
//! - [`request_dialback`]: the requester's side.
//! - [`policy`]: which addresses may be dialed (the IP match, public addresses only); the
//!   server and registries apply the same rules.
//!
//! It does not decide what a relay advertises; the node crate does that with the verdicts.

pub mod wire;

#[cfg(feature = "driver")]
mod client;
#[cfg(feature = "driver")]
mod io;
#[cfg(feature = "driver")]
pub mod policy;
#[cfg(feature = "driver")]
mod probe;
#[cfg(feature = "driver")]
mod server;

#[cfg(feature = "driver")]
pub use client::{DEFAULT_REQUEST_TIMEOUT, request_dialback};
#[cfg(feature = "driver")]
pub use probe::probe;
#[cfg(feature = "driver")]
pub use server::{DialbackServer, DialbackServerConfig};
pub use wire::{Reason, Verdict, WireError};

/// The protocol name, as text.
pub const PROTOCOL_NAME: &str = "/braid/dialback/1";

/// The dial-back protocol on the node's swarm.
#[cfg(feature = "driver")]
pub const PROTOCOL: libp2p::StreamProtocol = libp2p::StreamProtocol::new(PROTOCOL_NAME);

/// What went wrong asking for a dial-back (the requester's side). The per-address outcomes
/// are `Verdict`s, not errors.
#[cfg(feature = "driver")]
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DialbackError {
    /// The addresses do not make a valid request (none, more than 8, one too long).
    #[error("dial-back request not sent: {0}")]
    BadRequest(WireError),
    /// No stream to the server (not reachable, does not speak the protocol ...).
    #[error("dial-back server {peer}: {source}")]
    Transport {
        /// The server.
        peer: Box<libp2p::PeerId>,
        /// What the transport said.
        source: crate::Error,
    },
    /// Reading or writing the stream failed (reset, closed early).
    #[error("dial-back server {peer}: {context}: {source}")]
    Io {
        /// The server.
        peer: Box<libp2p::PeerId>,
        /// What was being done.
        context: &'static str,
        /// What the stream said.
        source: std::io::Error,
    },
    /// The exchange did not finish in time.
    #[error("dial-back server {peer}: no answer within {timeout:?}")]
    Timeout {
        /// The server.
        peer: Box<libp2p::PeerId>,
        /// The bound.
        timeout: std::time::Duration,
    },
    /// The server's answer does not decode.
    #[error("dial-back server {peer}: bad answer: {source}")]
    Wire {
        /// The server.
        peer: Box<libp2p::PeerId>,
        /// What the codec said.
        source: WireError,
    },
    /// The server rejected the request as a whole (an `Error` frame).
    #[error("dial-back server {peer} rejected the request: {reason}")]
    Rejected {
        /// The server.
        peer: Box<libp2p::PeerId>,
        /// Its reason.
        reason: Reason,
    },
    /// The server answered something other than one verdict per address.
    #[error("dial-back server {peer}: {what}")]
    Protocol {
        /// The server.
        peer: Box<libp2p::PeerId>,
        /// What was wrong.
        what: String,
    },
}
