//! Typed TOML configuration for the relay and the proxy.
//!
//! Every struct is `#[serde(default, deny_unknown_fields)]`: a missing key takes its default
//! (each a named function below), an unknown key is an error naming the key and the file.
//! `configs/*.toml` documents every key; a test checks those files against these defaults.

use std::net::{Ipv4Addr, SocketAddr};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use braid_directory::ExitPolicy;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

mod measure;
mod registries;

pub use measure::{
    MAX_CONCURRENT_MEASUREMENTS, MeasureConfig, default_measure_bytes,
    default_measure_bytes_per_hour, default_measure_enabled, default_measure_interval_secs,
    default_measure_max_concurrent,
};
pub use registries::{
    MAX_REGISTRIES, Registry, RegistryConfig, RegistryEntry, default_allow_private_addresses,
    default_max_relays, default_publish_burst, default_publish_refill_secs,
    default_snapshot_interval_secs, default_snapshot_validity_secs, parse_registries, raft_id,
};
pub use registries::{
    default_guard_min_bandwidth, default_guard_min_uptime_secs, default_max_relays_per_ipv4_24,
    default_max_relays_per_ipv6_48, default_unmeasured_weight,
};

/// Settings of `braid relay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayConfig {
    /// A public name for the relay (1..=32 of `[A-Za-z0-9_-]`).
    pub nickname: String,
    /// Directory for the identity key, onion key and signed descriptor.
    pub data_dir: PathBuf,
    /// libp2p addresses to listen on (QUIC first, TCP as fallback).
    pub listen: Vec<String>,
    /// Addresses to advertise; empty means the bound listen addresses with a specific IP.
    pub advertise: Vec<String>,
    /// Advertised bandwidth in bytes per second (a path-selection weight).
    pub bandwidth: u64,
    /// Exit policy lines, first match wins; the default refuses everything (not an exit).
    pub exit_policy: Vec<String>,
    /// Peer ids of the other relays this operator runs (at most 32, none twice), signed into
    /// the descriptor. Clients keep two relays off one path only when each lists the other.
    pub family: Vec<String>,
    /// How long a signed descriptor stays valid, in seconds.
    pub descriptor_lifetime_secs: u64,
    /// Most relayed bytes per second, both directions and all circuits together; unset: no
    /// rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_rate: Option<u64>,
    /// Most bytes relayed at once after an idle spell (the token bucket's size); unset: equal
    /// to `bandwidth_rate`. Only meaningful with `bandwidth_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bandwidth_burst: Option<u64>,
    /// Relayed bytes allowed per accounting period; once spent, the relay takes no new
    /// circuits until the period ends. Unset: no budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounting_max: Option<u64>,
    /// The accounting period: a UTC day or a UTC calendar month.
    pub accounting_period: AccountingPeriod,
    /// Map the listen ports on the home router by UPnP and advertise its external address.
    /// When no mapping is possible the relay runs without advertising itself.
    pub upnp: bool,
    /// Lease of the UPnP mappings in seconds (renewed at half of it); at least 10.
    pub upnp_lease_secs: u64,
    /// Nodes asked to dial the relay back (`/braid/dialback/1`) before it advertises itself:
    /// multiaddrs `/ip4|ip6/<ip>/udp/<port>/quic-v1/p2p/<peer id>` or `.../tcp/<port>/p2p/..`,
    /// at most 16, tried in order until one answers. Only confirmed addresses are advertised.
    /// Empty: the relay advertises its addresses untested.
    pub reachability_peers: Vec<String>,
    /// Seconds between reachability re-tests (10..=86400); on loss the descriptor is removed,
    /// on recovery written again. Only used with `reachability_peers`.
    pub reachability_interval_secs: u64,
    /// Seconds between publications of the descriptor to the registries (only with
    /// `registries`); must be well under `descriptor_lifetime_secs`, or the relay drops out of
    /// the directory between two publications.
    pub republish_interval_secs: u64,
    /// Bounds on what the relay accepts.
    pub limits: LimitsConfig,
    /// The registries (`[[registries]]`, peer and address): the relay publishes its descriptor
    /// to them, and fetches, caches and serves their signed directory snapshot. Empty: the
    /// relay only writes its descriptor to `data_dir/descriptor`.
    pub registries: Vec<RegistryEntry>,
}

