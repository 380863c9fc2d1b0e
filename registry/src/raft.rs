//! The registries' Raft group (feature `raft`): openraft 0.9 replicating the registry state
//! machine ([`Store`], commands [`Command`]) among the 3 or 5 registries listed in every
//! registry's config, over the node's one braid transport (stream protocol `/braid/raft/1`, no
//! extra port), with its log and vote in SQLite next to the store.
//!
//! It is the driver around openraft: storage adapters (`log_store`, `state_machine`), the RPC
//! codec (`frame`, `wire`), the sending and receiving sides (`network`, `server`), and
//! [`RegistryRaft`], the handle the registry service uses. It does not decide what to publish
//! (the service checks descriptors and reachability) and does not change membership at run
//! time: the group is the configured member list.
//!
//! Files in `data_dir`: `store.sqlite` (the state machine, see `store`) and `raft.sqlite` (log,
//! vote, purge point).

mod config;
mod elect;
mod error;
pub mod frame;
mod io;
mod log_store;
mod network;
mod server;
mod state_machine;
mod types;
pub mod wire;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use braid_directory::SignedDescriptor;
use braid_transport::Transport;
use openraft::error::{InitializeError, RaftError as OpenraftError};
use openraft::metrics::WaitError;
use openraft::{BasicNode, Raft, SnapshotPolicy};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::state::{Command, MAX_COMMAND_LEN, MAX_MEMBERSHIP_LEN};
use crate::store::{Applied, StateView, Store};
use network::{CallError, NetShared, Network};
use server::{Counters, ServerShared};
use state_machine::StateMachine;
use wire::{ForwardResponse, RpcRequest, RpcResponse};

pub use config::{
    FRAME_OVERHEAD, MAX_ENTRY_LEN, MAX_MEMBER_ADDR_LEN, MAX_MEMBERS, RaftConfig, RaftMember,
    default_election_max_ms, default_election_min_ms, default_heartbeat_ms,
    default_logs_kept_after_snapshot, default_max_inbound_per_peer, default_max_payload_entries,
    default_max_rpc_bytes, default_rpc_timeout_ms, default_snapshot_chunk_bytes,
    default_snapshot_every, default_snapshot_timeout_ms,
};
pub use error::RaftError;
pub use network::PROTOCOL;
pub use types::{AppliedWire, EntryData, TypeConfig};

/// The state machine's file in `data_dir`.
pub const STORE_FILE: &str = "store.sqlite";
/// The Raft log's file in `data_dir`.
pub const LOG_FILE: &str = "raft.sqlite";

/// How many times `submit` asks again after "not the leader" or an unreachable leader.
const SUBMIT_ATTEMPTS: usize = 5;

/// A snapshot of the node's Raft state, for status pages and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftStatus {
    /// This node's id.
    pub id: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// The index of the last entry applied to the state machine.
    pub last_applied: Option<u64>,
    /// The index of the last entry in the log.
    pub last_log_index: Option<u64>,
    /// The last log index covered by the current snapshot.
    pub snapshot_index: Option<u64>,
    /// The last index purged from the log.
    pub purged_index: Option<u64>,
    /// The voting members' ids.
    pub members: Vec<u64>,
    /// Snapshots this process installed from a leader.
    pub snapshots_installed: u64,
    /// Streams from members that got a slot on this node's server.
    pub rpc_accepted: u64,
    /// RPCs answered by this node's server.
    pub rpc_served: u64,
    /// Streams refused because the peer is not a member.
    pub rpc_refused_non_member: u64,
    /// Streams dropped because the member had too many RPCs in progress.
    pub rpc_busy: u64,
    /// Requests refused as malformed (bad frame or message).
    pub rpc_bad_requests: u64,
}

/// A committed command: where it is in the log and what applying it did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The entry's term.
    pub term: u64,
    /// The entry's index.
    pub index: u64,
    /// What applying it did (the same on every registry).
    pub applied: Applied,
}

