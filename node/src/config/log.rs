//! The `[log]` table every node config has: the log level and format. `braid` reads it before
//! it starts logging; `--log-level`/`--log-format` override it and `RUST_LOG` overrides both.
//! This module only holds the settings; the subscriber is set up by the `braid` command.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::bad;
use crate::error::NodeError;

/// The levels `level` may name.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Settings of a node's logs (the `[log]` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Level of braid's own messages (`error`, `warn`, `info`, `debug`, `trace`); libraries
    /// log at `warn` whatever this says. Reloaded on SIGHUP.
    pub level: String,
    /// `text` (for people; colours only on a terminal) or `json` (one object per line).
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Default log level: `info`.
pub fn default_log_level() -> String {
    "info".into()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: default_log_level(),
            format: LogFormat::default(),
        }
    }
}

impl LogConfig {
    /// The `[log]` table of the config file at `path`, read before logging starts: the file's
    /// other keys are not checked here and any error gives `None` (the full load that follows
    /// reports it).
    pub fn peek(path: &Path) -> Option<LogConfig> {
        /// Only the `[log]` table; every other key is ignored.
        #[derive(Deserialize)]
        struct Peek {
            #[serde(default)]
            log: LogConfig,
        }
        let text = std::fs::read_to_string(path).ok()?;
        let peek: Peek = toml::from_str(&text).ok()?;
        Some(peek.log)
    }

    /// Checks `level`; `path` names the file in errors.
    pub fn validate(&self, path: &Path) -> Result<(), NodeError> {
        if !LOG_LEVELS.contains(&self.level.as_str()) {
            return Err(bad(
                path,
                "log.level",
                format!("{:?}: must be one of {}", self.level, LOG_LEVELS.join(", ")),
            ));
        }
        Ok(())
    }
}
