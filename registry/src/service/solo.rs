//! The one-registry mode: a [`Replica`] that is a single SQLite [`Store`], no Raft. Each
//! submitted command is applied at once as the next log entry (term 1). Use it for a network
//! with exactly one registry (and in tests); with several registries the Raft group is the
//! replica. It does not talk to other registries.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use braid_directory::SignedDescriptor;
use futures::future::BoxFuture;

use super::{Registries, Replica, ReplicaError, registry_key_of};
use crate::state::{Command, LogId};
use crate::store::{Applied, StateView, Store, StoreError, StoreLimits};

/// One registry's state in one SQLite file, applied directly.
pub struct SoloReplica {
    store: Arc<Mutex<Store>>,
    leader: AtomicBool,
}

impl SoloReplica {
    /// Opens (or creates) the store at `path`, counting the attestations of `registries`
    /// (the one registry, or in tests every registry of a set whose stores are fed the same
    /// commands). The replica starts as the leader (it is the only member).
    pub fn open(
        path: &Path,
        limits: StoreLimits,
        registries: &Registries,
    ) -> Result<Self, StoreError> {
        let keys: Vec<[u8; 32]> = registries
            .peers()
            .iter()
            .filter_map(|p| registry_key_of(&p.peer_id).map(|k| k.to_bytes()))
            .collect();
        let mut store = Store::open(path, limits)?;
        store.set_registries(&keys)?;
        Ok(Self {
            store: Arc::new(Mutex::new(store)),
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

    fn view(&self) -> Result<StateView, ReplicaError> {
        let store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(store.view()?)
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
