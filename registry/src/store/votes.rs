//! The vote rules on SQLite: applying an attestation or an `Expire`, recomputing which relays
//! are listed, and reading and restoring the votes. The rules themselves are
//! [`crate::state::votes`]; this module keeps the rows in step with them, inside the entry's
//! transaction.

use braid_directory::SignedDescriptor;
use braid_directory::descriptor::CLOCK_SKEW_SECS;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::error::sqlite;
use super::rows::{clamp, read_meta, to_u64, trusted_descriptor};
use super::{Applied, StoreError};
use crate::state::votes::{
    ATTESTATION_WINDOW_SECS, RegistryClock, Vote, Votes, attested_clock, median_bandwidth,
    threshold,
};
use crate::state::{LogId, Rejection, SignedAttestation};

/// A descriptor in the state with what the votes say about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewRelay {
    /// The current descriptor.
    pub descriptor: SignedDescriptor,
    /// Its digest ([`crate::state::descriptor_digest`]).
    pub digest: [u8; 32],
    /// When it became eligible, if it is listed now.
    pub listed_since: Option<u64>,
    /// The low median of the counted measurements, if a majority measured and it is listed.
    pub measured_bw: Option<u64>,
    /// Every registry's latest vote on this relay (counted or not).
    pub votes: Vec<Vote>,
}

/// What the service reads of the state at one log position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateView {
    /// The last entry applied.
    pub last_applied: Option<LogId>,
    /// The state clock.
    pub clock: u64,
    /// Every published descriptor, sorted by identity.
    pub relays: Vec<ViewRelay>,
}

impl StateView {
    /// The listed relays (eligible now), sorted by identity.
    pub fn listed(&self) -> impl Iterator<Item = &ViewRelay> {
        self.relays.iter().filter(|r| r.listed_since.is_some())
    }
}

fn sql_u64(v: u64, value_for: u64) -> Result<i64, Rejection> {
    i64::try_from(v).map_err(|_| Rejection::TimeOutOfRange { value: value_for })
}

