//! Signals: SIGINT and SIGTERM stop a node, SIGHUP asks it to reload its config. The handlers
//! are installed before a node starts, so a signal during start-up (UPnP, reachability test,
//! first directory) is never the default action (which would kill the process and leave the
//! UPnP mappings on the router). This module does not reload anything itself.

use std::time::Duration;

use anyhow::{Context, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// SIGINT or SIGTERM: stop cleanly.
    Stop,
    /// SIGHUP: re-read the config and apply what can change.
    Reload,
}

/// The installed handlers.
pub(crate) struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the SIGTERM, SIGINT and SIGHUP handlers.
    pub(crate) fn install() -> Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing SIGHUP handler")?,
        })
    }

    /// The next signal.
    pub(crate) async fn next(&mut self) -> Event {
        tokio::select! {
            _ = self.term.recv() => Event::Stop,
            _ = self.int.recv() => Event::Stop,
            _ = self.hup.recv() => Event::Reload,
        }
    }

    /// Waits for SIGINT or SIGTERM; a SIGHUP meanwhile (during start-up, or where there is
    /// nothing to reload) is logged and otherwise ignored.
    pub(crate) async fn stopped(&mut self) {
        while self.next().await == Event::Reload {
            info!("SIGHUP: nothing to reload now (during start-up send it again once ready)");
        }
    }

    /// Runs `reload` on every SIGHUP until SIGINT or SIGTERM.
    pub(crate) async fn serve(&mut self, mut reload: impl FnMut()) {
        while self.next().await == Event::Reload {
            reload();
        }
    }
}

/// Waits for SIGINT, SIGTERM, or `for_secs` seconds (SIGHUP is ignored).
pub(crate) async fn wait_for_stop(for_secs: Option<u64>) -> Result<()> {
    let mut signals = Signals::install()?;
    let limit = async {
        match for_secs {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = signals.stopped() => {}
        () = limit => {}
    }
    Ok(())
}
