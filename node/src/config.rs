//! Typed TOML configuration for the relay and the proxy.
//!
//! Every struct is `#[serde(default, deny_unknown_fields)]`: a missing key takes its default
//! (each a named function below), an unknown key is an error naming the key and the file.
//! `configs/*.toml` documents every key; a test checks those files against these defaults.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::NodeError;

mod api;
mod check;
mod log;
mod measure;
mod proxy;
mod registries;
mod relay;
pub mod units;

pub use check::{Role, check, detect_role};
pub use log::{LOG_LEVELS, LogConfig, LogFormat, default_log_level};

pub use api::{
    ApiConfig, MAX_API_REQUESTS_PER_SEC, default_api_allow_remote, default_api_burst,
    default_api_listen, default_api_open_health, default_api_open_metrics,
    default_api_requests_per_sec,
};
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

/// Checks that every entry of a `listen` list is an address the transport can listen on:
/// `/ip4|ip6/<ip>/tcp/<port>` or `/ip4|ip6/<ip>/udp/<port>/quic-v1`. Checked when the config
/// is loaded, so a bad one is refused before any key is created or port bound.
fn check_listen(path: &Path, key: &'static str, list: &[String]) -> Result<(), NodeError> {
    for text in list {
        let addr: braid_transport::Multiaddr = text
            .parse()
            .map_err(|e| bad(path, key, format!("not a multiaddr: {text:?}: {e}")))?;
        let canonical = addr.to_string();
        let parts: Vec<&str> = canonical.split('/').skip(1).collect();
        let ip_ok = |kind: &str, ip: &str| match kind {
            "ip4" => ip.parse::<std::net::Ipv4Addr>().is_ok(),
            "ip6" => ip.parse::<std::net::Ipv6Addr>().is_ok(),
            _ => false,
        };
        let supported = match parts.as_slice() {
            [kind, ip, "tcp", port] => ip_ok(kind, ip) && port.parse::<u16>().is_ok(),
            [kind, ip, "udp", port, "quic-v1"] => ip_ok(kind, ip) && port.parse::<u16>().is_ok(),
            _ => false,
        };
        if !supported {
            return Err(bad(
                path,
                key,
                format!(
                    "unsupported address {text:?}: use /ip4|ip6/<ip>/udp/<port>/quic-v1 or \
                     /ip4|ip6/<ip>/tcp/<port>"
                ),
            ));
        }
    }
    Ok(())
}

/// The `listen` addresses of a config, checked as [`check_listen`] does (errors name
/// `<built-in>`: a config loaded from a file was checked already).
pub(crate) fn listen_addrs(list: &[String]) -> Result<Vec<braid_transport::Multiaddr>, NodeError> {
    check_listen(Path::new("<built-in>"), "listen", list)?;
    list.iter()
        .map(|a| {
            a.parse()
                .map_err(|e| bad(Path::new("<built-in>"), "listen", format!("{a:?}: {e}")))
        })
        .collect()
}

fn positive(path: &Path, key: &'static str, v: u64) -> Result<(), NodeError> {
    if v == 0 {
        return Err(bad(path, key, "must be greater than 0"));
    }
    Ok(())
}

/// The keys whose values differ between two configs of one kind, as `key` or `table.key`
/// (for a SIGHUP reload to say what changed). Two configs that do not serialize give none.
pub fn changed_keys<T: serde::Serialize>(old: &T, new: &T) -> Vec<String> {
    let (Ok(toml::Value::Table(a)), Ok(toml::Value::Table(b))) =
        (toml::Value::try_from(old), toml::Value::try_from(new))
    else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for k in keys {
        match (a.get(k), b.get(k)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => {
                for sub in changed_keys(x, y) {
                    out.push(format!("{k}.{sub}"));
                }
            }
            (x, y) if x != y => out.push(k.clone()),
            _ => {}
        }
    }
    out
}

pub use proxy::*;
pub use relay::*;