/// Applies one registry's attestation.
pub(super) fn attest(
    tx: &Transaction<'_>,
    clock: u64,
    signed: &SignedAttestation,
    registries: &[[u8; 32]],
) -> Result<Applied, StoreError> {
    let a = signed.attestation();
    if registries.binary_search(&a.signer).is_err() {
        return Ok(Applied::Rejected(Rejection::UnknownSigner));
    }
    let (now, seq) = match (sql_u64(a.now, a.now), sql_u64(a.seq, a.seq)) {
        (Ok(now), Ok(seq)) => (now, seq),
        (Err(r), _) | (_, Err(r)) => return Ok(Applied::Rejected(r)),
    };
    let last: Option<(i64, i64)> = tx
        .query_row(
            "SELECT now, seq FROM registry_clocks WHERE registry = ?1",
            params![&a.signer[..]],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()
        .map_err(sqlite("reading a registry clock"))?;
    if let Some((last_now, last_seq)) = last
        && (now, seq) <= (last_now, last_seq)
    {
        return Ok(Applied::Rejected(Rejection::Replayed {
            now: a.now,
            seq: a.seq,
            last_now: to_u64(last_now)?,
            last_seq: to_u64(last_seq)?,
        }));
    }
    tx.execute(
        "INSERT OR REPLACE INTO registry_clocks (registry, now, seq) VALUES (?1, ?2, ?3)",
        params![&a.signer[..], now, seq],
    )
    .map_err(sqlite("writing a registry clock"))?;
    let mut counted = Vec::new();
    for r in &a.relays {
        let current: Option<(Vec<u8>, Vec<u8>)> = tx
            .query_row(
                "SELECT digest, addresses FROM descriptors WHERE identity = ?1",
                params![&r.relay[..]],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()
            .map_err(sqlite("looking up an attested relay"))?;
        let Some((digest, addresses)) = current else {
            continue;
        };
        if digest != r.digest {
            continue;
        }
        let bw = r.measured_bw.map(clamp);
        tx.execute(
            "INSERT OR REPLACE INTO votes (relay, registry, digest, addresses, at, measured_bw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &r.relay[..],
                &a.signer[..],
                &r.digest[..],
                addresses,
                now,
                bw
            ],
        )
        .map_err(sqlite("writing a vote"))?;
        counted.push(r.relay);
    }
    let clocks = registry_clocks(tx, registries)?;
    let new_clock = clock.max(attested_clock(&clocks, registries.len()));
    if new_clock != clock {
        advance(tx, new_clock)?;
        recompute(tx, new_clock, registries.len(), None)?;
    } else {
        for relay in &counted {
            recompute(tx, clock, registries.len(), Some(relay))?;
        }
    }
    Ok(Applied::Attested {
        counted: counted.len(),
        clock: new_clock,
    })
}

/// `Expire { now }`: moves the clock towards `now`, never past the attested clock.
pub(super) fn expire(
    tx: &Transaction<'_>,
    clock: u64,
    now: u64,
    registries: &[[u8; 32]],
) -> Result<Applied, StoreError> {
    let allowed = attested_clock(&registry_clocks(tx, registries)?, registries.len());
    let new_clock = clock.max(now.min(allowed));
    let removed = advance(tx, new_clock)?;
    recompute(tx, new_clock, registries.len(), None)?;
    Ok(Applied::Expired { removed })
}

/// The configured registries' latest clocks (0 for those that never attested).
fn registry_clocks(tx: &Transaction<'_>, registries: &[[u8; 32]]) -> Result<Vec<u64>, StoreError> {
    registries
        .iter()
        .map(|r| {
            let now: Option<i64> = tx
                .query_row(
                    "SELECT now FROM registry_clocks WHERE registry = ?1",
                    params![&r[..]],
                    |row| row.get(0),
                )
                .optional()
                .map_err(sqlite("reading a registry clock"))?;
            now.map_or(Ok(0), to_u64)
        })
        .collect()
}

/// Sets the clock and drops every descriptor expired by it, with its votes and listing.
fn advance(tx: &Transaction<'_>, clock: u64) -> Result<usize, StoreError> {
    let clock = clamp(clock);
    for sql in [
        "DELETE FROM votes WHERE relay IN (SELECT identity FROM descriptors WHERE expires <= ?1)",
        "DELETE FROM listed WHERE relay IN (SELECT identity FROM descriptors WHERE expires <= ?1)",
    ] {
        tx.execute(sql, params![clock])
            .map_err(sqlite("dropping expired votes"))?;
    }
    let removed = tx
        .execute(
            "DELETE FROM descriptors WHERE expires <= ?1",
            params![clock],
        )
        .map_err(sqlite("dropping expired descriptors"))?;
    tx.execute("UPDATE state SET clock = ?1 WHERE id = 1", params![clock])
        .map_err(sqlite("advancing the clock"))?;
    Ok(removed)
}

/// Brings the `listed` rows in line with the rule at `clock`, for one relay or all.
pub(super) fn recompute(
    tx: &Transaction<'_>,
    clock: u64,
    registries: usize,
    only: Option<&[u8; 32]>,
) -> Result<(), StoreError> {
    let eligible = "SELECT d.identity FROM descriptors d
        WHERE (?4 IS NULL OR d.identity = ?4)
          AND d.expires > ?1 AND d.published <= ?1 + ?5
          AND (SELECT COUNT(*) FROM votes v
               WHERE v.relay = d.identity AND v.addresses = d.addresses AND v.at >= ?2) >= ?3";
    let floor = clamp(clock.saturating_sub(ATTESTATION_WINDOW_SECS - 1));
    let t = i64::try_from(threshold(registries)).unwrap_or(i64::MAX);
    let only = only.map(|r| r.to_vec());
    let skew = clamp(CLOCK_SKEW_SECS);
    let c = clamp(clock);
    tx.execute(
        &format!(
            "DELETE FROM listed WHERE (?4 IS NULL OR relay = ?4) AND relay NOT IN ({eligible})"
        ),
        params![c, floor, t, only, skew],
    )
    .map_err(sqlite("unlisting relays"))?;
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO listed (relay, since) SELECT identity, ?1 FROM ({eligible})"
        ),
        params![c, floor, t, only, skew],
    )
    .map_err(sqlite("listing relays"))?;
    Ok(())
}

