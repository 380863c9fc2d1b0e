//! The proxy's settings (`braid proxy`): the SOCKS port, the directory, paths, strands,
//! guards and the limits a proxy keeps on its clients.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{RegistryEntry, Validate, bad, parse_registries, positive};
use crate::error::NodeError;

/// Settings of `braid proxy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where apps connect (SOCKS5, SOCKS4/4a). Keep it on loopback.
    pub socks_listen: SocketAddr,
    /// Where apps that speak no SOCKS connect with HTTP CONNECT; none (off) by default. Must be
    /// a loopback address unless `http_listen_allow_remote` is set.
    pub http_listen: Option<SocketAddr>,
    /// Allow `http_listen` on an address other than loopback (anyone who reaches it can use
    /// the proxy's circuits).
    pub http_listen_allow_remote: bool,
    /// The directory file (a bundle of signed relay descriptors, see `braid directory`); used
    /// only when `registries` is empty.
    pub directory: PathBuf,
    /// The registries (`[[registries]]`, peer and address): the proxy fetches their signed
    /// directory snapshot, verifies it against their keys and refreshes it.
    pub registries: Vec<RegistryEntry>,
    /// Seconds between directory refreshes from the registries.
    #[serde(deserialize_with = "super::units::secs")]
    pub directory_refresh_secs: u64,
    /// Seconds past the snapshot's `valid_until` that the proxy still builds circuits with
    /// it; after that it builds none until a fresh snapshot arrives.
    #[serde(deserialize_with = "super::units::secs")]
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
    #[serde(deserialize_with = "super::units::secs")]
    pub socks_handshake_timeout_secs: u64,
    /// Seconds allowed to build a circuit.
    #[serde(deserialize_with = "super::units::secs")]
    pub circuit_build_timeout_secs: u64,
    /// Seconds allowed for the exit to open a stream.
    #[serde(deserialize_with = "super::units::secs")]
    pub stream_timeout_secs: u64,
    /// Seconds after which a circuit takes no new streams.
    #[serde(deserialize_with = "super::units::secs")]
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
impl Default for ProxyConfig {
    fn default() -> Self {
        let d = braid_router::RouterSettings::default();
        ProxyConfig {
            socks_listen: default_socks_listen(),
            http_listen: None,
            http_listen_allow_remote: false,
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

impl Validate for ProxyConfig {
    fn validate(&self, path: &Path) -> Result<(), NodeError> {
        self.log.validate(path)?;
        if let Some(http) = self.http_listen {
            if !http.ip().is_loopback() && !self.http_listen_allow_remote {
                return Err(bad(
                    path,
                    "http_listen",
                    "must be a loopback address unless http_listen_allow_remote = true",
                ));
            }
            if http == self.socks_listen && http.port() != 0 {
                return Err(bad(
                    path,
                    "http_listen",
                    "is the same address as socks_listen",
                ));
            }
        }
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
        self.api().validate(path)?;
        if self.directory_refresh_secs < 10 {
            return Err(bad(path, "directory_refresh_secs", "must be at least 10"));
        }
        Ok(())
    }
}

impl ProxyConfig {
    /// The local HTTP API's settings (the `api_*` keys).
    pub fn api(&self) -> super::ApiConfig {
        super::api::api_config_of!(self)
    }

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
