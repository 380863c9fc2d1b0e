//! openraft's log storage (votes, entries, the purge point, the committed id) in its own SQLite
//! file, `raft.sqlite` in the node's data dir. It is not the state machine (that is the `store`
//! file, see `state_machine`).
//!
//! A second file rather than more tables in the store's: openraft appends to the log and
//! applies to the state machine from different tasks at the same time, and SQLite allows one
//! writer per file; two files let both commit (and fsync) in parallel, and the store keeps its
//! own schema and format check. WAL, `synchronous = FULL`: a vote or an append is durable when
//! its call returns. Every SQLite call runs on a blocking thread (`spawn_blocking`) under a
//! mutex (`rusqlite::Connection` is not `Sync`).

// openraft's traits fix the error type (`StorageError`, 200+ bytes); boxing it here would only
// move the allocation.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{RaftLogId as _, RaftLogReader, StorageError, StorageIOError, Vote};
use rusqlite::{Connection, OptionalExtension, params};

use super::types::{RaftLogId, TypeConfig};

type Entry = openraft::Entry<TypeConfig>;

const SCHEMA: &str = "
BEGIN;
CREATE TABLE IF NOT EXISTS raft_meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS raft_log (idx INTEGER PRIMARY KEY NOT NULL, entry BLOB NOT NULL);
COMMIT;
";

/// The Raft log in SQLite. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub(super) struct LogStore {
    conn: Arc<Mutex<Connection>>,
}

/// A SQLite or encoding failure, as openraft's storage error (which stops the node).
fn io_err(op: &'static str) -> impl Fn(String) -> StorageError<u64> {
    move |reason| {
        StorageIOError::write_logs(openraft::AnyError::error(format!("{op}: {reason}"))).into()
    }
}

impl LogStore {
    /// Opens (creating if needed) `path`.
    pub(super) fn open(path: &Path) -> Result<Self, rusqlite::Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn with<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T, String> + Send + 'static,
    ) -> Result<T, StorageError<u64>> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .map_err(io_err(op))
    }

    async fn get_meta<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StorageError<u64>> {
        self.with("reading raft metadata", move |conn| read_meta(conn, key))
            .await
    }

    async fn put_meta<T: serde::Serialize>(
        &self,
        key: &'static str,
        value: &T,
    ) -> Result<(), StorageError<u64>> {
        let bytes = postcard::to_allocvec(value).map_err(|e| io_err("encoding")(e.to_string()))?;
        self.with("writing raft metadata", move |conn| {
            conn.execute(
                "INSERT OR REPLACE INTO raft_meta (key, value) VALUES (?1, ?2)",
                params![key, bytes],
            )
            .map(drop)
            .map_err(|e| e.to_string())
        })
        .await
    }
}

fn read_meta<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    key: &str,
) -> Result<Option<T>, String> {
    let bytes: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM raft_meta WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    bytes
        .map(|b| postcard::from_bytes(&b).map_err(|e| format!("{key}: {e}")))
        .transpose()
}

fn sql_index(index: u64) -> i64 {
    // Raft indexes past 2^63 are never reached (one entry per nanosecond for 292 years).
    i64::try_from(index).unwrap_or(i64::MAX)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError<u64>> {
        let start = match range.start_bound() {
            Bound::Included(&s) => sql_index(s),
            Bound::Excluded(&s) => sql_index(s.saturating_add(1)),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => sql_index(e).saturating_add(1),
            Bound::Excluded(&e) => sql_index(e),
            Bound::Unbounded => i64::MAX,
        };
        self.with("reading log entries", move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT entry FROM raft_log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
                )
                .map_err(|e| e.to_string())?;
            let rows = stmt
                .query_map(params![start, end], |row| row.get::<_, Vec<u8>>(0))
                .map_err(|e| e.to_string())?;
            rows.map(|row| {
                let bytes = row.map_err(|e| e.to_string())?;
                postcard::from_bytes::<Entry>(&bytes).map_err(|e| e.to_string())
            })
            .collect()
        })
        .await
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<u64>> {
        let last_purged: Option<RaftLogId> = self.get_meta("last_purged").await?;
        let last: Option<Entry> = self
            .with("reading the last entry", |conn| {
                let bytes: Option<Vec<u8>> = conn
                    .query_row(
                        "SELECT entry FROM raft_log ORDER BY idx DESC LIMIT 1",
                        [],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(|e| e.to_string())?;
                bytes
                    .map(|b| postcard::from_bytes(&b).map_err(|e| e.to_string()))
                    .transpose()
            })
            .await?;
        let last_log_id = last.map(|e| *e.get_log_id()).or(last_purged);
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<u64>) -> Result<(), StorageError<u64>> {
        self.put_meta("vote", vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<u64>>, StorageError<u64>> {
        self.get_meta("vote").await
    }

    async fn save_committed(
        &mut self,
        committed: Option<RaftLogId>,
    ) -> Result<(), StorageError<u64>> {
        self.put_meta("committed", &committed).await
    }

    async fn read_committed(&mut self) -> Result<Option<RaftLogId>, StorageError<u64>> {
        Ok(self
            .get_meta::<Option<RaftLogId>>("committed")
            .await?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<u64>>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let rows = entries
            .into_iter()
            .map(|e| {
                postcard::to_allocvec(&e)
                    .map(|bytes| (sql_index(e.get_log_id().index), bytes))
                    .map_err(|err| io_err("encoding an entry")(err.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .with("appending entries", move |conn| {
                let tx = conn.transaction().map_err(|e| e.to_string())?;
                {
                    let mut insert = tx
                        .prepare_cached(
                            "INSERT OR REPLACE INTO raft_log (idx, entry) VALUES (?1, ?2)",
                        )
                        .map_err(|e| e.to_string())?;
                    for (idx, bytes) in &rows {
                        insert
                            .execute(params![idx, bytes])
                            .map_err(|e| e.to_string())?;
                    }
                }
                tx.commit().map_err(|e| e.to_string())
            })
            .await;
        match &result {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        result
    }

    async fn truncate(&mut self, log_id: RaftLogId) -> Result<(), StorageError<u64>> {
        let from = sql_index(log_id.index);
        self.with("truncating the log", move |conn| {
            conn.execute("DELETE FROM raft_log WHERE idx >= ?1", params![from])
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await
    }

    async fn purge(&mut self, log_id: RaftLogId) -> Result<(), StorageError<u64>> {
        let upto = sql_index(log_id.index);
        let bytes =
            postcard::to_allocvec(&log_id).map_err(|e| io_err("encoding")(e.to_string()))?;
        self.with("purging the log", move |conn| {
            let tx = conn.transaction().map_err(|e| e.to_string())?;
            tx.execute(
                "INSERT OR REPLACE INTO raft_meta (key, value) VALUES ('last_purged', ?1)",
                params![bytes],
            )
            .map_err(|e| e.to_string())?;
            tx.execute("DELETE FROM raft_log WHERE idx <= ?1", params![upto])
                .map_err(|e| e.to_string())?;
            tx.commit().map_err(|e| e.to_string())
        })
        .await
    }
}
