//! What a running relay does with a re-read config (SIGHUP): it applies the keys that can
//! change safely (`bandwidth_rate`, `bandwidth_burst`, `accounting_max`, `accounting_period`)
//! and says, for every other changed key, that it needs a restart. The `[log]` table is the
//! `braid` command's (it owns the subscriber). This module does not read files or signals.

use super::RelayNode;
use crate::config::{RelayConfig, changed_keys};

/// Keys a running relay applies on reload.
pub const RELOADABLE_KEYS: [&str; 4] = [
    "bandwidth_rate",
    "bandwidth_burst",
    "accounting_max",
    "accounting_period",
];

/// One line of a reload's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadLine {
    /// A key was changed in the running relay.
    Applied(String),
    /// A key changed in the file but needs a restart to take effect.
    NeedsRestart(String),
}

impl RelayNode {
    /// Applies `new` where it differs from `old` (the config the relay runs with) and can
    /// change safely; open circuits continue. Returns one line per changed key, `log.*`
    /// excluded. The caller keeps `old` for keys that need a restart.
    pub fn reload(&self, old: &RelayConfig, new: &RelayConfig) -> Vec<ReloadLine> {
        let mut lines = Vec::new();
        let mut bandwidth = false;
        let mut budget = false;
        for key in changed_keys(old, new) {
            if key.starts_with("log.") {
                continue;
            }
            if !RELOADABLE_KEYS.contains(&key.as_str()) {
                lines.push(ReloadLine::NeedsRestart(key));
                continue;
            }
            bandwidth |= key.starts_with("bandwidth_");
            budget |= key.starts_with("accounting_");
            let show = |v: Option<u64>| v.map_or("unset".to_string(), |v| v.to_string());
            let text = match key.as_str() {
                "bandwidth_rate" => format!(
                    "bandwidth_rate: {} -> {}",
                    show(old.bandwidth_rate),
                    show(new.bandwidth_rate)
                ),
                "bandwidth_burst" => format!(
                    "bandwidth_burst: {} -> {}",
                    show(old.bandwidth_burst),
                    show(new.bandwidth_burst)
                ),
                "accounting_max" => format!(
                    "accounting_max: {} -> {}",
                    show(old.accounting_max),
                    show(new.accounting_max)
                ),
                _ => format!(
                    "accounting_period: {:?} -> {:?}",
                    old.accounting_period, new.accounting_period
                ),
            };
            lines.push(ReloadLine::Applied(text));
        }
        if bandwidth {
            self.service.set_bandwidth(new.bandwidth_limit());
        }
        if budget {
            self.service.set_accounting(new.accounting_limit());
        }
        lines
    }
}

/// The config the relay runs with after a reload: `new`'s reloadable keys, `old`'s others.
pub fn merged(old: &RelayConfig, new: &RelayConfig) -> RelayConfig {
    RelayConfig {
        bandwidth_rate: new.bandwidth_rate,
        bandwidth_burst: new.bandwidth_burst,
        accounting_max: new.accounting_max,
        accounting_period: new.accounting_period,
        log: new.log.clone(),
        ..old.clone()
    }
}
