//! `Transport`: the cloneable handle to a node's one running libp2p swarm. It sends commands
//! to the swarm task (see `driver`) over a bounded channel and opens/accepts streams through
//! libp2p-stream. It does not frame or interpret stream bytes.

mod driver;
mod incoming;
mod routing;

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
};

use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};
use tracing::info;

use crate::{Error, Identity, TransportConfig, address_book};
use driver::{Command, Driver};
pub use incoming::{ACCEPT_QUEUE, IncomingStreams};

/// A running swarm. Cloning gives another handle to the same swarm; the swarm task ends on
/// `shutdown` or when the last handle is dropped.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    peer_id: PeerId,
    config: TransportConfig,
    commands: mpsc::Sender<Command>,
    control: Mutex<libp2p_stream::Control>,
    listen_addrs: Arc<Mutex<Vec<Multiaddr>>>,
    /// The swarm task; taken by the first `shutdown`.
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Transport {
    /// Builds the swarm (QUIC v1 first, TCP + Noise + Yamux as fallback; behaviour: block
    /// list, connection limits, libp2p-stream, identify, ping, Kademlia), listens on every
    /// `config.listen` address, waits until each has reported its bound address (at most
    /// `config.listen_timeout`), then spawns the swarm task.
    ///
    /// Also installs rustls's aws-lc-rs provider as the process default, unless one is
    /// installed already, so a program embedding braid needs no rustls setup of its own.
    pub async fn start(identity: Identity, config: TransportConfig) -> Result<Self, Error> {
        // libp2p compiles both rustls providers (ring and aws-lc-rs) into the process, so any
        // `rustls::ClientConfig::builder()` / `ServerConfig::builder()` without an explicit
        // provider (a dependency's, or the embedding program's) panics until one is picked.
        // libp2p's own QUIC configs name aws-lc-rs explicitly; make it the default too. `Err`
        // only means a provider is installed already (another transport, or the program's own
        // choice), which is fine.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        config.validate()?;
        let swarm = driver::build_swarm(&identity, &config)?;
        let listen_addrs = Arc::new(Mutex::new(Vec::new()));
        let mut driver = Driver::new(swarm, &config, Arc::clone(&listen_addrs));
        let control = driver.stream_control();
        driver.listen(&config.listen, config.listen_timeout).await?;
        let (commands, receiver) = mpsc::channel(config.command_queue);
        let task = tokio::spawn(driver.run(receiver));
        let peer_id = identity.peer_id();
        info!(%peer_id, listeners = config.listen.len(), "transport started");
        Ok(Self {
            inner: Arc::new(Inner {
                peer_id,
                config,
                commands,
                control: Mutex::new(control),
                listen_addrs,
                task: tokio::sync::Mutex::new(Some(task)),
            }),
        })
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The bound listen addresses (port 0 resolved), without a `/p2p` suffix. Empty for a
    /// client-only node and after `shutdown`.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner
            .listen_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Tells the swarm how to reach `peer`. Each address is `/ip4|ip6/../tcp/..` or
    /// `/ip4|ip6/../udp/../quic-v1`, optionally ending in `/p2p/<peer>` (which must be `peer`).
    /// Nothing is stored if any address is rejected. The book is bounded (see
    /// `TransportConfig::max_known_peers`, `max_addresses_per_peer`).
    pub async fn add_addresses(&self, peer: PeerId, addrs: Vec<Multiaddr>) -> Result<(), Error> {
        let addresses = addrs
            .iter()
            .map(|address| {
                address_book::normalize(&peer, address).map_err(|reason| Error::BadAddress {
                    peer: Box::new(peer),
                    address: address.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.send(Command::AddAddresses { peer, addresses }).await
    }

    /// Opens a stream to `peer` speaking `protocol`, dialing first if not connected (QUIC
    /// addresses before TCP). Bounded by `TransportConfig::open_timeout`.
    pub async fn open_stream(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<Stream, Error> {
        let timeout = self.inner.config.open_timeout;
        match tokio::time::timeout(timeout, self.open_stream_unbounded(peer, protocol.clone()))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(Error::OpenTimeout {
                peer: Box::new(peer),
                protocol,
                timeout,
            }),
        }
    }

    async fn open_stream_unbounded(
        &self,
        peer: PeerId,
        protocol: StreamProtocol,
    ) -> Result<Stream, Error> {
        self.connect_unbounded(peer).await?;
        let mut control = self
            .inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        control
            .open_stream(peer, protocol.clone())
            .await
            .map_err(|e| Error::OpenStream {
                peer: Box::new(peer),
                protocol,
                reason: e.to_string(),
            })
    }

    /// Connects to `peer` without opening a stream, dialing its known addresses (QUIC first)
    /// unless a connection is already established. Bounded by `TransportConfig::open_timeout`;
    /// running out of time is reported as `Error::Dial`. The dial-back probe uses it: the
    /// handshake alone proves who answers at an address.
    pub async fn connect(&self, peer: PeerId) -> Result<(), Error> {
        let timeout = self.inner.config.open_timeout;
        match tokio::time::timeout(timeout, self.connect_unbounded(peer)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Dial {
                peer: Box::new(peer),
                reason: format!("no connection within {timeout:?}"),
            }),
        }
    }

    async fn connect_unbounded(&self, peer: PeerId) -> Result<(), Error> {
        let (reply, connected) = oneshot::channel();
        self.send(Command::Connect { peer, reply }).await?;
        connected.await.map_err(|_| Error::ShutDown)?
    }

    /// Starts accepting inbound streams for `protocol`. Only one `IncomingStreams` per protocol
    /// may exist at a time; drop it to stop accepting. Up to [`ACCEPT_QUEUE`] streams wait for
    /// the consumer; further ones are reset until it catches up. Needs a Tokio runtime.
    pub fn accept(&self, protocol: StreamProtocol) -> Result<IncomingStreams, Error> {
        let mut control = self
            .inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        control
            .accept(protocol.clone())
            .map(IncomingStreams::new)
            .map_err(|_| Error::AlreadyAccepting { protocol })
    }

    /// The remote addresses of the established connections to `peer` (empty if none). For
    /// diagnostics and tests; never log them at info level or above.
    pub async fn connected_addresses(&self, peer: PeerId) -> Result<Vec<Multiaddr>, Error> {
        let (reply, addresses) = oneshot::channel();
        self.send(Command::ConnectedAddresses { peer, reply })
            .await?;
        addresses.await.map_err(|_| Error::ShutDown)
    }

    /// The peers with an established connection now (for diagnostics and tests: a relay's
    /// view of which client identities reach it).
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, Error> {
        let (reply, peers) = oneshot::channel();
        self.send(Command::ConnectedPeers { reply }).await?;
        peers.await.map_err(|_| Error::ShutDown)
    }

    /// Closes every connection to `peer` and refuses new ones, inbound and outbound, until
    /// [`Transport::unblock`]: a severed link. Streams on the closed connections end with an
    /// error. At most 1024 peers may be blocked at once: `Error::Limit` beyond that.
    pub async fn block(&self, peer: PeerId) -> Result<(), Error> {
        let (reply, done) = oneshot::channel();
        self.send(Command::Block { peer, reply }).await?;
        if done.await.map_err(|_| Error::ShutDown)? {
            Ok(())
        } else {
            Err(Error::Limit {
                what: "blocked peers",
                limit: driver::MAX_BLOCKED_PEERS,
            })
        }
    }

    /// Allows `peer` again after [`Transport::block`] (nothing if it was not blocked).
    pub async fn unblock(&self, peer: PeerId) -> Result<(), Error> {
        self.send(Command::Unblock { peer }).await
    }

    /// Stops the swarm task: refuses waiting dials, closes listeners and connections (waiting
    /// at most `TransportConfig::shutdown_timeout`). Idempotent; later calls on any handle
    /// fail with `Error::ShutDown`.
    pub async fn shutdown(&self) {
        let mut task = self.inner.task.lock().await;
        let Some(handle) = task.take() else {
            return;
        };
        // If the send fails the task has already ended.
        let _ = self.inner.commands.send(Command::Shutdown).await;
        if let Err(error) = handle.await {
            tracing::error!(%error, "the swarm task panicked");
        }
        info!(peer_id = %self.inner.peer_id, "transport shut down");
    }

    async fn send(&self, command: Command) -> Result<(), Error> {
        self.inner
            .commands
            .send(command)
            .await
            .map_err(|_| Error::ShutDown)
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("peer_id", &self.inner.peer_id)
            .finish_non_exhaustive()
    }
}
