//! The one-registry mode: a [`Replica`] that is a single SQLite [`Store`], no Raft. Each
//! submitted command is applied at once as the next log entry (term 1). Use it for a network
//! with exactly one registry (and in tests); with several registries the Raft group is the
//! replica. It does not talk to other registries.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use braid_directory::SignedDescriptor;
use futures::future::BoxFuture;

use super::{Replica, ReplicaError};
use crate::state::{Command, LogId};
use crate::store::{Applied, Store, StoreError, StoreLimits};

/// One registry's state in one SQLite file, applied directly.
pub struct SoloReplica {
    store: Arc<Mutex<Store>>,
    leader: AtomicBool,
}

impl SoloReplica {
    /// Opens (or creates) the store at `path`. The replica starts as the leader (it is the
    /// only member).
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        Ok(Self {
            store: Arc::new(Mutex::new(Store::open(path, limits)?)),
            leader: AtomicBool::new(true),
        })
    }

    /// Sets whether [`Replica::is_leader`] answers true (tests run several single-store
    /// registries side by side and flag one as the leader).
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
    }

    /// Applies `command` as the entry after the last applied one (blocking).
    fn apply(store: &Mutex<Store>, command: &Command) -> Result<Applied, ReplicaError> {
        let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
        let index = store.last_applied()?.map_or(1, |last| last.index + 1);
        Ok(store.apply(LogId { term: 1, index }, command)?)
    }
}

impl Replica for SoloReplica {
    fn submit(&self, command: Command) -> BoxFuture<'static, Result<Applied, ReplicaError>> {
        let store = Arc::clone(&self.store);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Self::apply(&store, &command))
                .await
                .map_err(|e| ReplicaError::Unavailable {
                    reason: format!("the store task failed: {e}"),
                })?
        })
    }

    fn descriptors(&self) -> Result<Vec<SignedDescriptor>, ReplicaError> {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(store.descriptors()?)
    }

    fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for SoloReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SoloReplica")
            .field("leader", &self.is_leader())
            .finish_non_exhaustive()
    }
}