/// A running registry Raft node. Cheap to clone; [`RegistryRaft::shutdown`] stops it.
#[derive(Clone)]
pub struct RegistryRaft {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    raft: Raft<TypeConfig>,
    net: Arc<NetShared>,
    store: Arc<Mutex<Store>>,
    state_machine: StateMachine,
    counters: Arc<Counters>,
    server: Mutex<Option<JoinHandle<()>>>,
    /// Starts an election when no leader has been known for a while (see `elect`).
    watchdog: JoinHandle<()>,
    /// Bounds the submits this node forwards to the leader at once.
    forwards: Semaphore,
    config: RaftConfig,
}

impl std::fmt::Debug for RegistryRaft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryRaft")
            .field("id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// The largest state image a store with these limits can produce: the fixed fields, each
/// descriptor, and the votes (9 clocks, 9 votes of 177 bytes and one listed row per relay).
fn max_image_len(max_descriptors: usize) -> u64 {
    let fixed = 1 + 17 + 8 + 17 + 4 + MAX_MEMBERSHIP_LEN + 4 + 1 + 9 * 48 + 4 + 4;
    let per_relay = MAX_COMMAND_LEN + 9 * (4 * 32 + 8 + 9) + 40;
    (fixed as u64).saturating_add((max_descriptors as u64).saturating_mul(per_relay as u64))
}

fn raft_err(e: impl std::fmt::Display) -> RaftError {
    RaftError::Raft {
        reason: e.to_string(),
    }
}

impl RegistryRaft {
    /// Opens the state and the log in `config.data_dir` (creating them), registers the other
    /// members' addresses with `transport`, serves `/braid/raft/1` on it, and, if the log is
    /// pristine, initializes the group with all configured members (every member does the same
    /// with the same membership, which openraft allows; a node that already voted or holds
    /// entries answers `NotAllowed`, which is ignored). `transport` must be this member's
    /// (`peer_id` equal to its configured peer) and must not already accept `/braid/raft/1`.
    pub async fn start(transport: Transport, config: RaftConfig) -> Result<Self, RaftError> {
        config.validate()?;
        let me = config.me().cloned().ok_or_else(|| RaftError::Config {
            reason: "id is not a member".into(),
        })?;
        if me.peer != transport.peer_id() {
            return Err(RaftError::Config {
                reason: format!(
                    "member {} is configured as peer {}, but the transport is {}",
                    me.id,
                    me.peer,
                    transport.peer_id()
                ),
            });
        }
        let dir = config.data_dir.clone();
        let limits = config.store_limits;
        // The members are the registries: their keys sign the attestations the store counts.
        let keys = config
            .members
            .iter()
            .map(|m| {
                braid_transport::public_from_peer_id(&m.peer).ok_or_else(|| RaftError::Config {
                    reason: format!("member {} is not an Ed25519 peer id", m.id),
                })
            })
            .collect::<Result<Vec<[u8; 32]>, _>>()?;
        let (store, log) = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| RaftError::Config {
                reason: format!("cannot create data dir {}: {e}", dir.display()),
            })?;
            let mut store = Store::open(&dir.join(STORE_FILE), limits)?;
            store.set_registries(&keys)?;
            let log_path = dir.join(LOG_FILE);
            let log =
                log_store::LogStore::open(&log_path).map_err(|source| RaftError::LogStore {
                    path: log_path,
                    source,
                })?;
            Ok::<_, RaftError>((store, log))
        })
        .await
        .map_err(raft_err)??;
        let store = Arc::new(Mutex::new(store));
        let others: Vec<RaftMember> = config
            .members
            .iter()
            .filter(|m| m.id != me.id)
            .cloned()
            .collect();
        for m in &others {
            transport
                .add_addresses(m.peer, vec![m.addr.clone()])
                .await
                .map_err(|source| RaftError::Transport {
                    context: "registering a member's address",
                    source,
                })?;
        }
        let net = Arc::new(NetShared {
            transport: transport.clone(),
            peers: others.iter().map(|m| (m.id, m.peer)).collect(),
            max_rpc_bytes: config.max_rpc_bytes,
            rpc_timeout: config.rpc_timeout(),
            snapshot_timeout: Duration::from_millis(config.snapshot_timeout_ms),
            failures: Mutex::new(HashMap::new()),
        });
        let raft_config = openraft::Config {
            cluster_name: "braid-registry".into(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_min_ms,
            election_timeout_max: config.election_max_ms,
            install_snapshot_timeout: config.snapshot_timeout_ms,
            max_payload_entries: config.max_payload_entries,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
            snapshot_max_chunk_size: config.snapshot_chunk_bytes as u64,
            max_in_snapshot_log_to_keep: config.logs_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(raft_err)?;
        let state_machine = StateMachine::new(Arc::clone(&store));
        // A random tick phase, so members started together do not time out together.
        elect::stagger(config.heartbeat_ms).await;
        let raft = Raft::new(
            me.id,
            Arc::new(raft_config),
            Network::new(Arc::clone(&net)),
            log,
            state_machine.clone(),
        )
        .await
        .map_err(raft_err)?;
        let incoming = transport
            .accept(PROTOCOL)
            .map_err(|source| RaftError::Transport {
                context: "accepting /braid/raft/1",
                source,
            })?;
        let counters = Arc::new(Counters::default());
        let server = server::spawn(
            Arc::new(ServerShared {
                raft: raft.clone(),
                members: others.iter().map(|m| (m.peer, m.id)).collect(),
                max_rpc_bytes: config.max_rpc_bytes,
                rpc_timeout: config.rpc_timeout(),
                snapshot_timeout: Duration::from_millis(config.snapshot_timeout_ms),
                max_snapshot_bytes: max_image_len(config.store_limits.max_descriptors),
                max_inbound_per_peer: config.max_inbound_per_peer,
                counters: Arc::clone(&counters),
            }),
            incoming,
        );
        let watchdog = elect::spawn_watchdog(raft.clone(), config.election_max());
        let node = Self {
            inner: Arc::new(Inner {
                id: me.id,
                raft,
                net,
                store,
                state_machine,
                counters,
                server: Mutex::new(Some(server)),
                watchdog,
                forwards: Semaphore::new(config.max_forwards_in_flight()),
                config,
            }),
        };
        if !node.inner.raft.is_initialized().await.map_err(raft_err)? {
            // A pristine group: the lowest id initializes it first, the others only if no
            // leader reached them by their later delay (see `elect::initialize_delay`).
            let first = node.inner.config.members.iter().map(|m| m.id).min() == Some(me.id);
            let (node, delay) = (
                node.clone(),
                elect::initialize_delay(&node.inner.config, first),
            );
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                if let Err(error) = node.initialize().await {
                    tracing::warn!(%error, "raft: initializing the group failed");
                }
            });
        }
        // Reach out to the other members now: after a restart, the leader's own dials to this
        // node may be stuck on the dead address until the QUIC handshake timeout, while an
        // inbound connection lets its next RPC through at once. Each is bounded by the
        // transport's `open_timeout`; failures are openraft's to retry.
        for m in &others {
            let (transport, peer) = (transport.clone(), m.peer);
            tokio::spawn(async move {
                if let Err(error) = transport.connect(peer).await {
                    debug!(%peer, %error, "raft: member not reachable yet");
                }
            });
        }
        info!(id = me.id, "registry raft node started");
        Ok(node)
    }

    /// Initializes the group with all configured members, unless this node already voted or
    /// holds entries.
    async fn initialize(&self) -> Result<(), RaftError> {
        let raft = &self.inner.raft;
        if raft.is_initialized().await.map_err(raft_err)? {
            return Ok(());
        }
        let members: BTreeMap<u64, BasicNode> = self
            .inner
            .config
            .members
            .iter()
            .map(|m| (m.id, BasicNode::new(format!("{}/p2p/{}", m.addr, m.peer))))
            .collect();
        match raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(OpenraftError::APIError(InitializeError::NotAllowed(e))) => {
                debug!(id = self.inner.id, %e, "raft group already initialized");
                Ok(())
            }
            Err(e) => Err(raft_err(e)),
        }
    }

    /// Proposes `command` and waits until it is committed and applied. On a follower the
    /// command is forwarded to the leader over `/braid/raft/1` and the leader's outcome is
    /// returned. Waits at most one election timeout for a leader to be known
    /// ([`RaftError::NoLeader`]), asks again (up to 5 times in all) when the node asked does not
    /// lead, cannot be reached, or gave no answer, and then waits (at most `rpc_timeout`) for this node to apply the
    /// entry too, so a following [`RegistryRaft::descriptors`] sees it. A retried command may be
    /// applied twice; both commands are idempotent (the second gives `Unchanged` or removes
    /// nothing).
    pub async fn submit(&self, command: Command) -> Result<Applied, RaftError> {
        self.submit_committed(command).await.map(|c| c.applied)
    }

    /// [`RegistryRaft::submit`], also returning the entry's log position.
    pub async fn submit_committed(&self, command: Command) -> Result<Committed, RaftError> {
        let bytes = command.encode();
        let inner = &self.inner;
        let election = inner.config.election_max();
        let mut last = None;
        let mut failure = None;
        for _ in 0..SUBMIT_ATTEMPTS {
            let (leader, term) = self.wait_leader(last, election).await?;
            let answer = if leader == inner.id {
                server::propose(&inner.raft, bytes.clone(), inner.config.rpc_timeout()).await
            } else {
                match self.forward(leader, bytes.clone()).await {
                    Ok(answer) => answer,
                    Err(e @ (CallError::TooLarge { .. } | CallError::UnknownMember { .. })) => {
                        return Err(RaftError::Forward {
                            leader,
                            reason: e.to_string(),
                        });
                    }
                    Err(CallError::Unreachable { .. }) => {
                        last = Some((leader, term));
                        continue;
                    }
                    Err(e) => {
                        // The outcome is unknown (the stream broke, timed out, or the leader
                        // was too busy to read it): asking again is safe, commands are
                        // idempotent.
                        failure = Some(RaftError::Forward {
                            leader,
                            reason: e.to_string(),
                        });
                        tokio::time::sleep(Duration::from_millis(inner.config.heartbeat_ms)).await;
                        continue;
                    }
                }
            };
            match answer {
                ForwardResponse::Applied {
                    term,
                    index,
                    outcome,
                } => {
                    // Read-your-writes on this node; the entry is committed either way.
                    let _ = self.wait_applied(index, inner.config.rpc_timeout()).await;
                    return Ok(Committed {
                        term,
                        index,
                        applied: outcome.into(),
                    });
                }
                ForwardResponse::NotLeader { .. } => last = Some((leader, term)),
                ForwardResponse::Failed { reason } => {
                    return Err(RaftError::Forward { leader, reason });
                }
            }
        }
        Err(failure.unwrap_or(RaftError::NoLeader {
            waited: election * SUBMIT_ATTEMPTS as u32,
        }))
    }

    /// Waits (at most `bound`) until a leader is known that is not `stale` (a leader that just
    /// failed, at the term it failed in). Returns its id and term.
    async fn wait_leader(
        &self,
        stale: Option<(u64, u64)>,
        bound: Duration,
    ) -> Result<(u64, u64), RaftError> {
        let started = Instant::now();
        let metrics = self
            .inner
            .raft
            .wait(Some(bound))
            .metrics(
                move |m| match (m.current_leader, stale) {
                    (None, _) => false,
                    (Some(l), Some((s, term))) => l != s || m.current_term > term,
                    (Some(_), None) => true,
                },
                "a leader",
            )
            .await
            .map_err(|e| match e {
                WaitError::Timeout(..) => RaftError::NoLeader {
                    waited: started.elapsed(),
                },
                WaitError::ShuttingDown => RaftError::ShutDown,
            })?;
        let leader = metrics.current_leader.ok_or(RaftError::NoLeader {
            waited: started.elapsed(),
        })?;
        Ok((leader, metrics.current_term))
    }

    async fn forward(&self, leader: u64, bytes: Vec<u8>) -> Result<ForwardResponse, CallError> {
        let net = &self.inner.net;
        // Closed only when the node is dropped, which cannot happen while `self` is borrowed.
        let _slot = self.inner.forwards.acquire().await.ok();
        let peer = *net
            .peers
            .get(&leader)
            .ok_or(CallError::UnknownMember { id: leader })?;
        // The leader's own bound covers the commit; allow the exchange around it too.
        let bound = net.rpc_timeout.saturating_mul(2);
        match net.call(peer, &RpcRequest::Forward(bytes), bound).await? {
            RpcResponse::Forward(answer) => Ok(answer),
            _ => Err(CallError::Unexpected {
                id: leader,
                what: "forward",
            }),
        }
    }

    /// The descriptors this node has applied, sorted by identity. Reads SQLite on the calling
    /// thread (a few ms for thousands of relays): async callers with large states should use
    /// `spawn_blocking`.
    pub fn descriptors(&self) -> Result<Vec<SignedDescriptor>, RaftError> {
        let store = self
            .inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(store.descriptors()?)
    }

    /// This node's applied state as the registry service reads it (votes, listing, clock).
    /// Reads SQLite on the calling thread.
    pub fn view(&self) -> Result<StateView, RaftError> {
        let store = self
            .inner
            .store
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(store.view()?)
    }

    /// This node's view of the group, from openraft's metrics and the server's counters.
    pub fn status(&self) -> RaftStatus {
        let inner = &self.inner;
        let m = inner.raft.metrics().borrow().clone();
        let c = &inner.counters;
        RaftStatus {
            id: inner.id,
            leader: m.current_leader,
            term: m.current_term,
            last_applied: m.last_applied.map(|l| l.index),
            last_log_index: m.last_log_index,
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            members: m.membership_config.membership().voter_ids().collect(),
            snapshots_installed: inner.state_machine.snapshots_installed(),
            rpc_accepted: c.accepted.load(Ordering::Relaxed),
            rpc_served: c.served.load(Ordering::Relaxed),
            rpc_refused_non_member: c.refused_non_member.load(Ordering::Relaxed),
            rpc_busy: c.busy.load(Ordering::Relaxed),
            rpc_bad_requests: c.bad_requests.load(Ordering::Relaxed),
        }
    }

    /// Waits until this node has applied the entry at `index` (or a snapshot past it).
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), RaftError> {
        self.inner
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "wait_applied")
            .await
            .map(drop)
            .map_err(|e| match e {
                WaitError::Timeout(..) => RaftError::Timeout {
                    what: "applying the entry",
                    timeout,
                },
                WaitError::ShuttingDown => RaftError::ShutDown,
            })
    }

    /// Stops serving `/braid/raft/1` and stops the Raft node (its timers, replication and
    /// storage tasks). The transport is the caller's and keeps running. Idempotent.
    pub async fn shutdown(&self) {
        let server = self
            .inner
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(server) = server else { return };
        self.inner.watchdog.abort();
        server.abort();
        let _ = server.await;
        if let Err(error) = self.inner.raft.shutdown().await {
            tracing::error!(%error, "raft core task failed while shutting down");
        }
        info!(id = self.inner.id, "registry raft node shut down");
    }

    /// The configured members by node id (for callers that route to a leader themselves).
    pub fn members(&self) -> HashMap<u64, braid_transport::PeerId> {
        self.inner
            .config
            .members
            .iter()
            .map(|m| (m.id, m.peer))
            .collect()
    }
}
