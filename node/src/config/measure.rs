//! The `[measure]` table of `braid registry`: how the registry measures the bandwidth of the
//! relays it lists (a timed echo through each relay, relay PROTOCOL.md §6.2). Mapped onto
//! `braid_registry::service::MeasureSettings`; the timeouts not listed here keep its defaults.

use std::path::Path;
use std::time::Duration;

use braid_registry::service::MeasureSettings;
use braid_relay::measure::MEASURE_MAX_BYTES;
use serde::{Deserialize, Serialize};

use super::{bad, positive};
use crate::error::NodeError;

/// Most measurements a registry may run at once.
pub const MAX_CONCURRENT_MEASUREMENTS: usize = 64;

/// Settings of a registry's bandwidth measurements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeasureConfig {
    /// Whether this registry measures relays at all.
    pub enabled: bool,
    /// Mean seconds between two measurements of one relay (each jittered by ±25 %).
    #[serde(deserialize_with = "super::units::secs")]
    pub interval_secs: u64,
    /// Bytes sent through and echoed back by the relay per measurement (at most 4 MiB).
    #[serde(deserialize_with = "super::units::size")]
    pub bytes: u64,
    /// Measurements running at once.
    pub max_concurrent: usize,
    /// Bytes all measurements started within any hour may carry (at least `bytes`).
    #[serde(deserialize_with = "super::units::size")]
    pub bytes_per_hour: u64,
}

/// Default: measuring is on.
pub fn default_measure_enabled() -> bool {
    true
}
/// Default interval: one hour.
pub fn default_measure_interval_secs() -> u64 {
    3600
}
/// Default bytes per measurement: 2 MiB.
pub fn default_measure_bytes() -> u64 {
    2 * 1024 * 1024
}
/// Default concurrency: 4 measurements.
pub fn default_measure_max_concurrent() -> usize {
    4
}
/// Default hourly budget: 4 GiB (2048 measurements of 2 MiB).
pub fn default_measure_bytes_per_hour() -> u64 {
    4 * 1024 * 1024 * 1024
}

impl Default for MeasureConfig {
    fn default() -> Self {
        MeasureConfig {
            enabled: default_measure_enabled(),
            interval_secs: default_measure_interval_secs(),
            bytes: default_measure_bytes(),
            max_concurrent: default_measure_max_concurrent(),
            bytes_per_hour: default_measure_bytes_per_hour(),
        }
    }
}

impl MeasureConfig {
    /// Checks every value; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), NodeError> {
        positive(path, "measure.interval_secs", self.interval_secs)?;
        if !(1..=MEASURE_MAX_BYTES).contains(&self.bytes) {
            return Err(bad(
                path,
                "measure.bytes",
                format!("must be 1..={MEASURE_MAX_BYTES}"),
            ));
        }
        if !(1..=MAX_CONCURRENT_MEASUREMENTS).contains(&self.max_concurrent) {
            return Err(bad(
                path,
                "measure.max_concurrent",
                format!("must be 1..={MAX_CONCURRENT_MEASUREMENTS}"),
            ));
        }
        if self.bytes_per_hour < self.bytes {
            return Err(bad(
                path,
                "measure.bytes_per_hour",
                "must be at least measure.bytes",
            ));
        }
        Ok(())
    }

    /// The registry service's settings for these values.
    pub fn settings(&self) -> MeasureSettings {
        MeasureSettings {
            enabled: self.enabled,
            interval: Duration::from_secs(self.interval_secs),
            bytes: self.bytes,
            max_concurrent: self.max_concurrent,
            bytes_per_hour: self.bytes_per_hour,
            ..MeasureSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_registry_crate() {
        let d = MeasureConfig::default().settings();
        assert_eq!(d, MeasureSettings::default());
        assert!(d.validate().is_ok());
    }

    #[test]
    fn bad_values_name_the_key() {
        let path = Path::new("registry.toml");
        for (cfg, key) in [
            (
                MeasureConfig {
                    interval_secs: 0,
                    ..MeasureConfig::default()
                },
                "measure.interval_secs",
            ),
            (
                MeasureConfig {
                    bytes: MEASURE_MAX_BYTES + 1,
                    ..MeasureConfig::default()
                },
                "measure.bytes",
            ),
            (
                MeasureConfig {
                    max_concurrent: 0,
                    ..MeasureConfig::default()
                },
                "measure.max_concurrent",
            ),
            (
                MeasureConfig {
                    bytes_per_hour: 1,
                    ..MeasureConfig::default()
                },
                "measure.bytes_per_hour",
            ),
        ] {
            match cfg.validate(path) {
                Err(NodeError::ConfigValue { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
