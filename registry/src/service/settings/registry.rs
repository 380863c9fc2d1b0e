//! Settings of the registry role (feature `server`): probing, expiry, snapshot building and
//! co-signing, on top of the server's bounds. Plain data like the rest of `settings`.

use std::path::PathBuf;
use std::time::Duration;

use braid_directory::ListingParams;
use braid_directory::snapshot::MAX_SNAPSHOT_LIFETIME_SECS;

use super::super::ServiceError;
use super::super::measure::MeasureSettings;
use super::{ServerSettings, config, nonzero, positive};

/// Everything a registry node's service needs besides its key and peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySettings {
    /// The server's bounds.
    pub server: ServerSettings,
    /// Bound on one dial-back probe of a claimed relay address.
    pub probe_timeout: Duration,
    /// Probes running at once, across all publish requests.
    pub max_concurrent_probes: usize,
    /// How long an address may wait for a probe slot before the publish is refused as busy.
    pub probe_queue_timeout: Duration,
    /// How long a probe result is reused for the same relay and address (a relay that
    /// republishes, or publishes to several registries, is not dialed again each time).
    pub probe_cache_ttl: Duration,
    /// Probe results kept at most; the oldest is forgotten first.
    pub probe_cache_entries: usize,
    /// How often the leader proposes `Expire { now }`, dropping expired descriptors.
    pub expire_interval: Duration,
    /// How often the leader builds, co-signs and offers a new directory snapshot.
    pub snapshot_interval: Duration,
    /// How long a snapshot stays valid (`valid_until - issued_at`, at most 24 h). Descriptors
    /// that expire before the end are left out, so relays must publish descriptors that live
    /// longer than this plus their republish interval.
    pub snapshot_validity: Duration,
    /// How far a snapshot's `issued_at` may be from this registry's clock for it to co-sign.
    pub max_clock_skew: Duration,
    /// How long a co-signer waits for descriptors it does not hold yet to be replicated.
    pub replication_wait: Duration,
    /// Bound on one co-sign or offer exchange with another registry.
    pub peer_timeout: Duration,
    /// Dial private, loopback, link-local, shared and documentation addresses too (see
    /// `dialback::policy::is_public`). Only for test networks and the simulator, which run on
    /// loopback; on the open network it would let relays aim the registry at its own LAN.
    pub allow_private_addresses: bool,
    /// Publishes one source (IPv4 address or IPv6 /64) may have checked in a burst.
    pub publish_burst: u32,
    /// One more publish per source after each interval this long.
    pub publish_refill: Duration,
    /// Sources whose publish rate is tracked at once (the table is bounded; refilled buckets
    /// go first, then the least recently charged).
    pub publish_sources: usize,
    /// Where the served snapshot is kept across restarts (`directory-snapshot.bin`); `None`
    /// keeps it in memory only.
    pub data_dir: Option<PathBuf>,
    /// Bandwidth measurement of the listed relays.
    pub measure: MeasureSettings,
    /// The listing rule (subnet caps, Guard requirements, unmeasured weight); every registry of
    /// the group must use the same values, or co-signers refuse the leader's snapshots.
    pub listing: ListingParams,
}

/// 5 s per probe: a reachable relay answers a QUIC or TCP handshake well within it, and a
/// black-holed address holds a probe slot no longer.
pub fn default_probe_timeout() -> Duration {
    Duration::from_secs(5)
}

/// Public addresses only.
pub fn default_allow_private_addresses() -> bool {
    false
}

/// 8 publishes in a burst per source (relays sharing an address, restarts).
pub fn default_publish_burst() -> u32 {
    8
}

/// Then one publish per 30 s per source (a relay republishes every 30 minutes and retries a
/// failure after 60 s).
pub fn default_publish_refill() -> Duration {
    Duration::from_secs(30)
}

/// 4096 sources tracked.
pub fn default_publish_sources() -> usize {
    4096
}

/// 8 probes at once (one relay's full address list).
pub fn default_max_concurrent_probes() -> usize {
    8
}