/// How long one accounting period lasts (periods start at midnight UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountingPeriod {
    /// From midnight UTC to the next.
    Day,
    /// From the first of the month, midnight UTC, to the first of the next month.
    #[default]
    Month,
}

/// Bounds a relay enforces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Circuits through this relay at once.
    pub max_circuits: usize,
    /// Circuits from one previous hop at once.
    pub max_circuits_per_peer: usize,
    /// Streams on one exit circuit at once.
    pub max_streams_per_circuit: usize,
    /// Seconds allowed for a circuit handshake (including extending to the next hop).
    pub handshake_timeout_secs: u64,
    /// Seconds allowed for an exit's name resolution plus TCP connect.
    pub connect_timeout_secs: u64,
}

/// Settings of `braid proxy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where apps connect (SOCKS5). Keep it on loopback.
    pub socks_listen: SocketAddr,
    /// The directory file (a bundle of signed relay descriptors, see `braid directory`); used
    /// only when `registries` is empty.
    pub directory: PathBuf,
    /// The registries (`[[registries]]`, peer and address): the proxy fetches their signed
    /// directory snapshot, verifies it against their keys and refreshes it.
    pub registries: Vec<RegistryEntry>,
    /// Seconds between directory refreshes from the registries.
    pub directory_refresh_secs: u64,
    /// Seconds past the snapshot's `valid_until` that the proxy still builds circuits with
    /// it; after that it builds none until a fresh snapshot arrives.
    pub stale_directory_grace_secs: u64,
    /// Hops per circuit.
    pub hops: usize,
    /// Strands per stream (K, 1..=8): circuits to one exit that share no guard or middle relay
    /// and each carry part of every stream.
    pub strands: usize,
    /// Clean circuits (or strand sets of `strands`) built ahead for the first stream of a new
    /// SOCKS isolation key, 0..=8; 0: a new key waits for its own builds.
    pub preemptive_circuits: usize,
    /// Client identities (a swarm with a fresh, never stored key each) at once: one per SOCKS
    /// isolation key and per clean circuit built ahead, never shared across keys.
    pub max_client_identities: usize,
    /// Build circuits on a client identity per SOCKS isolation key (see
    /// `max_client_identities`); false: one fresh identity per start for everything.
    pub client_identity_per_key: bool,
    /// Circuits open at once.
    pub max_circuits: usize,
    /// Streams on one circuit at once.
    pub max_streams_per_circuit: usize,
    /// App connections served at once.
    pub max_clients: usize,
    /// Seconds an app has to finish the SOCKS5 handshake.
    pub socks_handshake_timeout_secs: u64,
    /// Seconds allowed to build a circuit.
    pub circuit_build_timeout_secs: u64,
    /// Seconds allowed for the exit to open a stream.
    pub stream_timeout_secs: u64,
    /// Seconds after which a circuit takes no new streams.
    pub max_circuit_dirtiness_secs: u64,
    /// Directory for the entry guard file (`guards`); never an identity key.
    pub data_dir: PathBuf,
    /// Primary entry guards (1..=16); at least `strands` are kept.
    pub primary_guards: usize,
    /// Most sampled guards (the hard cap of the guard sample, 1..=256).
    pub guard_sample_size: usize,
    /// Days a sampled guard is kept (Tor: 120).
    pub guard_lifetime_days: u64,
    /// Circuit builds through a guard before path bias judges its build rate (Tor: 150).
    pub path_bias_min_circuits: u32,
    /// A guard with fewer than this percent of its circuits built is dropped (Tor: 30).
    pub path_bias_circuit_percent: u32,
    /// Streams or strands through a guard before path bias judges its use rate (Tor: 20).
    pub path_bias_min_uses: u32,
    /// A guard with fewer than this percent of its streams and strands without a stall or
    /// loss is dropped (Tor: 60).
    pub path_bias_use_percent: u32,
}

