//! The crate's one error type. Every variant carries what was being done and with whom (path,
//! peer, address, protocol). It is not a catch-all: no blanket `From<io::Error>`.

use std::{path::PathBuf, time::Duration};

use libp2p::{Multiaddr, PeerId, StreamProtocol};

/// Everything that can go wrong in `braid-transport`. Peer ids are boxed (a `PeerId` is 80
/// bytes) so the error stays small for the crates that wrap it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory could not be created or inspected.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The identity key file could not be read, created or written.
    #[error("identity key file {path}: {source}")]
    IdentityIo {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The identity key file does not hold 32 raw bytes or 64 hex digits.
    #[error(
        "identity key file {path}: {len} bytes, expected 32 raw bytes or 64 hex digits (an Ed25519 secret key)"
    )]
    IdentityLength {
        /// The key file.
        path: PathBuf,
        /// Its length after trimming trailing whitespace.
        len: usize,
    },
    /// The identity key file has 64 characters but they are not hex digits.
    #[error("identity key file {path}: 64 characters but not hex digits")]
    IdentityHex {
        /// The key file.
        path: PathBuf,
    },
    /// The identity key file is accessible to group or others.
    #[error(
        "identity key file {path}: mode {mode:o} lets group or others access the secret key; run `chmod 600 {path}`"
    )]
    IdentityPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// 32 bytes that are not a valid Ed25519 public key.
    #[error("not a valid Ed25519 public key: {reason}")]
    InvalidPublicKey {
        /// Why libp2p rejected it.
        reason: String,
    },
    /// A `TransportConfig` value is out of range.
    #[error("transport config: {field} = {value} is invalid: {reason}")]
    Config {
        /// The field name.
        field: &'static str,
        /// Its value, printed.
        value: String,
        /// Which range is allowed.
        reason: &'static str,
    },
    /// The libp2p swarm could not be built.
    #[error("building the libp2p swarm failed: {reason}")]
    Build {
        /// What libp2p said.
        reason: String,
    },
    /// Listening on a configured address failed.
    #[error("cannot listen on {address}: {reason}")]
    Listen {
        /// The configured listen address.
        address: Multiaddr,
        /// What libp2p said.
        reason: String,
    },
    /// A listener did not report its bound address in time.
    #[error("listening on {address}: no bound address reported within {timeout:?}")]
    ListenTimeout {
        /// The configured listen address.
        address: Multiaddr,
        /// The configured `listen_timeout`.
        timeout: Duration,
    },
    /// An address given to `add_addresses` cannot be used for that peer.
    #[error("address {address} for peer {peer}: {reason}")]
    BadAddress {
        /// The peer the address was meant for.
        peer: Box<PeerId>,
        /// The rejected address.
        address: Multiaddr,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// No address is known for the peer (see `Transport::add_addresses`).
    #[error("no known address for peer {peer}: call add_addresses first")]
    NoAddresses {
        /// The peer.
        peer: Box<PeerId>,
    },
    /// Dialing the peer failed on every known address.
    #[error("dialing peer {peer} failed: {reason}")]
    Dial {
        /// The peer.
        peer: Box<PeerId>,
        /// What libp2p said (it names each address tried and its error).
        reason: String,
    },
    /// Too many `open_stream` calls are waiting for dials to complete.
    #[error("too many open_stream calls waiting for a connection (limit {limit}); peer {peer}")]
    TooManyPendingDials {
        /// The peer of the refused call.
        peer: Box<PeerId>,
        /// The configured `max_pending_dials`.
        limit: usize,
    },
    /// Connected, but the stream could not be opened (protocol refused, connection lost).
    #[error("opening a {protocol} stream to peer {peer} failed: {reason}")]
    OpenStream {
        /// The peer.
        peer: Box<PeerId>,
        /// The protocol asked for.
        protocol: StreamProtocol,
        /// What libp2p said.
        reason: String,
    },
    /// `open_stream` did not finish (dial + negotiation) within `open_timeout`.
    #[error("opening a {protocol} stream to peer {peer} timed out after {timeout:?}")]
    OpenTimeout {
        /// The peer.
        peer: Box<PeerId>,
        /// The protocol asked for.
        protocol: StreamProtocol,
        /// The configured `open_timeout`.
        timeout: Duration,
    },
    /// `accept` was already called for this protocol and its `IncomingStreams` is still alive.
    #[error("already accepting inbound {protocol} streams")]
    AlreadyAccepting {
        /// The protocol.
        protocol: StreamProtocol,
    },
    /// The transport was shut down (or its task ended); nothing more can be done with it.
    #[error("the transport is shut down")]
    ShutDown,
    /// A bounded table is full.
    #[error("too many {what} (limit {limit})")]
    Limit {
        /// What ran out.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
}
