//! The `/braid/registry/1` service over a node's transport: the drivers around the sans-IO
//! [`protocol`](crate::protocol) codec and the `braid_directory` snapshot types.
//!
//! Feature `client` (proxies and relays; no SQLite, no Raft):
//!
//! - `DirectoryFeed` (proxies and relays): fetches the snapshot from any registry or relay,
//!   verifies it against the configured registry keys, refreshes it, keeps the last good one.
//! - `RelayCache` (relays): serves the last snapshot the relay fetched and verified.
//! - `publish` and `Republisher` (relays): get the relay's descriptor listed and keep it so.
//!
//! Feature `server` (registry nodes) adds:
//!
//! - `RegistryRole`: takes relay descriptors (`Request::Publish`) after checking them and
//!   dialing back every claimed address, proposes them to the replicated state (`Replica`);
//!   on every registry, dials back each published relay itself and submits its signed
//!   attestation (`attest`), so a relay is listed only once a majority verified it; on the
//!   Raft leader, builds a directory snapshot of the listing every `snapshot_interval`, has
//!   the other registries co-sign it (each signs only what it builds itself from the same
//!   state) and offers the majority-signed result to them; every registry serves the newest
//!   one it holds.
//! - `SoloReplica`: the one-registry mode (one SQLite store, no Raft) behind `Replica`.
//!
//! Every request has a deadline, every queue and cache a bound. Logs name peers (peer ids are
//! public, they are in the directory) but never keys, descriptor addresses or payloads above
//! `debug`. It does not do Raft: `Replica` is implemented by the Raft group (`crate::raft`).

mod error;
mod exchange;
mod feed;
mod io;
mod publish;
mod registries;
mod relay_cache;
mod served;
mod server;
mod settings;

#[cfg(feature = "server")]
mod attest;
#[cfg(feature = "server")]
mod cosign;
#[cfg(feature = "server")]
mod leader;
#[cfg(feature = "server")]
mod measure;
#[cfg(feature = "server")]
mod persisted;
#[cfg(feature = "server")]
mod reachability;
#[cfg(feature = "server")]
mod registry_role;
#[cfg(feature = "server")]
mod solo;
#[cfg(feature = "server")]
mod stats;

use std::time::{SystemTime, UNIX_EPOCH};

#[cfg(feature = "server")]
use braid_directory::SignedDescriptor;
use braid_transport::StreamProtocol;
#[cfg(feature = "server")]
use futures::future::BoxFuture;

#[cfg(feature = "server")]
use crate::state::Command;
#[cfg(feature = "server")]
use crate::store::{Applied, StateView, StoreError};

pub use crate::repeat::{FailureLog, Report};
#[cfg(feature = "server")]
pub use attest::{ATTEST_HEARTBEAT, ATTEST_POLL, MeasuredBandwidth, RETRY_UNREACHABLE};
pub use error::ServiceError;
pub use feed::{DirectoryFeed, FetchOutcome, MAX_EXTRA_SOURCES, SnapshotReceiver};
#[cfg(feature = "server")]
pub use measure::{
    MeasureSettings, Measurer, default_max_concurrent_measurements, default_measure_bytes,
    default_measure_bytes_per_hour, default_measure_enabled, default_measure_first_delay,
    default_measure_interval, default_measure_refresh_interval, default_measure_timeout,
};
pub use publish::{DescriptorSource, FIRST_RETRY, PublishStatus, Republisher, publish};
pub use registries::{PeerAddresses, Registries, registry_key_of};
#[cfg(feature = "server")]
pub use registry_role::{RegistryRole, RoleOptions};
pub use relay_cache::RelayCache;
pub use settings::{
    FeedSettings, RepublishSettings, ServerSettings, default_bootstrap_relays,
    default_feed_request_timeout, default_handle_timeout, default_max_requests,
    default_max_requests_per_peer, default_max_sources_per_round, default_read_timeout,
    default_refresh_interval, default_relay_sources, default_republish_interval,
    default_republish_request_timeout, default_republish_retry, default_retry_interval,
    default_write_timeout,
};
#[cfg(feature = "server")]
pub use settings::{
    RegistrySettings, default_allow_private_addresses, default_expire_interval,
    default_max_clock_skew, default_max_concurrent_probes, default_peer_timeout,
    default_probe_cache_entries, default_probe_cache_ttl, default_probe_queue_timeout,
    default_probe_timeout, default_publish_burst, default_publish_refill, default_publish_sources,
    default_replication_wait, default_snapshot_interval, default_snapshot_validity,
};
#[cfg(feature = "server")]
pub use solo::SoloReplica;
#[cfg(feature = "server")]
pub use stats::{PublishResult, RegistryStats};

/// `/braid/registry/1` on the node's swarm.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new(crate::protocol::PROTOCOL_NAME);

/// The replicated registry state as the service sees it (feature `server`). The Raft group
/// implements it; [`SoloReplica`] is the one-registry mode.
#[cfg(feature = "server")]
pub trait Replica: Send + Sync + 'static {
    /// Proposes a command and waits until it is committed and applied (forwarding to the leader
    /// is the replica's job).
    fn submit(&self, command: Command) -> BoxFuture<'static, Result<Applied, ReplicaError>>;
    /// The descriptors in the local applied state, sorted by identity. May block briefly (the
    /// service calls it on a blocking thread).
    fn descriptors(&self) -> Result<Vec<SignedDescriptor>, ReplicaError>;
    /// The local applied state with its votes, read at one log position. May block briefly
    /// (the service calls it on a blocking thread).
    fn view(&self) -> Result<StateView, ReplicaError>;
    /// Whether this node is the Raft leader now (the leader proposes `Expire` and builds
    /// snapshots).
    fn is_leader(&self) -> bool;
    /// The term this node leads in, if it is the leader now. A leader-only job takes it once
    /// at its start and checks it again before each step that acts on other registries or
    /// publishes, so an ex-leader, or a leader deposed and re-elected in between, does
    /// nothing more. Default: term 0 whenever [`Replica::is_leader`] (a single registry).
    fn leader_term(&self) -> Option<u64> {
        self.is_leader().then_some(0)
    }
    /// The registry this node knows as the leader now, if it knows one. A co-signer refuses
    /// a `CoSign` from any other registry (an ex-leader that still believes it leads).
    /// Default: `None` (no check).
    fn leader(&self) -> Option<braid_transport::PeerId> {
        None
    }
}

/// Why the replicated state could not do what the service asked (feature `server`).
#[cfg(feature = "server")]
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The group cannot commit now (no leader, no quorum, shutting down ...).
    #[error("registry state unavailable: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The local SQLite store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The wall clock in unix seconds (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
