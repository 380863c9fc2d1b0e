//! The registry state machine on SQLite (feature `store`): what Raft replicates, applied in log
//! order and kept across restarts.
//!
//! One SQLite file per registry (WAL, `synchronous = FULL`). Every call that writes is one
//! transaction that also records the entry's [`LogId`] as `last_applied`, so after a crash the
//! file is exactly the state after some entry and the Raft layer resumes from there. The rules
//! (what a command does) are in `state`; this module only stores. It is blocking: async callers
//! run it on a blocking thread. It is not the Raft log (votes, entries) and does not talk to
//! other registries.

mod error;
mod rows;
mod votes;

use std::path::Path;
use std::time::Duration;

use braid_directory::SignedDescriptor;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::state::{
    Command, Listed, LogId, MAX_MEMBERSHIP_LEN, MAX_STATE_DESCRIPTORS, PublishEffect, Rejection,
    StateImage, addresses_digest, descriptor_digest, publish_effect,
};
use error::sqlite;
use rows::{
    Meta, clamp, count, descriptor_times, read_descriptors, read_membership, read_meta, sql_log_id,
    to_u64, trusted_descriptor,
};

pub use error::StoreError;
pub use votes::{StateView, ViewRelay};

/// The state format of the SQLite file this build writes and reads (2: votes and digests).
const FORMAT: i64 = 2;

