//! Why the SQLite store could not do what it was asked. A failed call changes nothing: every
//! write is one transaction.

use braid_directory::snapshot::SnapshotError;

/// Everything that can go wrong in [`Store`](crate::store::Store) calls. Deterministic
/// refusals of a command are not errors but
/// [`Applied::Rejected`](crate::store::Applied::Rejected).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O, a locked or corrupt file ...).
    #[error("SQLite error while {op}: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// The error SQLite gave.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a build with another state format.
    #[error("store file has state format {found}; this build reads format {expected}")]
    UnsupportedFormat {
        /// The format in the file.
        found: i64,
        /// The format this build reads.
        expected: i64,
    },
    /// Something in the file breaks a rule the store itself keeps (a row that does not parse,
    /// a negative integer ...): the file was changed behind the store's back or is damaged.
    #[error("store file is corrupt: {what}")]
    Corrupt {
        /// What was found.
        what: String,
    },
    /// A log term or index past 2^63 - 1, which SQLite integers cannot hold.
    #[error("log id (term {term}, index {index}) is past what the store can hold")]
    LogIdOutOfRange {
        /// The term given.
        term: u64,
        /// The index given.
        index: u64,
    },
    /// An entry after the last applied one has a lower term: not a Raft log.
    #[error("log entry {index} has term {term}, below the last applied term {last_term}")]
    TermWentBack {
        /// The entry's index.
        index: u64,
        /// The entry's term.
        term: u64,
        /// The term of the last applied entry.
        last_term: u64,
    },
    /// A membership record over [`MAX_MEMBERSHIP_LEN`](crate::state::MAX_MEMBERSHIP_LEN).
    #[error("membership record of {len} bytes is over the limit of {max}")]
    MembershipTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A limit outside what the store supports.
    #[error("bad store limits: {reason}")]
    BadLimits {
        /// What is wrong.
        reason: String,
    },
    /// A state image given to [`Store::restore`](crate::store::Store::restore) is invalid.
    #[error("state snapshot refused: {0}")]
    BadImage(#[from] SnapshotError),
}

/// Wraps a SQLite error with what the store was doing.
pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { op, source }
}
