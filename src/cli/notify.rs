//! systemd service notification (`sd_notify`) for `braid relay`, `braid proxy` and
//! `braid registry` run as `Type=notify` units (packaging/systemd): `READY=1` with a `STATUS=`
//! line when the node prints its `ready` line, `STATUS=` on later changes, `STOPPING=1` at
//! shutdown, and `WATCHDOG=1` every half of `$WATCHDOG_USEC` once ready (for `WatchdogSec=`).
//!
//! Every function is a no-op when `$NOTIFY_SOCKET` is unset (not started by systemd). A failed
//! notification is logged at debug and otherwise ignored: the node runs on. This module holds
//! no node logic; `nodes.rs` calls it with one line at each point.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;

/// Whether the watchdog task runs already (one per process).
static WATCHDOG_STARTED: AtomicBool = AtomicBool::new(false);

/// Whether the service manager asked for notifications.
fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState<'_>]) {
    if !enabled() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "sd_notify failed");
    }
}

/// The node is ready: sends `READY=1` and `STATUS=<status>` (the `ready` line it printed) and
/// starts the watchdog pings if `$WATCHDOG_USEC` is set for this process.
pub(crate) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
    start_watchdog();
}

/// A status line for `systemctl status`.
pub(crate) fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// The node is shutting down.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to send `WATCHDOG=1` for a watchdog timeout of `timeout`: half of it, as
/// `sd_watchdog_enabled(3)` advises, and never more often than every millisecond.
fn ping_interval(timeout: Duration) -> Duration {
    (timeout / 2).max(Duration::from_millis(1))
}

/// Spawns the task that pings the watchdog, once, if systemd asked for one. The pings come
/// from the node's runtime, so a wedged runtime stops them and systemd restarts the node.
fn start_watchdog() {
    if !enabled() {
        return;
    }
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    if WATCHDOG_STARTED.swap(true, Ordering::SeqCst) {
        return;
    }
    let every = ping_interval(timeout);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_at_half_the_timeout() {
        assert_eq!(
            ping_interval(Duration::from_secs(30)),
            Duration::from_secs(15)
        );
        assert_eq!(
            ping_interval(Duration::from_micros(1)),
            Duration::from_millis(1)
        );
    }
}