/// How long a call waits for a lock held by another connection to the same file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
BEGIN;
CREATE TABLE IF NOT EXISTS state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    format INTEGER NOT NULL,
    applied_term INTEGER,
    applied_index INTEGER,
    clock INTEGER NOT NULL,
    membership_term INTEGER,
    membership_index INTEGER,
    membership BLOB
);
INSERT OR IGNORE INTO state (id, format, clock) VALUES (1, 2, 0);
CREATE TABLE IF NOT EXISTS descriptors (
    identity BLOB PRIMARY KEY NOT NULL,
    published INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    encoded BLOB NOT NULL,
    digest BLOB NOT NULL,
    addresses BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS descriptors_by_expiry ON descriptors (expires);
CREATE TABLE IF NOT EXISTS registry_clocks (
    registry BLOB PRIMARY KEY NOT NULL,
    now INTEGER NOT NULL,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS votes (
    relay BLOB NOT NULL,
    registry BLOB NOT NULL,
    digest BLOB NOT NULL,
    addresses BLOB NOT NULL,
    at INTEGER NOT NULL,
    measured_bw INTEGER,
    PRIMARY KEY (relay, registry)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS listed (
    relay BLOB PRIMARY KEY NOT NULL,
    since INTEGER NOT NULL
) WITHOUT ROWID;
COMMIT;
";

/// The store's bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// The most relays listed at once (1 to [`MAX_STATE_DESCRIPTORS`]); a `Publish` of a new
    /// relay beyond it is rejected ([`Rejection::Full`]).
    pub max_descriptors: usize,
}

impl Default for StoreLimits {
    /// [`MAX_STATE_DESCRIPTORS`] (10 000): everything one directory snapshot can list.
    fn default() -> Self {
        Self {
            max_descriptors: MAX_STATE_DESCRIPTORS,
        }
    }
}

/// What applying one log entry did.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Applied {
    /// A descriptor was listed: a new relay, or a newer descriptor of a listed one.
    Stored {
        /// Whether an older descriptor of the same relay was replaced.
        replaced: bool,
    },
    /// The same descriptor bytes were already listed.
    Unchanged,
    /// The clock moved (if `now` was later) and this many expired descriptors were dropped.
    Expired {
        /// How many descriptors were removed.
        removed: usize,
    },
    /// The membership record was replaced.
    Membership,
    /// An entry with no command (a Raft blank entry) was passed.
    Blank,
    /// A registry's attestation was recorded: `counted` of its relays matched a current
    /// descriptor (the others are ignored), and the state clock is now `clock`.
    Attested {
        /// Relays whose vote was recorded.
        counted: usize,
        /// The state clock after it.
        clock: u64,
    },
    /// The command was refused and changed no descriptor; the entry still counts as applied.
    Rejected(Rejection),
    /// The entry's index is not after `last_applied`: it was applied before, nothing was done.
    AlreadyApplied,
}

/// The registry state in one SQLite file.
pub struct Store {
    conn: Connection,
    limits: StoreLimits,
    /// The configured registries' keys, sorted: whose attestations count.
    registries: Vec<[u8; 32]>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`: [`StoreError::BadLimits`],
    /// [`StoreError::UnsupportedFormat`] for a file of another format, [`StoreError::Sqlite`].
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        if !(1..=MAX_STATE_DESCRIPTORS).contains(&limits.max_descriptors) {
            return Err(StoreError::BadLimits {
                reason: format!(
                    "max_descriptors {} is not in 1..={MAX_STATE_DESCRIPTORS}",
                    limits.max_descriptors
                ),
            });
        }
        let conn = Connection::open(path).map_err(sqlite("opening the store file"))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(sqlite("setting the busy timeout"))?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
            .map_err(sqlite("switching to WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite("setting synchronous = FULL"))?;
        conn.execute_batch(SCHEMA)
            .map_err(sqlite("creating the schema"))?;
        let found: i64 = conn
            .query_row("SELECT format FROM state WHERE id = 1", [], |row| {
                row.get(0)
            })
            .map_err(sqlite("reading the format"))?;
        if found != FORMAT {
            return Err(StoreError::UnsupportedFormat {
                found,
                expected: FORMAT,
            });
        }
        Ok(Self {
            conn,
            limits,
            registries: Vec::new(),
        })
    }

    /// Sets the configured registries' keys (1 to 9, distinct): only their attestations are
    /// applied, and a majority of them lists a relay. Every replica must be given the same
    /// set. Until it is set no attestation applies, so no relay is listed and the clock stays.
    pub fn set_registries(&mut self, keys: &[[u8; 32]]) -> Result<(), StoreError> {
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != keys.len()
            || !(1..=braid_directory::snapshot::MAX_REGISTRIES).contains(&sorted.len())
        {
            return Err(StoreError::BadLimits {
                reason: format!("{} registry keys (need 1 to 9, distinct)", keys.len()),
            });
        }
        self.registries = sorted;
        Ok(())
    }

    /// The last log entry applied (`None` for a new store).
    pub fn last_applied(&self) -> Result<Option<LogId>, StoreError> {
        Ok(read_meta(&self.conn)?.applied)
    }

    /// The state clock (0 for a new store): see [`crate::state::votes`].
    pub fn clock(&self) -> Result<u64, StoreError> {
        Ok(read_meta(&self.conn)?.clock)
    }

    /// The last membership entry applied and its bytes.
    pub fn membership(&self) -> Result<Option<(LogId, Vec<u8>)>, StoreError> {
        read_membership(&self.conn)
    }

    /// How many relays are listed.
    pub fn len(&self) -> Result<usize, StoreError> {
        count(&self.conn)
    }

    /// Whether no relay is listed.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// The published descriptors, sorted by identity, eligible or not.
    pub fn descriptors(&self) -> Result<Vec<SignedDescriptor>, StoreError> {
        read_descriptors(&self.conn)
    }

    /// The listed descriptor of the relay with this identity.
    pub fn get(&self, identity: &[u8; 32]) -> Result<Option<SignedDescriptor>, StoreError> {
        let encoded: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT encoded FROM descriptors WHERE identity = ?1",
                params![&identity[..]],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite("reading a descriptor"))?;
        encoded.map(|e| trusted_descriptor(&e)).transpose()
    }

    /// Applies a committed command at `log_id`. Entries must come in log order: an index not
    /// after `last_applied` gives [`Applied::AlreadyApplied`] and changes nothing, so replaying
    /// entries is harmless; a lower term than the last applied one is
    /// [`StoreError::TermWentBack`]. A refused command gives [`Applied::Rejected`]: no
    /// descriptor changes, `last_applied` moves to `log_id`.
    pub fn apply(&mut self, log_id: LogId, command: &Command) -> Result<Applied, StoreError> {
        let max = self.limits.max_descriptors;
        let registries = self.registries.clone();
        self.apply_entry(log_id, |tx, meta| match command {
            Command::Publish(d) => publish(tx, meta.clock, d, max, &registries),
            Command::Expire { now } => votes::expire(tx, meta.clock, *now, &registries),
            Command::Attest(a) => votes::attest(tx, meta.clock, a, &registries),
        })
    }

    /// [`Store::apply`] for an entry still in its encoded form: bytes that are not a valid
    /// [`Command`] (a forged descriptor, say) give [`Applied::Rejected`] with
    /// [`Rejection::BadCommand`].
    pub fn apply_encoded(&mut self, log_id: LogId, entry: &[u8]) -> Result<Applied, StoreError> {
        match Command::decode(entry) {
            Ok(command) => self.apply(log_id, &command),
            Err(e) => self.apply_entry(log_id, |_, _| {
                Ok(Applied::Rejected(Rejection::BadCommand(e)))
            }),
        }
    }

    /// Records a Raft membership entry (opaque bytes, at most
    /// [`MAX_MEMBERSHIP_LEN`]) applied at `log_id`.
    pub fn apply_membership(
        &mut self,
        log_id: LogId,
        membership: &[u8],
    ) -> Result<Applied, StoreError> {
        if membership.len() > MAX_MEMBERSHIP_LEN {
            return Err(StoreError::MembershipTooLarge {
                len: membership.len(),
                max: MAX_MEMBERSHIP_LEN,
            });
        }
        let (term, index) = sql_log_id(log_id)?;
        self.apply_entry(log_id, |tx, _| {
            tx.execute(
                "UPDATE state SET membership_term = ?1, membership_index = ?2, membership = ?3
                 WHERE id = 1",
                params![term, index, membership],
            )
            .map_err(sqlite("writing the membership"))?;
            Ok(Applied::Membership)
        })
    }

    /// Passes an entry that carries no command (a Raft blank entry) at `log_id`.
    pub fn apply_blank(&mut self, log_id: LogId) -> Result<Applied, StoreError> {
        self.apply_entry(log_id, |_, _| Ok(Applied::Blank))
    }

    /// The whole state, read in one transaction.
    pub fn image(&self) -> Result<StateImage, StoreError> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(sqlite("starting a read transaction"))?;
        let meta = read_meta(&tx)?;
        Ok(StateImage {
            last_applied: meta.applied,
            clock: meta.clock,
            membership: read_membership(&tx)?,
            descriptors: read_descriptors(&tx)?,
            votes: votes::read_votes(&tx)?,
        })
    }

    /// What the service needs of the state, read in one transaction: the log position, the
    /// clock, every descriptor with its votes, whether it is listed and its measured bandwidth.
    pub fn view(&self) -> Result<StateView, StoreError> {
        votes::view(&self.conn, self.registries.len())
    }

    /// The state as bytes for a Raft snapshot ([`StateImage::encode`]).
    pub fn snapshot_bytes(&self) -> Result<Vec<u8>, StoreError> {
        Ok(self.image()?.encode())
    }

    /// Replaces the whole state with a Raft snapshot from another registry, all or nothing:
    /// [`StoreError::BadImage`] if the bytes do not decode (every descriptor signature is
    /// checked) or list more relays than this store's limit. Whether the snapshot is newer than
    /// the state is the Raft layer's decision.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let image = StateImage::decode(bytes, self.limits.max_descriptors)?;
        let applied = image.last_applied.map(sql_log_id).transpose()?;
        let membership = image
            .membership
            .as_ref()
            .map(|(id, bytes)| sql_log_id(*id).map(|(t, i)| (t, i, bytes)))
            .transpose()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting the restore"))?;
        tx.execute("DELETE FROM descriptors", [])
            .map_err(sqlite("clearing descriptors for the restore"))?;
        {
            let mut insert = tx
                .prepare("INSERT INTO descriptors (identity, published, expires, encoded, digest, addresses) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                .map_err(sqlite("preparing the restore"))?;
            for d in &image.descriptors {
                let (published, expires) = descriptor_times(d)?;
                insert
                    .execute(params![
                        &d.identity()[..],
                        published,
                        expires,
                        d.encode(),
                        &descriptor_digest(d)[..],
                        &addresses_digest(d)[..]
                    ])
                    .map_err(sqlite("restoring a descriptor"))?;
            }
        }
        votes::restore_votes(&tx, &image.votes)?;
        tx.execute(
            "UPDATE state SET applied_term = ?1, applied_index = ?2, clock = ?3,
                 membership_term = ?4, membership_index = ?5, membership = ?6 WHERE id = 1",
            params![
                applied.map(|a| a.0),
                applied.map(|a| a.1),
                clamp(image.clock),
                membership.map(|m| m.0),
                membership.map(|m| m.1),
                membership.map(|m| m.2.as_slice()),
            ],
        )
        .map_err(sqlite("restoring the state row"))?;
        tx.commit().map_err(sqlite("committing the restore"))
    }

    /// One entry in one transaction: checks the log order, runs `f`, records `log_id`.
    fn apply_entry(
        &mut self,
        log_id: LogId,
        f: impl FnOnce(&Transaction<'_>, &Meta) -> Result<Applied, StoreError>,
    ) -> Result<Applied, StoreError> {
        let (term, index) = sql_log_id(log_id)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite("starting a transaction"))?;
        let meta = read_meta(&tx)?;
        if let Some(last) = meta.applied {
            if log_id.index <= last.index {
                return Ok(Applied::AlreadyApplied);
            }
            if log_id.term < last.term {
                return Err(StoreError::TermWentBack {
                    index: log_id.index,
                    term: log_id.term,
                    last_term: last.term,
                });
            }
        }
        let applied = f(&tx, &meta)?;
        tx.execute(
            "UPDATE state SET applied_term = ?1, applied_index = ?2 WHERE id = 1",
            params![term, index],
        )
        .map_err(sqlite("recording last_applied"))?;
        tx.commit().map_err(sqlite("committing an entry"))?;
        Ok(applied)
    }
}

fn publish(
    tx: &Transaction<'_>,
    clock: u64,
    d: &SignedDescriptor,
    max: usize,
    registries: &[[u8; 32]],
) -> Result<Applied, StoreError> {
    let encoded = d.encode();
    let listed: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT published, encoded FROM descriptors WHERE identity = ?1",
            params![&d.identity()[..]],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sqlite("looking up the relay"))?;
    let listed_published = listed.as_ref().map(|(p, _)| to_u64(*p)).transpose()?;
    let listed = listed
        .as_ref()
        .zip(listed_published)
        .map(|((_, e), published)| Listed {
            published,
            encoded: e,
        });
    let n = if listed.is_none() { count(tx)? } else { 0 };
    let effect = match publish_effect(d, &encoded, clock, listed, n, max) {
        Ok(effect) => effect,
        Err(rejection) => return Ok(Applied::Rejected(rejection)),
    };
    if effect == PublishEffect::Unchanged {
        return Ok(Applied::Unchanged);
    }
    let (published, expires) = descriptor_times(d)?;
    tx.execute(
        "INSERT OR REPLACE INTO descriptors (identity, published, expires, encoded, digest, addresses)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            &d.identity()[..],
            published,
            expires,
            encoded,
            &descriptor_digest(d)[..],
            &addresses_digest(d)[..]
        ],
    )
    .map_err(sqlite("writing a descriptor"))?;
    votes::recompute(tx, clock, registries.len(), Some(d.identity()))?;
    Ok(Applied::Stored {
        replaced: effect == PublishEffect::Replace,
    })
}