/// Most clean circuits (or strand sets) a proxy may keep built ahead.
pub const MAX_PREEMPTIVE: usize = 8;
/// The entry guard file's name in a proxy's `data_dir`.
pub const GUARD_FILE: &str = "guards";
/// Most primary guards a proxy may keep.
pub const MAX_PRIMARY_GUARDS: usize = 16;

/// Default proxy data directory (the entry guard file).
pub fn default_proxy_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/braid-proxy")
}
/// Default number of primary guards (Tor's 3).
pub fn default_primary_guards() -> usize {
    braid_router::guards::GuardSettings::default().primary
}
/// Default hard cap of the guard sample (Tor's 60).
pub fn default_guard_sample_size() -> usize {
    braid_router::guards::GuardSettings::default().max_sample
}
/// Default guard lifetime in days (Tor's 120).
pub fn default_guard_lifetime_days() -> u64 {
    braid_router::guards::GuardSettings::default().sampled_lifetime / braid_router::guards::DAY
}
/// Default path-bias minimum of circuit builds (Tor's 150).
pub fn default_path_bias_min_circuits() -> u32 {
    braid_router::guards::PathBiasSettings::default().min_circuits
}
/// Default path-bias build-rate threshold in percent (Tor's 30).
pub fn default_path_bias_circuit_percent() -> u32 {
    braid_router::guards::PathBiasSettings::default().min_circuit_percent
}
/// Default path-bias minimum of uses (Tor's 20).
pub fn default_path_bias_min_uses() -> u32 {
    braid_router::guards::PathBiasSettings::default().min_uses
}
/// Default path-bias use-rate threshold in percent (Tor's 60).
pub fn default_path_bias_use_percent() -> u32 {
    braid_router::guards::PathBiasSettings::default().min_use_percent
}

/// Default nickname.
pub fn default_nickname() -> String {
    "braidrelay".into()
}
/// Default data directory.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/braid")
}
/// Default listen addresses: QUIC and TCP on port 9401, all IPv4 interfaces.
pub fn default_listen() -> Vec<String> {
    vec![
        "/ip4/0.0.0.0/udp/9401/quic-v1".into(),
        "/ip4/0.0.0.0/tcp/9401".into(),
    ]
}
/// Default advertised bandwidth: 1 MB/s.
pub fn default_bandwidth() -> u64 {
    1_000_000
}
/// Default exit policy: not an exit.
pub fn default_exit_policy() -> Vec<String> {
    vec!["reject *:*".into()]
}
/// Default descriptor lifetime: one day.
pub fn default_descriptor_lifetime_secs() -> u64 {
    86_400
}
/// Default UPnP lease: one hour.
pub fn default_upnp_lease_secs() -> u64 {
    3600
}
/// Default reachability re-test interval: 20 minutes.
pub fn default_reachability_interval_secs() -> u64 {
    1200
}
/// Default republish interval: 30 minutes.
pub fn default_republish_interval_secs() -> u64 {
    1800
}
/// Default directory refresh: every 10 minutes.
pub fn default_directory_refresh_secs() -> u64 {
    600
}
/// Default grace past a snapshot's `valid_until`: one hour. Registries sign a snapshot every
/// few minutes, each valid 3 hours, so a snapshot past its end means the proxy has heard from
/// no registry or relay for hours; an hour more rides out a short outage of them without
/// building on a relay list that may have churned for most of a day (Tor accepts up to 24 h
/// because its authorities vote hourly and are few and slow to recover).
pub fn default_stale_directory_grace_secs() -> u64 {
    3600
}
/// Default SOCKS5 address.
pub fn default_socks_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 1080))
}
/// Default directory file.
pub fn default_directory() -> PathBuf {
    PathBuf::from("directory.json")
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            nickname: default_nickname(),
            data_dir: default_data_dir(),
            listen: default_listen(),
            advertise: Vec::new(),
            bandwidth: default_bandwidth(),
            exit_policy: default_exit_policy(),
            family: Vec::new(),
            descriptor_lifetime_secs: default_descriptor_lifetime_secs(),
            bandwidth_rate: None,
            bandwidth_burst: None,
            accounting_max: None,
            accounting_period: AccountingPeriod::default(),
            upnp: false,
            upnp_lease_secs: default_upnp_lease_secs(),
            reachability_peers: Vec::new(),
            reachability_interval_secs: default_reachability_interval_secs(),
            republish_interval_secs: default_republish_interval_secs(),
            limits: LimitsConfig::default(),
            registries: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = braid_relay::service::RelayLimits::default();
        LimitsConfig {
            max_circuits: d.max_circuits,
            max_circuits_per_peer: d.max_circuits_per_peer,
            max_streams_per_circuit: d.max_streams_per_circuit,
            handshake_timeout_secs: d.handshake_timeout.as_secs(),
            connect_timeout_secs: d.connect_timeout.as_secs(),
        }
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        let d = braid_router::RouterSettings::default();
        ProxyConfig {
            socks_listen: default_socks_listen(),
            directory: default_directory(),
            registries: Vec::new(),
            directory_refresh_secs: default_directory_refresh_secs(),
            stale_directory_grace_secs: default_stale_directory_grace_secs(),
            hops: d.hops,
            strands: d.strands,
            preemptive_circuits: d.preemptive,
            max_client_identities: d.max_client_identities,
            client_identity_per_key: d.identity_per_key,
            max_circuits: d.max_circuits,
            max_streams_per_circuit: d.circuit.max_streams,
            max_clients: braid_router::ProxySettings::default().max_clients,
            socks_handshake_timeout_secs: braid_router::ProxySettings::default()
                .handshake_timeout
                .as_secs(),
            circuit_build_timeout_secs: d.circuit.build_timeout.as_secs(),
            stream_timeout_secs: d.stream_timeout.as_secs(),
            max_circuit_dirtiness_secs: d.max_dirtiness.as_secs(),
            data_dir: default_proxy_data_dir(),
            primary_guards: default_primary_guards(),
            guard_sample_size: default_guard_sample_size(),
            guard_lifetime_days: default_guard_lifetime_days(),
            path_bias_min_circuits: default_path_bias_min_circuits(),
            path_bias_circuit_percent: default_path_bias_circuit_percent(),
            path_bias_min_uses: default_path_bias_min_uses(),
            path_bias_use_percent: default_path_bias_use_percent(),
        }
    }
}