/// Every vote row, sorted as an image carries them.
pub(super) fn read_votes(conn: &Connection) -> Result<Votes, StoreError> {
    let blob = |v: Vec<u8>| -> Result<[u8; 32], StoreError> {
        <[u8; 32]>::try_from(v.as_slice()).map_err(|_| StoreError::Corrupt {
            what: "a key or digest column is not 32 bytes".into(),
        })
    };
    let mut out = Votes::default();
    let mut stmt = conn
        .prepare("SELECT registry, now, seq FROM registry_clocks ORDER BY registry")
        .map_err(sqlite("preparing the clocks"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sqlite("reading the clocks"))?;
    for row in rows {
        let (registry, now, seq) = row.map_err(sqlite("reading the clocks"))?;
        out.clocks.push(RegistryClock {
            registry: blob(registry)?,
            now: to_u64(now)?,
            seq: to_u64(seq)?,
        });
    }
    let mut stmt = conn
        .prepare(
            "SELECT relay, registry, digest, addresses, at, measured_bw FROM votes
             ORDER BY relay, registry",
        )
        .map_err(sqlite("preparing the votes"))?;
    type Row = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64, Option<i64>);
    let rows = stmt
        .query_map([], |r| {
            Ok::<Row, _>((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .map_err(sqlite("reading the votes"))?;
    for row in rows {
        let (relay, registry, digest, addresses, at, bw) =
            row.map_err(sqlite("reading the votes"))?;
        out.votes.push(Vote {
            relay: blob(relay)?,
            registry: blob(registry)?,
            digest: blob(digest)?,
            addresses: blob(addresses)?,
            at: to_u64(at)?,
            measured_bw: bw.map(to_u64).transpose()?,
        });
    }
    let mut stmt = conn
        .prepare("SELECT relay, since FROM listed ORDER BY relay")
        .map_err(sqlite("preparing the listing"))?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
        .map_err(sqlite("reading the listing"))?;
    for row in rows {
        let (relay, since) = row.map_err(sqlite("reading the listing"))?;
        out.listed.push((blob(relay)?, to_u64(since)?));
    }
    Ok(out)
}

/// Replaces every vote row with an image's (inside the restore transaction).
pub(super) fn restore_votes(tx: &Transaction<'_>, votes: &Votes) -> Result<(), StoreError> {
    for table in ["registry_clocks", "votes", "listed"] {
        tx.execute(&format!("DELETE FROM {table}"), [])
            .map_err(sqlite("clearing votes for the restore"))?;
    }
    for c in &votes.clocks {
        tx.execute(
            "INSERT INTO registry_clocks (registry, now, seq) VALUES (?1, ?2, ?3)",
            params![&c.registry[..], clamp(c.now), clamp(c.seq)],
        )
        .map_err(sqlite("restoring a clock"))?;
    }
    for v in &votes.votes {
        tx.execute(
            "INSERT INTO votes (relay, registry, digest, addresses, at, measured_bw)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                &v.relay[..],
                &v.registry[..],
                &v.digest[..],
                &v.addresses[..],
                clamp(v.at),
                v.measured_bw.map(clamp)
            ],
        )
        .map_err(sqlite("restoring a vote"))?;
    }
    for (relay, since) in &votes.listed {
        tx.execute(
            "INSERT INTO listed (relay, since) VALUES (?1, ?2)",
            params![&relay[..], clamp(*since)],
        )
        .map_err(sqlite("restoring a listed relay"))?;
    }
    Ok(())
}

/// The state as the service reads it, in one read transaction.
pub(super) fn view(conn: &Connection, registries: usize) -> Result<StateView, StoreError> {
    let tx = conn
        .unchecked_transaction()
        .map_err(sqlite("starting a read transaction"))?;
    let meta = read_meta(&tx)?;
    let votes = read_votes(&tx)?;
    let floor = meta
        .clock
        .saturating_sub(ATTESTATION_WINDOW_SECS.saturating_sub(1));
    let mut stmt = tx
        .prepare("SELECT encoded, digest, addresses FROM descriptors ORDER BY identity")
        .map_err(sqlite("preparing the view"))?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(sqlite("reading the view"))?;
    let mut by_relay: std::collections::HashMap<[u8; 32], Vec<Vote>> =
        std::collections::HashMap::new();
    for v in &votes.votes {
        by_relay.entry(v.relay).or_default().push(*v);
    }
    let mut relays = Vec::new();
    for row in rows {
        let (encoded, digest, addresses) = row.map_err(sqlite("reading the view"))?;
        let descriptor = trusted_descriptor(&encoded)?;
        let id = *descriptor.identity();
        let digest = <[u8; 32]>::try_from(digest.as_slice()).map_err(|_| StoreError::Corrupt {
            what: "a digest column is not 32 bytes".into(),
        })?;
        let mine = by_relay.remove(&id).unwrap_or_default();
        let listed_since = votes
            .listed
            .binary_search_by(|(r, _)| r.cmp(&id))
            .ok()
            .and_then(|i| votes.listed.get(i))
            .map(|(_, since)| *since);
        let measured: Vec<u64> = mine
            .iter()
            .filter(|v| v.addresses[..] == addresses[..] && v.at >= floor)
            .filter_map(|v| v.measured_bw)
            .collect();
        let measured_bw = listed_since.and(median_bandwidth(&measured, registries));
        relays.push(ViewRelay {
            descriptor,
            digest,
            listed_since,
            measured_bw,
            votes: mine,
        });
    }
    Ok(StateView {
        last_applied: meta.applied,
        clock: meta.clock,
        relays,
    })
}
