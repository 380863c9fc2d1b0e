//! The relay's accounting count persisted across restarts: `data_dir/accounting`, a small
//! versioned TOML file (`version`, `period_start`, `used`) written through a temporary file and
//! a rename, every [`SAVE_INTERVAL`] while the count changes and once at shutdown, so a restart
//! loses at most a minute of counting. A file that does not parse is moved aside
//! (`accounting.corrupt`) with a warning and counting starts from zero. Whether the saved count
//! still applies (same period) is `braid_relay::ratelimit::Accounting::resume`'s decision.
//! This module does not count bytes; the relay service does.

use std::path::{Path, PathBuf};
use std::time::Duration;

use braid_relay::ratelimit::civil_from_days;
use braid_relay::service::AccountingState;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// File name of the persisted count inside the data directory.
pub const ACCOUNTING_FILE: &str = "accounting";
/// Where a file that does not parse is moved.
pub const ACCOUNTING_CORRUPT_FILE: &str = "accounting.corrupt";
/// The file format's version.
pub const ACCOUNTING_VERSION: u32 = 1;
/// Most time between two saves while the count changes.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(60);
/// Longest file accepted (a valid one is under 100 bytes).
const MAX_FILE_LEN: usize = 4096;

/// The persisted count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedAccounting {
    /// The file format's version ([`ACCOUNTING_VERSION`]).
    pub version: u32,
    /// When the counted period began (Unix seconds).
    pub period_start: u64,
    /// Relayed bytes counted in it.
    pub used: u64,
}

impl SavedAccounting {
    /// Parses the file's text; `Err` says why it is not a valid count.
    pub fn decode(text: &str) -> Result<Self, String> {
        if text.len() > MAX_FILE_LEN {
            return Err(format!("longer than {MAX_FILE_LEN} bytes"));
        }
        let saved: SavedAccounting = toml::from_str(text).map_err(|e| e.message().to_string())?;
        if saved.version != ACCOUNTING_VERSION {
            return Err(format!(
                "version {} (this braid reads version {ACCOUNTING_VERSION})",
                saved.version
            ));
        }
        Ok(saved)
    }

    /// The file's text.
    pub fn encode(&self) -> String {
        format!(
            "# braid relay accounting: bytes relayed in the period that began at period_start \
             (Unix seconds).\nversion = {}\nperiod_start = {}\nused = {}\n",
            self.version, self.period_start, self.used
        )
    }
}

/// Reads the saved count from `data_dir`: `None` when there is none or it is corrupt (then
/// moved aside with a warning).
pub fn load(data_dir: &Path) -> Option<SavedAccounting> {
    let path = data_dir.join(ACCOUNTING_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "accounting: cannot read the saved count; counting from zero");
            return None;
        }
    };
    let why = match std::str::from_utf8(&text) {
        Ok(t) => match SavedAccounting::decode(t) {
            Ok(saved) => return Some(saved),
            Err(why) => why,
        },
        Err(_) => "not UTF-8".to_string(),
    };
    let aside = data_dir.join(ACCOUNTING_CORRUPT_FILE);
    let moved = std::fs::rename(&path, &aside).is_ok();
    warn!(
        file = %path.display(),
        moved_to = %if moved { aside.display().to_string() } else { "nowhere (rename failed)".into() },
        "accounting: saved count is corrupt ({why}); counting from zero"
    );
    None
}

/// Writes `state` to `data_dir/accounting` through a temporary file and a rename.
pub fn save(data_dir: &Path, state: &AccountingState) -> std::io::Result<()> {
    let saved = SavedAccounting {
        version: ACCOUNTING_VERSION,
        period_start: state.period_start_unix,
        used: state.used_bytes,
    };
    let tmp: PathBuf = data_dir.join(format!("{ACCOUNTING_FILE}.tmp"));
    std::fs::write(&tmp, saved.encode())?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, data_dir.join(ACCOUNTING_FILE))
}

/// `bytes` for people, in SI units: `41.2 GB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    let digits = if value < 100.0 { 1 } else { 0 };
    // Trim "200.0" to "200".
    let text = format!("{value:.digits$}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

/// The UTC date (`2027-01-01`) of Unix seconds.
pub fn utc_date(unix: u64) -> String {
    let (y, m, d) = civil_from_days(i64::try_from(unix / 86_400).unwrap_or(i64::MAX));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The start-up line: `accounting: 41.2 GB of 200 GB used, period ends 2027-01-01`.
pub fn log_state(state: &AccountingState) {
    info!(
        "accounting: {} of {} used, period ends {}",
        human_bytes(state.used_bytes),
        human_bytes(state.limit_bytes),
        utc_date(state.period_end_unix)
    );
}

/// Saves `state()` into `data_dir` every [`SAVE_INTERVAL`] when it changed; runs until aborted.
pub async fn keep_saving(data_dir: PathBuf, state: impl Fn() -> Option<AccountingState>) {
    let mut last = state();
    let mut tick = tokio::time::interval(SAVE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = state();
        if now != last
            && let Some(s) = &now
        {
            if let Err(e) = save(&data_dir, s) {
                warn!(dir = %data_dir.display(), error = %e, "accounting: cannot save the count");
            }
            last = now;
        }
    }
}

#[cfg(test)]
mod tests;