/// Reads and parses a TOML config file; errors name the file and the offending key.
pub fn load_config<T: DeserializeOwned + Validate>(path: &Path) -> Result<T, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    let cfg: T = toml::from_str(&text).map_err(|e| NodeError::ConfigParse {
        path: path.to_path_buf(),
        message: e.to_string().trim_end().to_string(),
    })?;
    cfg.validate(path)?;
    Ok(cfg)
}

/// Range checks beyond what the types express.
pub trait Validate {
    /// Checks every value; `path` names the file in errors.
    fn validate(&self, path: &Path) -> Result<(), NodeError>;
}

fn bad(path: &Path, key: &'static str, reason: impl Into<String>) -> NodeError {
    NodeError::ConfigValue {
        path: path.to_path_buf(),
        key,
        reason: reason.into(),
    }
}

fn positive(path: &Path, key: &'static str, v: u64) -> Result<(), NodeError> {
    if v == 0 {
        return Err(bad(path, key, "must be greater than 0"));
    }
    Ok(())
}

impl Validate for RelayConfig {
    fn validate(&self, path: &Path) -> Result<(), NodeError> {
        let n = &self.nickname;
        if n.is_empty()
            || n.len() > 32
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(bad(
                path,
                "nickname",
                "1..=32 characters of A-Z a-z 0-9 - _",
            ));
        }
        if self.listen.is_empty() {
            return Err(bad(path, "listen", "at least one address is needed"));
        }
        for (key, list) in [("listen", &self.listen), ("advertise", &self.advertise)] {
            if let Some(a) = list
                .iter()
                .find(|a| a.parse::<braid_transport::Multiaddr>().is_err())
            {
                return Err(bad(path, key, format!("not a multiaddr: {a:?}")));
            }
        }
        positive(path, "bandwidth", self.bandwidth)?;
        ExitPolicy::parse_rules(&self.exit_policy)
            .map_err(|e| bad(path, "exit_policy", e.to_string()))?;
        self.family_keys().map_err(|why| bad(path, "family", why))?;
        positive(
            path,
            "descriptor_lifetime_secs",
            self.descriptor_lifetime_secs,
        )?;
        if self.descriptor_lifetime_secs > 7 * 86_400 {
            return Err(bad(path, "descriptor_lifetime_secs", "at most 7 days"));
        }
        self.validate_bandwidth(path)?;
        self.validate_upnp(path)?;
        self.validate_reachability(path)?;
        self.validate_registries(path)?;
        let l = &self.limits;
        positive(path, "limits.max_circuits", l.max_circuits as u64)?;
        positive(
            path,
            "limits.max_circuits_per_peer",
            l.max_circuits_per_peer as u64,
        )?;
        positive(
            path,
            "limits.max_streams_per_circuit",
            l.max_streams_per_circuit as u64,
        )?;
        positive(
            path,
            "limits.handshake_timeout_secs",
            l.handshake_timeout_secs,
        )?;
        positive(path, "limits.connect_timeout_secs", l.connect_timeout_secs)?;
        Ok(())
    }
}

