//! The registry list every node is configured with (`[[registries]]`, like Tor's directory
//! authorities), and the settings of `braid registry`.
//!
//! A registry is named by its peer id and one address. The peer id is an Ed25519 key inlined
//! in the id, so the same entry also says which key signs that registry's share of a directory
//! snapshot: no separate key list to keep in sync.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use braid_transport::{Multiaddr, PeerId, public_from_peer_id};
use serde::{Deserialize, Serialize};

use super::{Validate, bad, check_listen, default_data_dir, default_listen, positive};
use crate::error::NodeError;

/// The most registries a group may have (a snapshot needs a majority of their signatures).
pub const MAX_REGISTRIES: usize = 9;

/// One registry as a config lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// The registry's peer id (`12D3KooW...`); its Ed25519 key signs directory snapshots.
    pub peer: String,
    /// Where it listens, e.g. `/ip4/198.51.100.7/udp/9400/quic-v1` (no `/p2p/` part, or the
    /// same peer id's).
    pub address: String,
}

/// A registry entry, checked and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// Its peer id.
    pub peer: PeerId,
    /// Where it listens (without a `/p2p/` part).
    pub address: Multiaddr,
    /// Its Ed25519 public key (from the peer id).
    pub key: [u8; 32],
    /// Its Raft node id: derived from the peer id, so every config gives the same one
    /// whatever the order of the list.
    pub raft_id: u64,
}

/// The Raft node id of a registry: the first 8 bytes of BLAKE3(peer id bytes), never 0.
pub fn raft_id(peer: &PeerId) -> u64 {
    let hash = blake3::hash(&peer.to_bytes());
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_be_bytes(id).max(1)
}

