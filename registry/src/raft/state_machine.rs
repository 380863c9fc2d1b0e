//! openraft's state machine and snapshots on the registry [`Store`]: entries are applied with
//! the store's one-transaction-per-entry calls (rows, `last_applied` and the membership record
//! commit together), and a snapshot is the store's [`StateImage`](crate::state::StateImage)
//! bytes.
//!
//! The store is durable, so the state itself is always a valid snapshot at `last_applied`: a
//! snapshot is built by reading the image in one read transaction, and installing one is
//! [`Store::restore`] (all or nothing, every descriptor signature checked). The last snapshot
//! built or installed is kept in memory for followers that need it; after a restart one is
//! built from the store on first request. Every SQLite call runs on a blocking thread.

// openraft's traits fix the error type (`StorageError`, 200+ bytes); boxing it here would only
// move the allocation.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, EntryPayload, RaftSnapshotBuilder, StorageError, StorageIOError, StoredMembership,
};

use super::types::{
    AppliedWire, RaftLogId, RaftMembership, TypeConfig, to_raft_log_id, to_state_log_id,
};
use crate::state::StateImage;
use crate::store::{Applied, Store, StoreError};

type Entry = openraft::Entry<TypeConfig>;
type Meta = SnapshotMeta<u64, BasicNode>;
/// A snapshot's meta and bytes.
type Kept = Option<(Meta, Arc<Vec<u8>>)>;

/// The registry state machine as openraft sees it. Cheap to clone.
#[derive(Clone)]
pub(super) struct StateMachine {
    store: Arc<Mutex<Store>>,
    /// The last snapshot built or installed: its meta and bytes.
    current: Arc<Mutex<Kept>>,
    /// Counts snapshots built by this process, for unique snapshot ids.
    built: Arc<AtomicU64>,
    /// Counts snapshots installed from a leader by this process.
    installed: Arc<AtomicU64>,
}

fn sm_err(e: StoreError) -> StorageError<u64> {
    StorageIOError::write_state_machine(&e).into()
}

fn join_err(e: tokio::task::JoinError) -> StorageError<u64> {
    StorageIOError::write_state_machine(&e).into()
}

fn membership_err(e: postcard::Error) -> StorageError<u64> {
    StorageIOError::read_state_machine(&e).into()
}

/// openraft's stored membership from the store's opaque record.
fn stored_membership(
    record: Option<&(crate::state::LogId, Vec<u8>)>,
) -> Result<StoredMembership<u64, BasicNode>, StorageError<u64>> {
    match record {
        None => Ok(StoredMembership::default()),
        Some((id, bytes)) => {
            let membership: RaftMembership = postcard::from_bytes(bytes).map_err(membership_err)?;
            Ok(StoredMembership::new(Some(to_raft_log_id(*id)), membership))
        }
    }
}

impl StateMachine {
    /// Wraps an open store.
    pub(super) fn new(store: Arc<Mutex<Store>>) -> Self {
        Self {
            store,
            current: Arc::new(Mutex::new(None)),
            built: Arc::new(AtomicU64::new(0)),
            installed: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many snapshots this process installed from a leader.
    pub(super) fn snapshots_installed(&self) -> u64 {
        self.installed.load(Ordering::Relaxed)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StorageError<u64>> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            let mut store = store.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut store)
        })
        .await
        .map_err(join_err)?
        .map_err(sm_err)
    }

    /// Reads the image and makes a snapshot of it.
    async fn snapshot_now(&self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let image: StateImage = self.blocking(|store| store.image()).await?;
        let Some(last) = image.last_applied else {
            return Ok(None);
        };
        let n = self.built.fetch_add(1, Ordering::Relaxed);
        let meta = Meta {
            last_log_id: Some(to_raft_log_id(last)),
            last_membership: stored_membership(image.membership.as_ref())?,
            snapshot_id: format!("{}-{}-{n}", last.term, last.index),
        };
        let bytes = Arc::new(image.encode());
        self.remember(&meta, &bytes);
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes.to_vec())),
        }))
    }

    fn remember(&self, meta: &Meta, bytes: &Arc<Vec<u8>>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((meta.clone(), Arc::clone(bytes)));
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        self.snapshot_now().await?.ok_or_else(|| {
            StorageIOError::write_snapshot(
                None,
                openraft::AnyError::error("nothing applied yet: no snapshot to build"),
            )
            .into()
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<RaftLogId>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let (applied, membership) = self
            .blocking(|store| Ok((store.last_applied()?, store.membership()?)))
            .await?;
        Ok((
            applied.map(to_raft_log_id),
            stored_membership(membership.as_ref())?,
        ))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<AppliedWire>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let memberships = entries
            .iter()
            .map(|e| match &e.payload {
                EntryPayload::Membership(m) => {
                    postcard::to_allocvec(m).map(Some).map_err(membership_err)
                }
                _ => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.blocking(move |store| {
            let mut out = Vec::with_capacity(entries.len());
            for (entry, membership) in entries.iter().zip(memberships) {
                let id = to_state_log_id(&entry.log_id);
                let applied: Applied = match (&entry.payload, membership) {
                    (EntryPayload::Blank, _) => store.apply_blank(id)?,
                    (EntryPayload::Normal(data), _) => store.apply_encoded(id, &data.0)?,
                    (EntryPayload::Membership(_), Some(bytes)) => {
                        store.apply_membership(id, &bytes)?
                    }
                    // Encoded above for every membership entry.
                    (EntryPayload::Membership(_), None) => store.apply_blank(id)?,
                };
                out.push(AppliedWire::from(&applied));
            }
            Ok(out)
        })
        .await
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let bytes = Arc::new(snapshot.into_inner());
        let image = Arc::clone(&bytes);
        let expected = meta.last_log_id.as_ref().map(to_state_log_id);
        self.blocking(move |store| {
            store.restore(&image)?;
            let applied = store.last_applied()?;
            if applied != expected {
                return Err(StoreError::Corrupt {
                    what: format!(
                        "installed snapshot is at {applied:?}, its metadata says {expected:?}"
                    ),
                });
            }
            Ok(())
        })
        .await?;
        self.installed.fetch_add(1, Ordering::Relaxed);
        self.remember(meta, &bytes);
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        let current = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match current {
            Some((meta, bytes)) => Ok(Some(Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(bytes.to_vec())),
            })),
            None => self.snapshot_now().await,
        }
    }
}