/// The smallest rate and burst: one cell, or the bucket could never cover a cell.
const MIN_BANDWIDTH: u64 = braid_relay::CELL_LEN as u64;

impl RelayConfig {
    fn validate_bandwidth(&self, path: &Path) -> Result<(), NodeError> {
        let one_cell = || format!("must be at least {MIN_BANDWIDTH} (one cell)");
        match (self.bandwidth_rate, self.bandwidth_burst) {
            (None, Some(_)) => {
                return Err(bad(path, "bandwidth_burst", "needs bandwidth_rate"));
            }
            (Some(rate), _) if rate < MIN_BANDWIDTH => {
                return Err(bad(path, "bandwidth_rate", one_cell()));
            }
            (Some(_), Some(burst)) if burst < MIN_BANDWIDTH => {
                return Err(bad(path, "bandwidth_burst", one_cell()));
            }
            _ => {}
        }
        if let Some(max) = self.accounting_max {
            positive(path, "accounting_max", max)?;
        }
        Ok(())
    }

    fn validate_upnp(&self, path: &Path) -> Result<(), NodeError> {
        if !(10..=604_800).contains(&self.upnp_lease_secs) {
            return Err(bad(path, "upnp_lease_secs", "must be 10..=604800 (7 days)"));
        }
        if self.upnp && !self.advertise.is_empty() {
            return Err(bad(
                path,
                "advertise",
                "must be empty with upnp = true (the mapped address is advertised)",
            ));
        }
        Ok(())
    }

    /// The `family` peer ids as the Ed25519 keys the descriptor lists; `Err` says which entry
    /// is not an Ed25519 peer id, is repeated, or that there are too many.
    pub fn family_keys(&self) -> Result<Vec<[u8; 32]>, String> {
        let max = braid_directory::descriptor::MAX_FAMILY_MEMBERS;
        if self.family.len() > max {
            return Err(format!("{} members; at most {max}", self.family.len()));
        }
        let mut keys: Vec<[u8; 32]> = Vec::with_capacity(self.family.len());
        for peer in &self.family {
            let key = peer
                .parse::<braid_transport::PeerId>()
                .ok()
                .and_then(|p| braid_transport::public_from_peer_id(&p))
                .ok_or_else(|| format!("{peer:?} is not an Ed25519 peer id"))?;
            if keys.contains(&key) {
                return Err(format!("{peer:?} is listed twice"));
            }
            keys.push(key);
        }
        Ok(keys)
    }

    fn validate_registries(&self, path: &Path) -> Result<(), NodeError> {
        parse_registries(path, "registries", &self.registries)?;
        if !(10..=self.descriptor_lifetime_secs / 2).contains(&self.republish_interval_secs) {
            return Err(bad(
                path,
                "republish_interval_secs",
                "must be at least 10 and at most half of descriptor_lifetime_secs",
            ));
        }
        Ok(())
    }

