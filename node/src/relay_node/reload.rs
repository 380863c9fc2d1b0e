//! What a running relay does with a re-read config (SIGHUP): it applies the keys that can
//! change safely (`bandwidth_rate`, `bandwidth_burst`, `accounting_max`, `accounting_period`,
//! and `exit_policy` as long as the relay stays an exit or stays a non-exit: the descriptor is
//! signed again and written, and published at the next republish) and says, for every other
//! changed key, that it needs a restart. `log.level` is the `braid` command's to apply (it
//! owns the subscriber); `log.format` needs a restart. This module does not read files or
//! signals.

use super::RelayNode;
use crate::config::{RelayConfig, changed_keys};

/// Keys a running relay applies on reload.
pub const RELOADABLE_KEYS: [&str; 5] = [
    "bandwidth_rate",
    "bandwidth_burst",
    "accounting_max",
    "accounting_period",
    "exit_policy",
];

/// One line of a reload's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadLine {
    /// A key was changed in the running relay.
    Applied(String),
    /// A key changed in the file but needs a restart to take effect: the whole line, e.g.
    /// `listen changed: needs a restart`.
    NeedsRestart(String),
}

impl RelayNode {
    /// Applies `new` where it differs from `old` (the config the relay runs with) and can
    /// change safely; open circuits continue. Returns one line per changed key, `log.level`
    /// excluded (the `braid` command applies it). The caller keeps `old` for keys that need a restart.
    pub fn reload(&self, old: &RelayConfig, new: &RelayConfig) -> Vec<ReloadLine> {
        let mut lines = Vec::new();
        let mut bandwidth = false;
        let mut budget = false;
        for key in changed_keys(old, new) {
            if key == "log.level" {
                continue;
            }
            if !RELOADABLE_KEYS.contains(&key.as_str()) {
                lines.push(ReloadLine::NeedsRestart(format!(
                    "{key} changed: needs a restart"
                )));
                continue;
            }
            if key == "exit_policy" {
                lines.push(self.reload_exit_policy(new));
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

impl RelayNode {
    fn reload_exit_policy(&self, new: &RelayConfig) -> ReloadLine {
        let restart = |why: String| ReloadLine::NeedsRestart(format!("exit_policy changed: {why}"));
        let policy = match braid_directory::ExitPolicy::parse_rules(&new.exit_policy) {
            Ok(p) => p,
            Err(e) => return restart(e.to_string()),
        };
        if let Err(why) = self.service.set_exit_policy(policy.clone()) {
            return restart(why);
        }
        let signed = match self.advert.set_exit_policy(policy) {
            Ok(s) => s,
            Err(e) => return restart(format!("descriptor not signed again: {e}")),
        };
        let path = self
            .descriptor_path
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let written = match (&signed, path) {
            (Some(d), Some(path)) => match super::advert::write_descriptor_file(&path, d) {
                Ok(()) => "; descriptor signed again and written",
                Err(_) => "; descriptor signed again but not written",
            },
            (Some(_), None) => "; descriptor signed again",
            (None, _) => " (not advertised now)",
        };
        ReloadLine::Applied(format!(
            "exit_policy: now [{}]{written}",
            new.exit_policy.join(", ")
        ))
    }
}

/// The config the relay runs with after a reload that said `lines`: `new`'s reloadable keys
/// (its exit policy only if applied), `old`'s others.
pub fn merged(old: &RelayConfig, new: &RelayConfig, lines: &[ReloadLine]) -> RelayConfig {
    let policy_refused = lines
        .iter()
        .any(|l| matches!(l, ReloadLine::NeedsRestart(t) if t.starts_with("exit_policy")));
    let exit_policy = if policy_refused {
        old.exit_policy.clone()
    } else {
        new.exit_policy.clone()
    };
    RelayConfig {
        bandwidth_rate: new.bandwidth_rate,
        bandwidth_burst: new.bandwidth_burst,
        accounting_max: new.accounting_max,
        accounting_period: new.accounting_period,
        exit_policy,
        log: crate::config::LogConfig {
            level: new.log.level.clone(),
            ..old.log.clone()
        },
        ..old.clone()
    }
}
