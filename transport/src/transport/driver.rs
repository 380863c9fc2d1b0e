//! The swarm task: builds the libp2p swarm and runs its event loop, one `tokio::select!` over
//! the bounded command channel and the swarm's events. It owns every piece of mutable state
//! (swarm, address book, dial waiters); the `Transport` handle only sends commands. It holds no
//! protocol logic: streams are handed to the caller as they are.

use std::{
    collections::{HashMap, HashSet},
    num::NonZeroU8,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures::StreamExt as _;
use libp2p::{
    Multiaddr, PeerId, Swarm, SwarmBuilder, allow_block_list, connection_limits,
    core::transport::ListenerId,
    identify, kad, noise, ping,
    swarm::{
        ConnectionId, DialError, NetworkBehaviour, SwarmEvent,
        dial_opts::{DialOpts, PeerCondition},
    },
    tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, trace, warn};

use super::routing::{self, Lookups};
use crate::{
    Error, Identity, TransportConfig,
    address_book::{AddressBook, is_quic},
};

/// Protocol name our identify exchange announces.
const IDENTIFY_PROTOCOL: &str = "/braid/id/1.0.0";

/// A request from a `Transport` handle to the swarm task.
pub(crate) enum Command {
    /// Remember these (already normalized) addresses for the peer.
    AddAddresses {
        peer: PeerId,
        addresses: Vec<Multiaddr>,
    },
    /// Answer once connected to the peer (dialing it if needed), or with why not.
    Connect {
        peer: PeerId,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// The remote addresses of the established connections to the peer.
    ConnectedAddresses {
        peer: PeerId,
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    /// The peers with an established connection.
    ConnectedPeers { reply: oneshot::Sender<Vec<PeerId>> },
    /// Close every connection to the peer and refuse new ones (both directions) until
    /// `Unblock`. Answers `false` when the block list is full.
    Block {
        peer: PeerId,
        reply: oneshot::Sender<bool>,
    },
    /// Allow the peer again.
    Unblock { peer: PeerId },
    /// Close every connection and listener, then end the task.
    Shutdown,
}

/// Peers a node may block at once (`Transport::block`).
pub(crate) const MAX_BLOCKED_PEERS: usize = 1024;

/// The composed behaviour: the block list and limits first, so refused connections never reach
/// the others.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    streams: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
}

impl Behaviour {
    fn new(key: &libp2p::identity::Keypair, config: &TransportConfig) -> Self {
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established_per_peer(Some(config.max_connections_per_peer))
            .with_max_established(Some(config.max_connections))
            .with_max_pending_incoming(Some(config.max_pending_incoming));
        let identify = identify::Config::new(IDENTIFY_PROTOCOL.to_owned(), key.public())
            .with_agent_version(format!("braid/{}", env!("CARGO_PKG_VERSION")))
            // Addresses come only from add_addresses, never from what peers claim.
            .with_cache_size(0);
        let ping = ping::Config::new()
            .with_interval(config.dead_peer_timeout / 2)
            .with_timeout(config.dead_peer_timeout);
        Self {
            blocked: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(limits),
            streams: libp2p_stream::Behaviour::new(),
            identify: identify::Behaviour::new(identify),
            ping: ping::Behaviour::new(ping),
            kad: routing::behaviour(
                key.public().to_peer_id(),
                !config.listen.is_empty(),
                config.open_timeout / 2,
            ),
        }
    }

    /// A handle for opening and accepting streams.
    pub(crate) fn stream_control(&self) -> libp2p_stream::Control {
        self.streams.new_control()
    }
}

/// Builds the swarm: QUIC v1, plus TCP + Noise + Yamux as fallback, tuned from `config`.
pub(crate) fn build_swarm(
    identity: &Identity,
    config: &TransportConfig,
) -> Result<Swarm<Behaviour>, Error> {
    let build_error = |reason: String| Error::Build { reason };
    let max_streams = usize::try_from(config.max_concurrent_streams).unwrap_or(usize::MAX);
    let quic_idle_ms = u32::try_from(config.dead_peer_timeout.as_millis()).unwrap_or(u32::MAX);
    let swarm = SwarmBuilder::with_existing_identity(identity.to_libp2p())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            move || {
                let mut yamux = yamux::Config::default();
                yamux.set_max_num_streams(max_streams);
                yamux
            },
        )
        .map_err(|e| build_error(e.to_string()))?
        .with_quic_config(|mut quic| {
            quic.max_stream_data = config.max_stream_window;
            quic.max_connection_data = config.max_connection_window;
            quic.max_concurrent_stream_limit = config.max_concurrent_streams;
            quic.max_idle_timeout = quic_idle_ms;
            quic.keep_alive_interval = config.dead_peer_timeout / 4;
            quic.handshake_timeout = config.quic_handshake_timeout;
            quic
        })
        .with_behaviour(|key| Behaviour::new(key, config))
        .map_err(|e| build_error(e.to_string()))?
        .with_swarm_config(|swarm| {
            // One address at a time, in the address book's order (QUIC first), so TCP is used
            // only when QUIC fails. libp2p's smart dial would race TCP after 30 ms instead.
            swarm
                .with_idle_connection_timeout(config.idle_timeout)
                .with_dial_concurrency_factor(NonZeroU8::MIN)
        })
        .build();
    Ok(swarm)
}

/// The state the swarm task owns.
pub(crate) struct Driver {
    swarm: Swarm<Behaviour>,
    book: AddressBook,
    /// `Connect` replies waiting for a dial to finish, per peer.
    waiters: HashMap<PeerId, Vec<oneshot::Sender<Result<(), Error>>>>,
    max_pending_dials: usize,
    /// Established connections and their remote addresses (bounded by the connection limits).
    connections: HashMap<PeerId, HashMap<ConnectionId, Multiaddr>>,
    listeners: Vec<ListenerId>,
    /// Bound addresses, shared with the handle for `Transport::listen_addrs`.
    listen_addrs: Arc<Mutex<Vec<Multiaddr>>>,
    shutdown_timeout: Duration,
    /// Kademlia lookups under way.
    lookups: Lookups,
    /// Peers whose waiting connects already had a lookup (one per round of waiters).
    looked_up: HashSet<PeerId>,
}

impl Driver {
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        config: &TransportConfig,
        listen_addrs: Arc<Mutex<Vec<Multiaddr>>>,
    ) -> Self {
        Self {
            swarm,
            book: AddressBook::new(config.max_known_peers, config.max_addresses_per_peer),
            waiters: HashMap::new(),
            max_pending_dials: config.max_pending_dials,
            connections: HashMap::new(),
            listeners: Vec::new(),
            listen_addrs,
            shutdown_timeout: config.shutdown_timeout,
            lookups: Lookups::default(),
            looked_up: HashSet::new(),
        }
    }

    /// A stream control for the handle.
    pub(crate) fn stream_control(&self) -> libp2p_stream::Control {
        self.swarm.behaviour().stream_control()
    }

    /// Starts a listener on each address and waits (at most `timeout`) until each has reported
    /// a bound address.
    pub(crate) async fn listen(
        &mut self,
        addresses: &[Multiaddr],
        timeout: Duration,
    ) -> Result<(), Error> {
        let mut pending: HashMap<ListenerId, Multiaddr> = HashMap::new();
        for address in addresses {
            let id = self
                .swarm
                .listen_on(address.clone())
                .map_err(|e| Error::Listen {
                    address: address.clone(),
                    reason: error_chain(&e),
                })?;
            self.listeners.push(id);
            pending.insert(id, address.clone());
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while let Some((_, first)) = pending.iter().next() {
            let first = first.clone();
            let event = tokio::time::timeout_at(deadline, self.swarm.select_next_some())
                .await
                .map_err(|_| Error::ListenTimeout {
                    address: first,
                    timeout,
                })?;
            let failed = match &event {
                SwarmEvent::NewListenAddr { listener_id, .. } => {
                    pending.remove(listener_id);
                    None
                }
                SwarmEvent::ListenerClosed {
                    listener_id,
                    reason,
                    ..
                } => {
                    let reason = match reason {
                        Ok(()) => "listener closed".to_owned(),
                        Err(e) => error_chain(e),
                    };
                    pending
                        .get(listener_id)
                        .map(|address| (address.clone(), reason))
                }
                SwarmEvent::ListenerError { listener_id, error } => pending
                    .get(listener_id)
                    .map(|address| (address.clone(), error_chain(error))),
                _ => None,
            };
            if let Some((address, reason)) = failed {
                return Err(Error::Listen { address, reason });
            }
            self.on_event(event);
        }
        Ok(())
    }

    /// The event loop; returns after `Command::Shutdown` or when every handle is dropped.
    pub(crate) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                event = self.swarm.select_next_some() => self.on_event(event),
            }
        }
        // Queued commands are dropped: their callers see `Error::ShutDown`.
        commands.close();
        self.close().await;
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::AddAddresses { peer, addresses } => {
                for address in addresses {
                    if let Some(evicted) = self.book.add(peer, address) {
                        debug!(peer = %evicted, "address book full: forgot the oldest peer");
                    }
                }
            }
            Command::Connect { peer, reply } => self.on_connect(peer, reply),
            Command::ConnectedAddresses { peer, reply } => {
                let addresses = self
                    .connections
                    .get(&peer)
                    .map(|c| c.values().cloned().collect())
                    .unwrap_or_default();
                let _ = reply.send(addresses);
            }
            Command::ConnectedPeers { reply } => {
                let _ = reply.send(self.connections.keys().copied().collect());
            }
            Command::Block { peer, reply } => {
                let blocked = self.swarm.behaviour().blocked.blocked_peers();
                let room = blocked.contains(&peer) || blocked.len() < MAX_BLOCKED_PEERS;
                if room {
                    debug!(%peer, "peer blocked");
                    self.swarm.behaviour_mut().blocked.block_peer(peer);
                    self.answer(peer, || {
                        Err(Error::Dial {
                            peer: Box::new(peer),
                            reason: "the peer is blocked".into(),
                        })
                    });
                }
                let _ = reply.send(room);
            }
            Command::Unblock { peer } => {
                debug!(%peer, "peer unblocked");
                self.swarm.behaviour_mut().blocked.unblock_peer(peer);
            }
            Command::Shutdown => {}
        }
    }

    fn on_connect(&mut self, peer: PeerId, reply: oneshot::Sender<Result<(), Error>>) {
        if self.swarm.is_connected(&peer) {
            let _ = reply.send(Ok(()));
            return;
        }
        let addresses = self.book.dial_order(&peer);
        // Callers that gave up (timed out) no longer hold a slot.
        self.waiters.retain(|_, list| {
            list.retain(|w| !w.is_closed());
            !list.is_empty()
        });
        let waiters = &self.waiters;
        self.looked_up.retain(|p| waiters.contains_key(p));
        let pending: usize = self.waiters.values().map(Vec::len).sum();
        if pending >= self.max_pending_dials {
            let limit = self.max_pending_dials;
            let _ = reply.send(Err(Error::TooManyPendingDials {
                peer: Box::new(peer),
                limit,
            }));
            return;
        }
        if addresses.is_empty() {
            // Nothing known: ask the DHT where the peer is.
            if self.waiters.contains_key(&peer) || self.lookup(peer) {
                self.waiters.entry(peer).or_default().push(reply);
            } else {
                let _ = reply.send(Err(Error::NoAddresses {
                    peer: Box::new(peer),
                }));
            }
            return;
        }
        self.waiters.entry(peer).or_default().push(reply);
        self.dial(peer, addresses);
    }

    /// Dials `peer` at `addresses` (one at a time, in order); waiters are answered when the
    /// dial ends.
    fn dial(&mut self, peer: PeerId, addresses: Vec<Multiaddr>) {
        let opts = DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .addresses(addresses)
            .build();
        match self.swarm.dial(opts) {
            // Already dialing: the waiter is answered when that dial ends.
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
            Err(error) => self.answer(peer, || {
                Err(Error::Dial {
                    peer: Box::new(peer),
                    reason: error.to_string(),
                })
            }),
        }
    }

    /// Starts a DHT lookup of `peer` for its waiters, once per round of waiters; `false`:
    /// none started (already tried, or too many under way).
    fn lookup(&mut self, peer: PeerId) -> bool {
        let kad = &mut self.swarm.behaviour_mut().kad;
        let empty = kad.kbuckets().all(|bucket| bucket.num_entries() == 0);
        if empty || self.looked_up.contains(&peer) {
            return false;
        }
        let started = self
            .lookups
            .start(&mut self.swarm.behaviour_mut().kad, peer);
        if started {
            debug!(%peer, "looking the peer up in the DHT");
            self.looked_up.insert(peer);
        }
        started
    }

    /// A lookup ended: dial what it found, or fail the waiters.
    fn on_lookup(&mut self, id: kad::QueryId, result: kad::GetClosestPeersResult) {
        let Some(peer) = self.lookups.finish(id) else {
            return;
        };
        if self.swarm.is_connected(&peer) {
            self.answer(peer, || Ok(()));
            return;
        }
        let found = routing::found(result, &peer);
        if found.is_empty() {
            debug!(%peer, "the DHT does not know the peer");
            self.answer(peer, || {
                Err(Error::Dial {
                    peer: Box::new(peer),
                    reason: "no known address works and the DHT lookup found none".into(),
                })
            });
            return;
        }
        debug!(%peer, addresses = found.len(), "the DHT found the peer");
        for address in &found {
            self.book.add(peer, address.clone());
        }
        if self.waiters.contains_key(&peer) {
            self.dial(peer, found);
        }
    }

    /// Answers every waiter for `peer`.
    fn answer(&mut self, peer: PeerId, result: impl Fn() -> Result<(), Error>) {
        self.looked_up.remove(&peer);
        for waiter in self.waiters.remove(&peer).unwrap_or_default() {
            let _ = waiter.send(result());
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let remote = without_p2p(endpoint.get_remote_address());
                debug!(peer = %peer_id, %connection_id, quic = is_quic(&remote), inbound = endpoint.is_listener(), "connection established");
                trace!(peer = %peer_id, %connection_id, %remote, "connection remote address");
                self.connections
                    .entry(peer_id)
                    .or_default()
                    .insert(connection_id, remote);
                self.answer(peer_id, || Ok(()));
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, %connection_id, cause = ?cause, "connection closed");
                if let Some(list) = self.connections.get_mut(&peer_id) {
                    list.remove(&connection_id);
                    if list.is_empty() {
                        self.connections.remove(&peer_id);
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                connection_id,
                error,
            } => {
                debug!(%peer, %connection_id, "dial failed");
                trace!(%peer, %connection_id, %error, "dial failure detail");
                // Every known address failed: the peer may have moved; ask the DHT once.
                let connected = self.swarm.is_connected(&peer);
                let looking = !connected && self.waiters.contains_key(&peer) && self.lookup(peer);
                if !connected && !looking {
                    let reason = error.to_string();
                    self.answer(peer, || {
                        Err(Error::Dial {
                            peer: Box::new(peer),
                            reason: reason.clone(),
                        })
                    });
                }
            }
            SwarmEvent::IncomingConnectionError {
                connection_id,
                error,
                ..
            } => {
                debug!(%connection_id, "inbound connection failed");
                trace!(%connection_id, %error, "inbound failure detail");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                debug!(%address, "listening");
                let mut addrs = self
                    .listen_addrs
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if !addrs.contains(&address) {
                    addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                debug!(%address, "listen address expired");
                self.forget_listen_addrs(&[address]);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                if let Err(error) = reason {
                    warn!(%error, "a listener closed with an error");
                }
                self.forget_listen_addrs(&addresses);
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "listener error"),
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            other => trace!(event = ?other, "swarm event"),
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Err(ping::Failure::Unsupported),
                ..
            }) => {
                debug!(%peer, "peer does not answer pings; liveness rests on QUIC keep-alive");
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(failure),
            }) => {
                debug!(%peer, %connection, %failure, "ping failed: closing the connection");
                self.swarm.close_connection(connection);
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                trace!(%peer, ?rtt, "ping");
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                trace!(peer = %peer_id, agent = %info.agent_version, "identified");
                if info.protocols.contains(&routing::KAD_PROTOCOL) {
                    let kad = &mut self.swarm.behaviour_mut().kad;
                    for address in routing::claimed(info.listen_addrs) {
                        kad.add_address(&peer_id, address);
                    }
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(result),
                ..
            }) => self.on_lookup(id, result),
            BehaviourEvent::Kad(event) => trace!(?event, "kad"),
            BehaviourEvent::Identify(_) => {}
            BehaviourEvent::Streams(()) => {}
            BehaviourEvent::Limits(never) | BehaviourEvent::Blocked(never) => match never {},
        }
    }

    fn forget_listen_addrs(&self, gone: &[Multiaddr]) {
        let mut addrs = self
            .listen_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        addrs.retain(|a| !gone.contains(a));
    }

    /// Explicit teardown: refuse waiting dials, stop listening, close every connection and
    /// wait (at most `shutdown_timeout`) for the closes to complete.
    async fn close(mut self) {
        for (_, waiters) in self.waiters.drain() {
            for waiter in waiters {
                let _ = waiter.send(Err(Error::ShutDown));
            }
        }
        for id in std::mem::take(&mut self.listeners) {
            self.swarm.remove_listener(id);
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            let _ = self.swarm.disconnect_peer_id(peer);
        }
        let deadline = tokio::time::sleep(self.shutdown_timeout);
        tokio::pin!(deadline);
        while self.swarm.network_info().num_peers() > 0 {
            tokio::select! {
                () = &mut deadline => {
                    debug!("shutdown: connections still open after the timeout; dropping them");
                    break;
                }
                event = self.swarm.select_next_some() => {
                    if let SwarmEvent::ConnectionEstablished { connection_id, .. } = &event {
                        self.swarm.close_connection(*connection_id);
                    }
                    self.on_event(event);
                }
            }
        }
        self.listen_addrs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        debug!("transport shut down");
    }
}

/// The address without a trailing `/p2p/<id>` (dialed addresses carry one).
fn without_p2p(address: &Multiaddr) -> Multiaddr {
    let mut address = address.clone();
    if let Some(libp2p::multiaddr::Protocol::P2p(_)) = address.iter().last() {
        address.pop();
    }
    address
}

/// An error and its sources as one line, skipping empty messages: libp2p's `TransportError`
/// prints nothing itself and keeps the OS error ("Address already in use") in its source.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    if parts.is_empty() {
        "unknown error (no reason given)".to_owned()
    } else {
        parts.join(": ")
    }
}