    fn validate_reachability(&self, path: &Path) -> Result<(), NodeError> {
        if !(10..=86_400).contains(&self.reachability_interval_secs) {
            return Err(bad(
                path,
                "reachability_interval_secs",
                "must be 10..=86400 (one day)",
            ));
        }
        if self.reachability_peers.len() > 16 {
            return Err(bad(path, "reachability_peers", "at most 16 peers"));
        }
        for peer in &self.reachability_peers {
            crate::relay_node::reachability_peer(peer)
                .map_err(|why| bad(path, "reachability_peers", format!("{peer:?}: {why}")))?;
        }
        Ok(())
    }

    /// The relay-wide rate limit these settings describe (`None`: unlimited). Call after
    /// validation; an invalid (zero) value also gives `None`.
    pub fn bandwidth_limit(&self) -> Option<braid_relay::ratelimit::BandwidthLimit> {
        let rate = NonZeroU64::new(self.bandwidth_rate?)?;
        let burst = match self.bandwidth_burst {
            Some(b) => NonZeroU64::new(b)?,
            None => rate,
        };
        Some(braid_relay::ratelimit::BandwidthLimit { rate, burst })
    }

    /// The accounting budget these settings describe (`None`: no budget).
    pub fn accounting_limit(&self) -> Option<braid_relay::ratelimit::AccountingLimit> {
        Some(braid_relay::ratelimit::AccountingLimit {
            budget: NonZeroU64::new(self.accounting_max?)?,
            period: match self.accounting_period {
                AccountingPeriod::Day => braid_relay::ratelimit::Period::Day,
                AccountingPeriod::Month => braid_relay::ratelimit::Period::Month,
            },
        })
    }

    /// The relay service limits these settings describe.
    pub fn relay_limits(&self) -> braid_relay::service::RelayLimits {
        let l = &self.limits;
        braid_relay::service::RelayLimits {
            max_circuits: l.max_circuits,
            max_circuits_per_peer: l.max_circuits_per_peer,
            max_streams_per_circuit: l.max_streams_per_circuit,
            handshake_timeout: Duration::from_secs(l.handshake_timeout_secs),
            connect_timeout: Duration::from_secs(l.connect_timeout_secs),
            ..Default::default()
        }
    }
}

impl Validate for ProxyConfig {
    fn validate(&self, path: &Path) -> Result<(), NodeError> {
        if !(1..=braid_relay::MAX_HOPS).contains(&self.hops) {
            return Err(bad(path, "hops", "must be 1..=8"));
        }
        if !(1..=usize::from(braid_splitter::config::MAX_STRANDS)).contains(&self.strands) {
            return Err(bad(path, "strands", "must be 1..=8"));
        }
        if self.preemptive_circuits > MAX_PREEMPTIVE {
            return Err(bad(path, "preemptive_circuits", "must be 0..=8"));
        }
        positive(path, "max_circuits", self.max_circuits as u64)?;
        positive(
            path,
            "max_client_identities",
            self.max_client_identities as u64,
        )?;
        positive(
            path,
            "max_streams_per_circuit",
            self.max_streams_per_circuit as u64,
        )?;
        positive(path, "max_clients", self.max_clients as u64)?;
        positive(
            path,
            "socks_handshake_timeout_secs",
            self.socks_handshake_timeout_secs,
        )?;
        positive(
            path,
            "circuit_build_timeout_secs",
            self.circuit_build_timeout_secs,
        )?;
        positive(path, "stream_timeout_secs", self.stream_timeout_secs)?;
        positive(
            path,
            "max_circuit_dirtiness_secs",
            self.max_circuit_dirtiness_secs,
        )?;
        if !(1..=MAX_PRIMARY_GUARDS).contains(&self.primary_guards) {
            return Err(bad(path, "primary_guards", "must be 1..=16"));
        }
        if !(1..=braid_router::guards::MAX_FILE_GUARDS).contains(&self.guard_sample_size) {
            return Err(bad(path, "guard_sample_size", "must be 1..=256"));
        }
        positive(path, "guard_lifetime_days", self.guard_lifetime_days)?;
        positive(
            path,
            "path_bias_min_circuits",
            self.path_bias_min_circuits.into(),
        )?;
        positive(path, "path_bias_min_uses", self.path_bias_min_uses.into())?;
        if self.path_bias_circuit_percent > 100 {
            return Err(bad(path, "path_bias_circuit_percent", "must be 0..=100"));
        }
        if self.path_bias_use_percent > 100 {
            return Err(bad(path, "path_bias_use_percent", "must be 0..=100"));
        }
        parse_registries(path, "registries", &self.registries)?;
        if self.directory_refresh_secs < 10 {
            return Err(bad(path, "directory_refresh_secs", "must be at least 10"));
        }
        Ok(())
    }
}

