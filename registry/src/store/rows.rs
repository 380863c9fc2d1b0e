//! Reading and converting the store's rows: the state row, descriptors, and the integer
//! conversions between Rust's u64 and SQLite's i64. No writes happen here.

use braid_directory::SignedDescriptor;
use braid_directory::descriptor::UncheckedDescriptor;
use rusqlite::Connection;

use super::StoreError;
use super::error::sqlite;
use crate::state::LogId;

/// The state row's log position and clock.
pub(super) struct Meta {
    pub(super) applied: Option<LogId>,
    pub(super) clock: u64,
}

pub(super) fn read_meta(conn: &Connection) -> Result<Meta, StoreError> {
    let (term, index, clock): (Option<i64>, Option<i64>, i64) = conn
        .query_row(
            "SELECT applied_term, applied_index, clock FROM state WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map_err(sqlite("reading the state row"))?;
    Ok(Meta {
        applied: log_id_from(term, index)?,
        clock: to_u64(clock)?,
    })
}

pub(super) fn read_membership(conn: &Connection) -> Result<Option<(LogId, Vec<u8>)>, StoreError> {
    let (term, index, bytes): (Option<i64>, Option<i64>, Option<Vec<u8>>) = conn
        .query_row(
            "SELECT membership_term, membership_index, membership FROM state WHERE id = 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map_err(sqlite("reading the membership"))?;
    match (log_id_from(term, index)?, bytes) {
        (None, None) => Ok(None),
        (Some(id), Some(bytes)) => Ok(Some((id, bytes))),
        _ => Err(StoreError::Corrupt {
            what: "membership log id and bytes are not both set".into(),
        }),
    }
}

pub(super) fn read_descriptors(conn: &Connection) -> Result<Vec<SignedDescriptor>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT encoded FROM descriptors ORDER BY identity")
        .map_err(sqlite("preparing the descriptor list"))?;
    let rows = stmt
        .query_map([], |row| row.get::<_, Vec<u8>>(0))
        .map_err(sqlite("listing descriptors"))?;
    rows.map(|row| trusted_descriptor(&row.map_err(sqlite("listing descriptors"))?))
        .collect()
}

pub(super) fn count(conn: &Connection) -> Result<usize, StoreError> {
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM descriptors", [], |row| row.get(0))
        .map_err(sqlite("counting descriptors"))?;
    usize::try_from(n).map_err(|_| StoreError::Corrupt {
        what: format!("descriptor count {n}"),
    })
}

/// A descriptor read back from the store. Its signature was checked before it was written
/// (`Command::decode`, `StateImage::decode` or `SignedDescriptor::decode` made it), and the file
/// is this registry's own, so only the encoding and field rules are checked again here.
pub(super) fn trusted_descriptor(encoded: &[u8]) -> Result<SignedDescriptor, StoreError> {
    UncheckedDescriptor::parse(encoded)
        .map(UncheckedDescriptor::assume_verified)
        .map_err(|e| StoreError::Corrupt {
            what: format!("stored descriptor does not parse: {e}"),
        })
}

pub(super) fn descriptor_times(d: &SignedDescriptor) -> Result<(i64, i64), StoreError> {
    let to_sql = |v: u64| {
        i64::try_from(v).map_err(|_| StoreError::Corrupt {
            what: format!("descriptor time {v} past 2^63 - 1 reached the write"),
        })
    };
    Ok((
        to_sql(d.descriptor().published)?,
        to_sql(d.descriptor().expires)?,
    ))
}

pub(super) fn sql_log_id(id: LogId) -> Result<(i64, i64), StoreError> {
    match (i64::try_from(id.term), i64::try_from(id.index)) {
        (Ok(t), Ok(i)) => Ok((t, i)),
        _ => Err(StoreError::LogIdOutOfRange {
            term: id.term,
            index: id.index,
        }),
    }
}

fn log_id_from(term: Option<i64>, index: Option<i64>) -> Result<Option<LogId>, StoreError> {
    match (term, index) {
        (None, None) => Ok(None),
        (Some(t), Some(i)) => Ok(Some(LogId {
            term: to_u64(t)?,
            index: to_u64(i)?,
        })),
        _ => Err(StoreError::Corrupt {
            what: "log id term and index are not both set".into(),
        }),
    }
}

pub(super) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        what: format!("negative value {v} where a time or log position belongs"),
    })
}

/// A clock value for SQLite: stored descriptor times are at most `i64::MAX`, so clamping the
/// clock there changes no comparison.
pub(super) fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
