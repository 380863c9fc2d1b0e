//! The registry's periodic work, done only while its replica is the Raft leader: propose
//! `Expire { now }` every `expire_interval` (descriptors past their `expires` drop out of the
//! state), and build a co-signed snapshot every `snapshot_interval`. Followers keep ticking
//! and do nothing, so a new leader takes over at its next tick. It does not serve requests.

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
    loop {
        tokio::select! {
            _ = expire.tick() => {
                if core.replica.is_leader() {
                    expire_now(&core).await;
                }
            }
            _ = build.tick() => {
                if core.replica.is_leader()
                    && let Err(error) = cosign::build(&core).await
                {
                    warn!("registry: {error}");
                }
            }
        }
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