/// Checks and parses a `registries` list (`key` names it in errors): at most
/// [`MAX_REGISTRIES`], distinct Ed25519 peer ids, addresses that parse.
pub fn parse_registries(
    path: &Path,
    key: &'static str,
    entries: &[RegistryEntry],
) -> Result<Vec<Registry>, NodeError> {
    if entries.len() > MAX_REGISTRIES {
        return Err(bad(
            path,
            key,
            format!("at most {MAX_REGISTRIES} registries"),
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for e in entries {
        let peer: PeerId = e
            .peer
            .parse()
            .map_err(|err| bad(path, key, format!("peer {:?}: {err}", e.peer)))?;
        let key_bytes = public_from_peer_id(&peer).ok_or_else(|| {
            bad(
                path,
                key,
                format!("peer {:?} is not an Ed25519 peer id", e.peer),
            )
        })?;
        let (text, named) = match e.address.split_once("/p2p/") {
            Some((a, id)) => (a, Some(id)),
            None => (e.address.as_str(), None),
        };
        if named.is_some_and(|id| id.parse::<PeerId>().ok() != Some(peer)) {
            return Err(bad(
                path,
                key,
                format!("address {:?} names another peer", e.address),
            ));
        }
        let address: Multiaddr = text
            .parse()
            .map_err(|err| bad(path, key, format!("address {:?}: {err}", e.address)))?;
        if !seen.insert(peer) {
            return Err(bad(path, key, format!("peer {:?} is listed twice", e.peer)));
        }
        out.push(Registry {
            peer,
            address,
            key: key_bytes,
            raft_id: raft_id(&peer),
        });
    }
    let ids: BTreeSet<u64> = out.iter().map(|r| r.raft_id).collect();
    if ids.len() != out.len() {
        return Err(bad(
            path,
            key,
            "two peers share a Raft id; generate a new key",
        ));
    }
    Ok(out)
}

/// Settings of `braid registry`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Keys, the Raft log and the directory state (SQLite) live here.
    pub data_dir: PathBuf,
    /// libp2p listen addresses (QUIC and TCP).
    pub listen: Vec<String>,
    /// Every registry of the group, this one included.
    pub registries: Vec<RegistryEntry>,
    /// Seconds between directory snapshots (each signed by a majority of the registries).
    #[serde(deserialize_with = "super::units::secs")]
    pub snapshot_interval_secs: u64,
    /// Seconds a snapshot stays valid after it is issued.
    #[serde(deserialize_with = "super::units::secs")]
    pub snapshot_validity_secs: u64,
    /// Relays the directory may list at once.
    pub max_relays: usize,
    /// Bandwidth measurement of the listed relays (the `[measure]` table).
    pub measure: super::MeasureConfig,
    /// Relays listed at most per IPv4 /24 (the highest-weight ones are kept).
    pub max_relays_per_ipv4_24: usize,
    /// Relays listed at most per IPv6 /48.
    pub max_relays_per_ipv6_48: usize,
    /// Seconds a relay must have been listed before it gets the Guard flag.
    #[serde(deserialize_with = "super::units::secs")]
    pub guard_min_uptime_secs: u64,
    /// Measured bytes per second a relay needs for the Guard flag.
    #[serde(deserialize_with = "super::units::rate")]
    pub guard_min_bandwidth: u64,
    /// The weight (bytes per second) of a relay not measured yet, unless it claims less.
    #[serde(deserialize_with = "super::units::rate")]
    pub unmeasured_weight: u64,
    /// Dial-back private, loopback, link-local and documentation addresses too. Only for
    /// test networks and the simulator (everything on loopback).
    pub allow_private_addresses: bool,
    /// Publishes one source address (IPv4, or IPv6 /64) may make in a burst.
    pub publish_burst: u32,
    /// Seconds after which one more publish per source address is allowed.
    #[serde(deserialize_with = "super::units::secs")]
    pub publish_refill_secs: u64,
    /// Log level and format (the `[log]` table).
    pub log: super::LogConfig,
    /// Where the local HTTP API listens (loopback; port 0: a free port, written to
    /// `data_dir/api.addr`).
    pub api_listen: std::net::SocketAddr,
    /// Allow a non-loopback `api_listen`.
    pub api_allow_remote: bool,
    /// Serve the API's `/v1/health` without the token.
    pub api_open_health: bool,
    /// Serve the API's `/metrics` without the token.
    pub api_open_metrics: bool,
    /// API requests per second allowed per bearer key; more answer 429.
    pub api_requests_per_sec: u32,
    /// API requests allowed at once after an idle spell.
    pub api_burst: u32,
}

/// Default seconds between directory snapshots: five minutes.
pub fn default_snapshot_interval_secs() -> u64 {
    300
}
/// Default snapshot validity: three hours (as Tor's consensus).
pub fn default_snapshot_validity_secs() -> u64 {
    3 * 3600
}
/// Default most relays listed: 10 000.
pub fn default_max_relays() -> usize {
    10_000
}
/// Default: public addresses only.
pub fn default_allow_private_addresses() -> bool {
    false
}
/// Default publish burst per source address: 8.
pub fn default_publish_burst() -> u32 {
    8
}
/// Default: one more publish per source address every 30 s.
pub fn default_publish_refill_secs() -> u64 {
    30
}

/// Default relays per IPv4 /24: [`braid_directory::listing::default_max_per_ipv4_24`] (2).
pub fn default_max_relays_per_ipv4_24() -> usize {
    braid_directory::listing::default_max_per_ipv4_24()
}
/// Default relays per IPv6 /48: [`braid_directory::listing::default_max_per_ipv6_48`] (2).
pub fn default_max_relays_per_ipv6_48() -> usize {
    braid_directory::listing::default_max_per_ipv6_48()
}
/// Default uptime for Guard: [`braid_directory::listing::default_guard_min_uptime_secs`]
/// (8 days).
pub fn default_guard_min_uptime_secs() -> u64 {
    braid_directory::listing::default_guard_min_uptime_secs()
}
/// Default measured bandwidth for Guard:
/// [`braid_directory::listing::default_guard_min_bandwidth`] (250 000 B/s).
pub fn default_guard_min_bandwidth() -> u64 {
    braid_directory::listing::default_guard_min_bandwidth()
}
/// Default weight of an unmeasured relay: [`braid_directory::listing::default_unmeasured_weight`]
/// (20 000 B/s).
pub fn default_unmeasured_weight() -> u64 {
    braid_directory::listing::default_unmeasured_weight()
}

impl RegistryConfig {
    /// The local HTTP API's settings (the `api_*` keys).
    pub fn api(&self) -> super::ApiConfig {
        super::api::api_config_of!(self)
    }

    /// The listing rule these keys describe.
    pub fn listing_params(&self) -> braid_directory::ListingParams {
        braid_directory::ListingParams {
            max_per_ipv4_24: self.max_relays_per_ipv4_24,
            max_per_ipv6_48: self.max_relays_per_ipv6_48,
            guard_min_uptime_secs: self.guard_min_uptime_secs,
            guard_min_bandwidth: self.guard_min_bandwidth,
            unmeasured_weight: self.unmeasured_weight,
        }
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            data_dir: default_data_dir(),
            listen: default_listen(),
            registries: Vec::new(),
            snapshot_interval_secs: default_snapshot_interval_secs(),
            snapshot_validity_secs: default_snapshot_validity_secs(),
            max_relays: default_max_relays(),
            measure: super::MeasureConfig::default(),
            max_relays_per_ipv4_24: default_max_relays_per_ipv4_24(),
            max_relays_per_ipv6_48: default_max_relays_per_ipv6_48(),
            guard_min_uptime_secs: default_guard_min_uptime_secs(),
            guard_min_bandwidth: default_guard_min_bandwidth(),
            unmeasured_weight: default_unmeasured_weight(),
            allow_private_addresses: default_allow_private_addresses(),
            publish_burst: default_publish_burst(),
            publish_refill_secs: default_publish_refill_secs(),
            log: super::LogConfig::default(),
            api_listen: super::api::default_api_listen(),
            api_allow_remote: super::api::default_api_allow_remote(),
            api_open_health: super::api::default_api_open_health(),
            api_open_metrics: super::api::default_api_open_metrics(),
            api_requests_per_sec: super::api::default_api_requests_per_sec(),
            api_burst: super::api::default_api_burst(),
        }
    }
}

impl Validate for RegistryConfig {
    fn validate(&self, path: &Path) -> Result<(), NodeError> {
        self.log.validate(path)?;
        if self.listen.is_empty() {
            return Err(bad(path, "listen", "at least one address is needed"));
        }
        check_listen(path, "listen", &self.listen)?;
        let list = parse_registries(path, "registries", &self.registries)?;
        if list.is_empty() {
            return Err(bad(
                path,
                "registries",
                "list every registry of the group, this one included",
            ));
        }
        positive(path, "snapshot_interval_secs", self.snapshot_interval_secs)?;
        self.measure.validate(path)?;
        self.api().validate(path)?;
        if self.snapshot_validity_secs < 2 * self.snapshot_interval_secs {
            return Err(bad(
                path,
                "snapshot_validity_secs",
                "must be at least twice snapshot_interval_secs",
            ));
        }
        positive(
            path,
            "max_relays_per_ipv4_24",
            self.max_relays_per_ipv4_24 as u64,
        )?;
        positive(
            path,
            "max_relays_per_ipv6_48",
            self.max_relays_per_ipv6_48 as u64,
        )?;
        positive(path, "unmeasured_weight", self.unmeasured_weight)?;
        if !(1..=braid_registry::state::MAX_STATE_DESCRIPTORS).contains(&self.max_relays) {
            return Err(bad(
                path,
                "max_relays",
                format!(
                    "must be 1..={}",
                    braid_registry::state::MAX_STATE_DESCRIPTORS
                ),
            ));
        }
        Ok(())
    }
}
