//! Typed TOML configuration for the relay and the proxy.
//!
//! Every struct is `#[serde(default, deny_unknown_fields)]`: a missing key takes its default
//! (each a named function below), an unknown key is an error naming the key and the file.
//! `configs/*.toml` documents every key; a test checks those files against these defaults.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::NodeError;

mod api;
mod measure;
mod proxy;
mod registries;
mod relay;

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

fn positive(path: &Path, key: &'static str, v: u64) -> Result<(), NodeError> {
    if v == 0 {
        return Err(bad(path, key, "must be greater than 0"));
    }
    Ok(())
}

pub use proxy::*;
pub use relay::*;