impl ProxyConfig {
    /// The router settings these settings describe.
    pub fn router_settings(&self) -> braid_router::RouterSettings {
        let mut s = braid_router::RouterSettings {
            hops: self.hops,
            strands: self.strands,
            preemptive: self.preemptive_circuits,
            max_circuits: self.max_circuits,
            max_client_identities: self.max_client_identities,
            identity_per_key: self.client_identity_per_key,
            stream_timeout: Duration::from_secs(self.stream_timeout_secs),
            max_dirtiness: Duration::from_secs(self.max_circuit_dirtiness_secs),
            ..Default::default()
        };
        s.circuit.max_streams = self.max_streams_per_circuit;
        s.circuit.build_timeout = Duration::from_secs(self.circuit_build_timeout_secs);
        let g = &mut s.guards;
        g.primary = self.primary_guards;
        g.max_sample = self.guard_sample_size;
        g.min_sample = g.min_sample.min(self.guard_sample_size);
        g.sampled_lifetime = self
            .guard_lifetime_days
            .saturating_mul(braid_router::guards::DAY);
        g.path_bias.min_circuits = self.path_bias_min_circuits;
        g.path_bias.min_circuit_percent = self.path_bias_circuit_percent;
        g.path_bias.min_uses = self.path_bias_min_uses;
        g.path_bias.min_use_percent = self.path_bias_use_percent;
        s.guard_file = Some(self.data_dir.join(GUARD_FILE));
        s
    }

