//! The relay's settings (`braid relay`): listening, bandwidth and accounting, reachability,
//! and the limits a relay keeps per circuit and per peer.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::time::Duration;

use braid_directory::ExitPolicy;
use serde::{Deserialize, Serialize};

use super::{RegistryEntry, Validate, bad, check_listen, parse_registries, positive};
use crate::error::NodeError;

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
    #[serde(deserialize_with = "super::units::rate")]
    pub bandwidth: u64,
    /// Exit policy lines, first match wins; the default refuses everything (not an exit).
    pub exit_policy: Vec<String>,
    /// Peer ids of the other relays this operator runs (at most 32, none twice), signed into
    /// the descriptor. Clients keep two relays off one path only when each lists the other.
    pub family: Vec<String>,
    /// How long a signed descriptor stays valid, in seconds.
    #[serde(deserialize_with = "super::units::secs")]
    pub descriptor_lifetime_secs: u64,
    /// Most relayed bytes per second, both directions and all circuits together; unset: no
    /// rate limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "super::units::opt_rate")]
    pub bandwidth_rate: Option<u64>,
    /// Most bytes relayed at once after an idle spell (the token bucket's size); unset: equal
    /// to `bandwidth_rate`. Only meaningful with `bandwidth_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "super::units::opt_size")]
    pub bandwidth_burst: Option<u64>,
    /// Relayed bytes allowed per accounting period; once spent, the relay takes no new
    /// circuits until the period ends. Unset: no budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(deserialize_with = "super::units::opt_size")]
    pub accounting_max: Option<u64>,
    /// The accounting period: a UTC day or a UTC calendar month.
    pub accounting_period: AccountingPeriod,
    /// Map the listen ports on the home router by UPnP and advertise its external address.
    /// When no mapping is possible the relay runs without advertising itself.
    pub upnp: bool,
    /// Lease of the UPnP mappings in seconds (renewed at half of it); at least 10.
    #[serde(deserialize_with = "super::units::secs")]
    pub upnp_lease_secs: u64,
    /// Nodes asked to dial the relay back (`/braid/dialback/1`) before it advertises itself:
    /// multiaddrs `/ip4|ip6/<ip>/udp/<port>/quic-v1/p2p/<peer id>` or `.../tcp/<port>/p2p/..`,
    /// at most 16, tried in order until one answers. Only confirmed addresses are advertised.
    /// Empty: the relay advertises its addresses untested.
    pub reachability_peers: Vec<String>,
    /// Seconds between reachability re-tests (10..=86400); on loss the descriptor is removed,
    /// on recovery written again. Only used with `reachability_peers`.
    #[serde(deserialize_with = "super::units::secs")]
    pub reachability_interval_secs: u64,
    /// Seconds between publications of the descriptor to the registries (only with
    /// `registries`); must be well under `descriptor_lifetime_secs`, or the relay drops out of
    /// the directory between two publications.
    #[serde(deserialize_with = "super::units::secs")]
    pub republish_interval_secs: u64,
    /// Bounds on what the relay accepts.
    pub limits: LimitsConfig,
    /// The registries (`[[registries]]`, peer and address): the relay publishes its descriptor
    /// to them, and fetches, caches and serves their signed directory snapshot. Empty: the
    /// relay only writes its descriptor to `data_dir/descriptor`.
    pub registries: Vec<RegistryEntry>,
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
    #[serde(deserialize_with = "super::units::secs")]
    pub handshake_timeout_secs: u64,
    /// Seconds allowed for an exit's name resolution plus TCP connect.
    #[serde(deserialize_with = "super::units::secs")]
    pub connect_timeout_secs: u64,
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

impl Validate for RelayConfig {
    fn validate(&self, path: &Path) -> Result<(), NodeError> {
        self.log.validate(path)?;
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
        check_listen(path, "listen", &self.listen)?;
        if let Some(a) = self
            .advertise
            .iter()
            .find(|a| a.parse::<braid_transport::Multiaddr>().is_err())
        {
            return Err(bad(path, "advertise", format!("not a multiaddr: {a:?}")));
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
        self.api().validate(path)?;
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
    /// The local HTTP API's settings (the `api_*` keys).
    pub fn api(&self) -> super::ApiConfig {
        super::api::api_config_of!(self)
    }

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

#[cfg(test)]
mod tests;
