//! Setting up the log: where lines go (stderr), which (a filter), and how (text or JSON).
//!
//! The filter is, first that is set: `RUST_LOG`; `--log-level`; the config's `[log] level`;
//! `info` (`warn` for `braid sim`). A level word (`debug`) applies to braid's own crates only,
//! libraries stay at `warn` (openraft, libp2p and quinn are chatty at info); anything else is
//! taken as a full `tracing` filter directive. Text carries ANSI colours only when stderr is a
//! terminal. The level can be changed later (SIGHUP) unless `RUST_LOG` or `--log-level` set
//! it. This module does not redact anything: redaction is at the call sites (`redacted()`).

use std::io::IsTerminal;

use anyhow::{Result, anyhow};
use braid_node::config::LogFormat;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry, reload};

/// Every crate of the workspace, whose level a level word sets.
const BRAID_CRATES: [&str; 10] = [
    "braid",
    "braid_codec",
    "braid_splitter",
    "braid_directory",
    "braid_transport",
    "braid_relay",
    "braid_router",
    "braid_registry",
    "braid_node",
    "braid_simulations",
];

/// The filter directive for `level`: a level word sets braid's crates and keeps libraries at
/// `warn` (a `warn` or quieter word applies to everything); anything else is used as is.
pub(crate) fn directive(level: &str) -> String {
    match level {
        "error" => "error".into(),
        "warn" => "warn".into(),
        "info" | "debug" | "trace" => {
            let mut d = String::from("warn");
            for c in BRAID_CRATES {
                d += &format!(",{c}={level}");
            }
            d
        }
        other => other.into(),
    }
}

/// The installed log and how to change its level.
pub(crate) struct Logging {
    handle: reload::Handle<EnvFilter, Registry>,
    /// Who set the level for good (`RUST_LOG`, `--log-level`), or `None` if a reload may.
    fixed_by: Option<&'static str>,
    level: String,
}

/// Installs the global subscriber. `cli_level` is `--log-level`, `config_level` the config's
/// `[log] level`, `default` the level when neither is given.
pub(crate) fn init(
    cli_level: Option<&str>,
    config_level: Option<&str>,
    default: &str,
    format: LogFormat,
) -> Result<Logging> {
    let env = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let (filter, fixed_by, level) = if let Some(env) = env {
        (
            EnvFilter::try_new(&env).map_err(|e| anyhow!("RUST_LOG {env:?}: {e}"))?,
            Some("RUST_LOG"),
            env,
        )
    } else {
        let (level, fixed_by) = match (cli_level, config_level) {
            (Some(l), _) => (l, Some("--log-level")),
            (None, Some(l)) => (l, None),
            (None, None) => (default, None),
        };
        let filter = EnvFilter::try_new(directive(level))
            .map_err(|e| anyhow!("log level {level:?}: {e}"))?;
        (filter, fixed_by, level.to_string())
    };
    let (filter, handle) = reload::Layer::new(filter);
    let ansi = std::io::stderr().is_terminal();
    let output = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init()
        .map_err(|e| anyhow!("cannot install the log: {e}"))?;
    Ok(Logging {
        handle,
        fixed_by,
        level,
    })
}

impl Logging {
    /// Sets the level to `level` (a reloaded config's `[log] level`) and says what happened,
    /// or `None` when nothing changed.
    pub(crate) fn set_level(&mut self, level: &str) -> Option<String> {
        if level == self.level {
            return None;
        }
        if let Some(by) = self.fixed_by {
            return Some(format!(
                "log.level changed to {level:?}: not applied, {by} sets the level"
            ));
        }
        let filter = match EnvFilter::try_new(directive(level)) {
            Ok(f) => f,
            Err(e) => return Some(format!("log.level {level:?}: not applied: {e}")),
        };
        match self.handle.reload(filter) {
            Ok(()) => {
                let line = format!("log.level: {} -> {level}", self.level);
                self.level = level.to_string();
                Some(line)
            }
            Err(e) => Some(format!("log.level {level:?}: not applied: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_words_keep_libraries_at_warn() {
        let d = directive("debug");
        assert!(d.starts_with("warn,"), "{d}");
        for c in BRAID_CRATES {
            assert!(d.contains(&format!(",{c}=debug")), "{c}: {d}");
        }
        assert_eq!(directive("warn"), "warn");
        assert_eq!(directive("openraft=info"), "openraft=info");
        assert!(EnvFilter::try_new(directive("info")).is_ok());
    }

    #[test]
    fn every_workspace_crate_is_listed() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("read");
        let members = manifest
            .split("members = [")
            .nth(1)
            .and_then(|r| r.split(']').next())
            .expect("members");
        for m in members.split(',').map(|m| m.trim().trim_matches('"')) {
            if m.is_empty() {
                continue;
            }
            let name = format!("braid_{m}");
            assert!(BRAID_CRATES.contains(&name.as_str()), "{name} missing");
        }
    }
}
