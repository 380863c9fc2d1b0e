//! The registry's periodic work, done only while its replica is the Raft leader: propose
//! `Expire { now }` every `expire_interval` (the store clamps it to the registries' attested
//! clock, so it only drops descriptors expired by a time a majority reached), and build a
//! co-signed snapshot every `snapshot_interval` (the build checks leadership again before it
//! serves and offers the result). Followers keep ticking and do nothing, so a new leader takes
//! over at its next tick. It does not serve requests, and it does not attest (every registry
//! does, in `attest`).

use std::sync::Arc;

use tokio::time::{MissedTickBehavior, interval};
use tracing::{debug, warn};

use super::registry_role::RegistryCore;
use super::{cosign, unix_now};
use crate::state::Command;
use crate::store::Applied;

/// Runs until aborted.
pub(crate) async fn run(core: Arc<RegistryCore>) {
    let mut expire = interval(core.settings.expire_interval);
    expire.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut build = interval(core.settings.snapshot_interval);
    build.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut first = interval(FIRST_SNAPSHOT_RETRY);
    first.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = expire.tick() => {
                if core.replica.is_leader() {
                    expire_now(&core).await;
                }
            }
            _ = build.tick() => {
                if core.replica.is_leader()
                    && cosign::clock_moved(&core).await
                    && let Err(error) = cosign::build(&core).await
                {
                    warn!("registry: {error}");
                }
            }
            _ = first.tick() => {
                // Until one snapshot is served, do not wait a whole interval for the first:
                // the state clock needs the registries' first attestations to move.
                if core.served.current().is_none()
                    && core.replica.is_leader()
                    && cosign::clock_moved(&core).await
                    && let Err(error) = cosign::build(&core).await
                {
                    debug!("registry: first snapshot not built yet: {error}");
                }
            }
        }
    }
}

/// How often the leader tries to build while it serves no snapshot at all.
const FIRST_SNAPSHOT_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

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