/// 20 s waiting for a probe slot.
pub fn default_probe_queue_timeout() -> Duration {
    Duration::from_secs(20)
}

/// Probe results reused for 60 s.
pub fn default_probe_cache_ttl() -> Duration {
    Duration::from_secs(60)
}

/// 1024 probe results kept.
pub fn default_probe_cache_entries() -> usize {
    1024
}

/// `Expire` every 60 s.
pub fn default_expire_interval() -> Duration {
    Duration::from_secs(60)
}

/// A new snapshot every 5 minutes (as `braid registry`'s `snapshot_interval_secs`).
pub fn default_snapshot_interval() -> Duration {
    Duration::from_secs(300)
}

/// Snapshots valid for 3 hours.
pub fn default_snapshot_validity() -> Duration {
    Duration::from_secs(3 * 3600)
}

/// Co-sign only snapshots issued within 60 s of this registry's clock.
pub fn default_max_clock_skew() -> Duration {
    Duration::from_secs(60)
}

/// Wait up to 5 s for replication before refusing to co-sign.
pub fn default_replication_wait() -> Duration {
    Duration::from_secs(5)
}

/// 30 s per co-sign or offer exchange.
pub fn default_peer_timeout() -> Duration {
    Duration::from_secs(30)
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            server: ServerSettings::default(),
            probe_timeout: default_probe_timeout(),
            max_concurrent_probes: default_max_concurrent_probes(),
            probe_queue_timeout: default_probe_queue_timeout(),
            probe_cache_ttl: default_probe_cache_ttl(),
            probe_cache_entries: default_probe_cache_entries(),
            expire_interval: default_expire_interval(),
            snapshot_interval: default_snapshot_interval(),
            snapshot_validity: default_snapshot_validity(),
            max_clock_skew: default_max_clock_skew(),
            replication_wait: default_replication_wait(),
            peer_timeout: default_peer_timeout(),
            allow_private_addresses: default_allow_private_addresses(),
            publish_burst: default_publish_burst(),
            publish_refill: default_publish_refill(),
            publish_sources: default_publish_sources(),
            data_dir: None,
            measure: MeasureSettings::default(),
            listing: ListingParams::default(),
        }
    }
}

impl RegistrySettings {
    /// Refuses zero counts and durations and a snapshot validity over 24 h or under 1 s.
    pub fn validate(&self) -> Result<(), ServiceError> {
        self.server.validate()?;
        self.measure.validate()?;
        nonzero("registry.max_concurrent_probes", self.max_concurrent_probes)?;
        nonzero("registry.probe_cache_entries", self.probe_cache_entries)?;
        nonzero("registry.publish_burst", self.publish_burst as usize)?;
        nonzero("registry.publish_sources", self.publish_sources)?;
        for (field, value) in [
            ("registry.probe_timeout", self.probe_timeout),
            ("registry.probe_queue_timeout", self.probe_queue_timeout),
            ("registry.probe_cache_ttl", self.probe_cache_ttl),
            ("registry.expire_interval", self.expire_interval),
            ("registry.snapshot_interval", self.snapshot_interval),
            ("registry.max_clock_skew", self.max_clock_skew),
            ("registry.replication_wait", self.replication_wait),
            ("registry.peer_timeout", self.peer_timeout),
            ("registry.publish_refill", self.publish_refill),
        ] {
            positive(field, value)?;
        }
        nonzero(
            "registry.listing.max_per_ipv4_24",
            self.listing.max_per_ipv4_24,
        )?;
        nonzero(
            "registry.listing.max_per_ipv6_48",
            self.listing.max_per_ipv6_48,
        )?;
        if self.listing.unmeasured_weight == 0 {
            return Err(config(
                "registry.listing.unmeasured_weight",
                "must be at least 1",
            ));
        }
        let validity = self.snapshot_validity.as_secs();
        if !(1..=MAX_SNAPSHOT_LIFETIME_SECS).contains(&validity) {
            return Err(config(
                "registry.snapshot_validity",
                "must be 1 s to 24 h (whole seconds)",
            ));
        }
        Ok(())
    }
}