    /// The SOCKS server settings these settings describe.
    pub fn proxy_settings(&self) -> braid_router::ProxySettings {
        braid_router::ProxySettings {
            max_clients: self.max_clients,
            handshake_timeout: Duration::from_secs(self.socks_handshake_timeout_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RelayConfig, NodeError> {
        let cfg: RelayConfig = toml::from_str(text).map_err(|e| NodeError::ConfigParse {
            path: PathBuf::from("t.toml"),
            message: e.to_string(),
        })?;
        cfg.validate(Path::new("t.toml"))?;
        Ok(cfg)
    }

    #[test]
    fn bandwidth_keys_default_to_no_limit() {
        let cfg = parse("").expect("empty config");
        assert_eq!(cfg.bandwidth_limit(), None);
        assert_eq!(cfg.accounting_limit(), None);
        assert_eq!(cfg.accounting_period, AccountingPeriod::Month);
    }

    #[test]
    fn bandwidth_burst_defaults_to_the_rate() {
        let cfg = parse("bandwidth_rate = 1000000\n").expect("rate only");
        let l = cfg.bandwidth_limit().expect("limited");
        assert_eq!((l.rate.get(), l.burst.get()), (1_000_000, 1_000_000));
        let cfg = parse("bandwidth_rate = 1000000\nbandwidth_burst = 4096\n").expect("both");
        let l = cfg.bandwidth_limit().expect("limited");
        assert_eq!((l.rate.get(), l.burst.get()), (1_000_000, 4096));
    }

    #[test]
    fn accounting_keys_map_to_the_relay_budget() {
        let cfg = parse("accounting_max = 200000000000\naccounting_period = \"day\"\n")
            .expect("accounting");
        let a = cfg.accounting_limit().expect("budget");
        assert_eq!(a.budget.get(), 200_000_000_000);
        assert_eq!(a.period, braid_relay::ratelimit::Period::Day);
        let cfg = parse("accounting_max = 1\n").expect("month");
        assert_eq!(
            cfg.accounting_limit().expect("budget").period,
            braid_relay::ratelimit::Period::Month
        );
    }

    #[test]
    fn bad_bandwidth_values_name_the_key() {
        let cases = [
            ("bandwidth_rate = 0\n", "bandwidth_rate"),
            ("bandwidth_rate = 4095\n", "bandwidth_rate"),
            (
                "bandwidth_rate = 10000\nbandwidth_burst = 4095\n",
                "bandwidth_burst",
            ),
            ("bandwidth_burst = 10000\n", "bandwidth_burst"),
            ("accounting_max = 0\n", "accounting_max"),
            ("accounting_period = \"week\"\n", "accounting_period"),
            ("bandwidth_rate = -1\n", "bandwidth_rate"),
            ("upnp_lease_secs = 9\n", "upnp_lease_secs"),
            ("upnp_lease_secs = 604801\n", "upnp_lease_secs"),
            (
                "upnp = true\nadvertise = [\"/ip4/8.8.8.8/tcp/1\"]\n",
                "advertise",
            ),
        ];
        for (text, key) in cases {
            let err = parse(text).expect_err(text).to_string();
            assert!(err.contains(key), "{text:?}: {err}");
        }
        // The smallest valid values: one cell.
        parse("bandwidth_rate = 4096\nbandwidth_burst = 4096\n").expect("one cell");
        parse("upnp = true\nupnp_lease_secs = 10\n").expect("shortest lease");
        parse("upnp_lease_secs = 604800\n").expect("longest lease");
    }

    #[test]
    fn reachability_keys_are_checked() {
        let cfg = parse("").expect("empty config");
        assert!(cfg.reachability_peers.is_empty());
        assert_eq!(cfg.reachability_interval_secs, 1200);
        let id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
        let good = format!(
            "reachability_peers = [\"/ip4/198.51.100.1/udp/9401/quic-v1/p2p/{id}\", \
             \"/ip6/2001:db8::1/tcp/9401/p2p/{id}\"]\nreachability_interval_secs = 10\n"
        );
        let cfg = parse(&good).expect("two peers, shortest interval");
        assert_eq!(cfg.reachability_peers.len(), 2);
        parse("reachability_interval_secs = 86400\n").expect("longest interval");
        let many = format!(
            "reachability_peers = [{}]\n",
            vec![format!("\"/ip4/198.51.100.1/tcp/1/p2p/{id}\""); 17].join(", ")
        );
        for text in [
            "reachability_interval_secs = 9\n".to_string(),
            "reachability_interval_secs = 86401\n".into(),
            "reachability_peers = [\"/ip4/198.51.100.1/tcp/9401\"]\n".into(),
            format!("reachability_peers = [\"/dns4/example.org/tcp/1/p2p/{id}\"]\n"),
            "reachability_peers = [\"/ip4/198.51.100.1/tcp/1/p2p/nope\"]\n".into(),
            many,
        ] {
            let err = parse(&text).expect_err(&text).to_string();
            assert!(err.contains("reachability_"), "{text:?}: {err}");
        }
    }

    #[test]
    fn the_home_relay_config_sets_realistic_limits_and_documents_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/relay-home.toml");
        let cfg: RelayConfig = load_config(&path).expect("relay-home.toml");
        let bw = cfg.bandwidth_limit().expect("rate limited");
        assert_eq!((bw.rate.get(), bw.burst.get()), (1_000_000, 2_000_000));
        let acct = cfg.accounting_limit().expect("budget");
        assert_eq!(acct.budget.get(), 200_000_000_000);
        assert_eq!(acct.period, braid_relay::ratelimit::Period::Month);
        assert!(
            !ExitPolicy::parse_rules(&cfg.exit_policy)
                .expect("policy")
                .is_exit()
        );
        // The commented "# key = value" lines, uncommented, are the defaults (the same rule
        // node/tests/it/configs.rs applies to every file).
        let text = std::fs::read_to_string(&path).expect("read");
        let commented: String = text
            .lines()
            .map(str::trim)
            .filter_map(|t| {
                if t.starts_with('[') {
                    return Some(format!("{t}\n"));
                }
                let rest = t.strip_prefix("# ")?;
                let (k, _) = rest.split_once(" = ")?;
                k.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
                    .then(|| format!("{rest}\n"))
            })
            .collect();
        let defaults: RelayConfig = toml::from_str(&commented).expect("commented defaults");
        assert_eq!(defaults, RelayConfig::default());
    }
}
