//! The registry's periodic work, done only while its replica is the Raft leader: propose
//! `Expire { now }` every `expire_interval` (the store clamps it to the registries' attested
//! clock, so it only drops descriptors expired by a time a majority reached), and build a
//! co-signed snapshot every `snapshot_interval` (the build checks its leader term again before
//! each step, see `cosign`). Followers keep ticking and do nothing, so a new leader takes over
//! at its next tick. It does not serve requests, and it does not attest (every registry does,
//! in `attest`).
//!
//! A forming network does not wait a whole interval: every [`EARLY_BUILD_RETRY`] the leader
//! builds at once when it serves no snapshot yet (one listing no relay tells proxies the
//! registries are up), or when the state lists relays the served
//! snapshot lacks while that snapshot lists fewer than [`EARLY_BUILD_BELOW`] relays (a new
//! network's relays come one by one; a large network waits for its interval).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval};
use tracing::{debug, info, warn};

use super::attest::read_view;
use super::registry_role::RegistryCore;
use super::{cosign, unix_now};
use crate::repeat::{FailureLog, Report};
use crate::state::Command;
use crate::store::Applied;

/// How often the leader looks for a reason to build before the interval is up.
pub(crate) const EARLY_BUILD_RETRY: Duration = Duration::from_secs(2);

/// Below this many relays in the served snapshot, newly listed relays get a snapshot at once.
pub(crate) const EARLY_BUILD_BELOW: usize = 32;

/// A failing build is logged at most this often (with a count).
const BUILD_FAILURE_LOG: Duration = Duration::from_secs(60);

/// Runs until aborted.
pub(crate) async fn run(core: Arc<RegistryCore>) {
    let mut expire = interval(core.settings.expire_interval);
    expire.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut build = interval(core.settings.snapshot_interval);
    build.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut early = interval(EARLY_BUILD_RETRY);
    early.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failures = FailureLog::new(BUILD_FAILURE_LOG);
    loop {
        let why = tokio::select! {
            _ = expire.tick() => {
                if core.replica.is_leader() {
                    expire_now(&core).await;
                }
                continue;
            }
            _ = build.tick() => "interval",
            _ = early.tick() => match early_reason(&core).await {
                Some(why) => why,
                None => continue,
            },
        };
        if !core.replica.is_leader() || !cosign::clock_moved(&core).await {
            continue;
        }
        match cosign::build(&core).await {
            Ok(_) => {
                // The regular interval counts from the last snapshot.
                build.reset();
                if let Report::Recovered { failures } = failures.success() {
                    info!(failures, "registry: snapshot built again after failures");
                }
            }
            Err(error) => match failures.failure(Instant::now().into_std()) {
                Report::First => warn!(why, "registry: snapshot not built: {error}"),
                Report::Again { count, over } => warn!(
                    "registry: snapshot not built ({count} failures in {} s): {error}",
                    over.as_secs()
                ),
                _ => debug!(why, "registry: snapshot not built: {error}"),
            },
        }
    }
}

/// Why the leader should build before its interval is up, if it should.
async fn early_reason(core: &RegistryCore) -> Option<&'static str> {
    if !core.replica.is_leader() {
        return None;
    }
    let served = core
        .served
        .current()
        .map(|s| s.verified.descriptors().len());
    if served.is_some_and(|n| n >= EARLY_BUILD_BELOW) {
        return None;
    }
    let listed = read_view(&core.replica).await.ok()?.listed().count();
    match served {
        None => Some("first snapshot"),
        Some(n) if listed > n => Some("relays newly listed"),
        _ => None,
    }
}

async fn expire_now(core: &RegistryCore) {
    match core
        .replica
        .submit(Command::Expire { now: unix_now() })
        .await
    {
        Ok(Applied::Expired { removed }) if removed > 0 => {
            debug!(removed, "registry: expired descriptors dropped");
        }
        Ok(_) => {}
        Err(error) => warn!(%error, "registry: expiry not committed"),
    }
}
