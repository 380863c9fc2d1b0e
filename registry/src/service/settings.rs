//! Settings of the registry service, the relay cache, the directory feed and the republisher:
//! plain data with a named default for every field and a `validate` that refuses zero counts
//! and durations (there is no "0 means unlimited"). The node crate maps its TOML onto them.

use std::time::Duration;

use super::ServiceError;

#[cfg(feature = "server")]
mod registry;

#[cfg(feature = "server")]
pub use registry::{
    RegistrySettings, default_allow_private_addresses, default_expire_interval,
    default_max_clock_skew, default_max_concurrent_probes, default_peer_timeout,
    default_probe_cache_entries, default_probe_cache_ttl, default_probe_queue_timeout,
    default_probe_timeout, default_publish_burst, default_publish_refill, default_publish_sources,
    default_replication_wait, default_snapshot_interval, default_snapshot_validity,
};

/// Bounds of a `/braid/registry/1` server (registry or relay cache).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// Requests served at once, from all peers; further streams are dropped unread (the peer
    /// sees a reset stream).
    pub max_requests: usize,
    /// Requests served at once from one peer; a further one is answered `Refused(Busy)`
    /// without being read.
    pub max_requests_per_peer: usize,
    /// Bound on receiving a whole request after the stream opened (a co-sign request carries
    /// a whole snapshot).
    pub read_timeout: Duration,
    /// Bound on handling one request (a publish waits for its dial-back probes; a co-sign may
    /// wait for replication). Past it the answer is `Refused(Unavailable)`.
    pub handle_timeout: Duration,
    /// Bound on writing the answer (a snapshot is megabytes); a peer that does not read is cut
    /// off.
    pub write_timeout: Duration,
}

/// 64 requests at once.
pub fn default_max_requests() -> usize {
    64
}

/// 4 requests at once per peer.
pub fn default_max_requests_per_peer() -> usize {
    4
}

/// 30 s to receive a request.
pub fn default_read_timeout() -> Duration {
    Duration::from_secs(30)
}

/// 60 s to handle a request.
pub fn default_handle_timeout() -> Duration {
    Duration::from_secs(60)
}

/// 60 s to write an answer.
pub fn default_write_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_requests: default_max_requests(),
            max_requests_per_peer: default_max_requests_per_peer(),
            read_timeout: default_read_timeout(),
            handle_timeout: default_handle_timeout(),
            write_timeout: default_write_timeout(),
        }
    }
}

impl ServerSettings {
    /// Refuses zero counts and durations, and a per-peer bound above the total.
    pub fn validate(&self) -> Result<(), ServiceError> {
        nonzero("server.max_requests", self.max_requests)?;
        nonzero("server.max_requests_per_peer", self.max_requests_per_peer)?;
        if self.max_requests_per_peer > self.max_requests {
            return Err(config(
                "server.max_requests_per_peer",
                "must not exceed server.max_requests",
            ));
        }
        positive("server.read_timeout", self.read_timeout)?;
        positive("server.handle_timeout", self.handle_timeout)?;
        positive("server.write_timeout", self.write_timeout)
    }
}

/// How a proxy or relay keeps its directory snapshot fresh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSettings {
    /// How often to ask for a newer snapshot once one is held.
    pub refresh_interval: Duration,
    /// How long to wait before the next round while none is held or the last round failed.
    pub retry_interval: Duration,
    /// Bound on one fetch from one source (a snapshot is megabytes).
    pub request_timeout: Duration,
    /// Sources tried per round, in random order, until one answers with a good snapshot or
    /// "not modified".
    pub max_sources_per_round: usize,
    /// Relays from the snapshot in use added to each round's candidates (chosen at random),
    /// so the directory keeps coming when registries are busy or down (relays cache and serve
    /// it). 0: registries and the configured extra sources only.
    pub relay_sources: usize,
    /// While no snapshot is held, or the one in use lists fewer relays than this, ask again
    /// soon instead of after `refresh_interval`: every 2 s while the sources answer, every
    /// `retry_interval` while they fail. A forming network's registries list its relays
    /// within seconds (a proxy sets it to what its paths need). 0: never.
    pub bootstrap_relays: usize,
}

/// Ask for a newer snapshot every 10 minutes.
pub fn default_refresh_interval() -> Duration {
    Duration::from_secs(600)
}

/// Retry after 30 s while no good snapshot is held or a round failed.
pub fn default_retry_interval() -> Duration {
    Duration::from_secs(30)
}

/// 60 s per fetch.
pub fn default_feed_request_timeout() -> Duration {
    Duration::from_secs(60)
}

/// Up to 4 sources per round.
pub fn default_max_sources_per_round() -> usize {
    4
}

/// No relays as sources unless asked for (a relay's own feed asks registries only).
pub fn default_relay_sources() -> usize {
    0
}

/// 0: the regular refresh whatever the snapshot lists.
pub fn default_bootstrap_relays() -> usize {
    0
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            refresh_interval: default_refresh_interval(),
            retry_interval: default_retry_interval(),
            request_timeout: default_feed_request_timeout(),
            max_sources_per_round: default_max_sources_per_round(),
            relay_sources: default_relay_sources(),
            bootstrap_relays: default_bootstrap_relays(),
        }
    }
}

impl FeedSettings {
    /// Refuses zero counts and durations.
    pub fn validate(&self) -> Result<(), ServiceError> {
        positive("feed.refresh_interval", self.refresh_interval)?;
        positive("feed.retry_interval", self.retry_interval)?;
        positive("feed.request_timeout", self.request_timeout)?;
        nonzero("feed.max_sources_per_round", self.max_sources_per_round)
    }
}

/// How a relay keeps its descriptor listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepublishSettings {
    /// How often a fresh descriptor is published after a success.
    pub republish_interval: Duration,
    /// How soon to try again after every registry refused or failed.
    pub retry_interval: Duration,
    /// Bound on one publish exchange with one registry (it dials the relay back first).
    pub request_timeout: Duration,
}

/// Republish every 30 minutes.
pub fn default_republish_interval() -> Duration {
    Duration::from_secs(1800)
}

/// Retry a failed publish after 60 s.
pub fn default_republish_retry() -> Duration {
    Duration::from_secs(60)
}

/// 60 s per publish exchange.
pub fn default_republish_request_timeout() -> Duration {
    Duration::from_secs(60)
}

impl Default for RepublishSettings {
    fn default() -> Self {
        Self {
            republish_interval: default_republish_interval(),
            retry_interval: default_republish_retry(),
            request_timeout: default_republish_request_timeout(),
        }
    }
}

impl RepublishSettings {
    /// Refuses zero durations.
    pub fn validate(&self) -> Result<(), ServiceError> {
        positive("republish.republish_interval", self.republish_interval)?;
        positive("republish.retry_interval", self.retry_interval)?;
        positive("republish.request_timeout", self.request_timeout)
    }
}

fn config(field: &'static str, reason: &'static str) -> ServiceError {
    ServiceError::Config { field, reason }
}

fn nonzero(field: &'static str, value: usize) -> Result<(), ServiceError> {
    if value == 0 {
        return Err(config(field, "must be greater than zero"));
    }
    Ok(())
}

fn positive(field: &'static str, value: Duration) -> Result<(), ServiceError> {
    if value.is_zero() {
        return Err(config(field, "must be greater than zero"));
    }
    Ok(())
}
