#![doc = include_str!("../README.md")]

#[cfg(feature = "driver")]
mod address_book;
#[cfg(feature = "driver")]
mod config;
pub mod dialback;
#[cfg(feature = "driver")]
mod error;
#[cfg(feature = "driver")]
mod identity;
#[cfg(feature = "driver")]
mod transport;
#[cfg(feature = "driver")]
pub mod upnp;

#[cfg(feature = "driver")]
pub use config::{
    TransportConfig, default_command_queue, default_dead_peer_timeout, default_idle_timeout,
    default_listen, default_listen_timeout, default_max_addresses_per_peer,
    default_max_concurrent_streams, default_max_connection_window, default_max_connections,
    default_max_connections_per_peer, default_max_known_peers, default_max_pending_dials,
    default_max_pending_incoming, default_max_stream_window, default_open_timeout,
    default_quic_handshake_timeout, default_shutdown_timeout,
};
#[cfg(feature = "driver")]
pub use error::Error;
#[cfg(feature = "driver")]
pub use identity::{IDENTITY_FILE, Identity, peer_id_from_public, public_from_peer_id};
#[cfg(feature = "driver")]
pub use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
#[cfg(feature = "driver")]
pub use transport::{ACCEPT_QUEUE, IncomingStreams, Transport};

/// Converts a libp2p `Stream` (futures `AsyncRead`/`AsyncWrite`) into a tokio
/// `AsyncRead`/`AsyncWrite`.
#[cfg(feature = "driver")]
pub fn compat(stream: Stream) -> tokio_util::compat::Compat<Stream> {
    use tokio_util::compat::FuturesAsyncReadCompatExt as _;
    stream.compat()
}
