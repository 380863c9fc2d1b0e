//! The SQLite registry store: a real SQLite file in a temp dir, applied in log order, closed and
//! reopened, snapshotted and restored (over 1 MiB), and every refusal.

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};

use crate::support::relays::*;
use braid_directory::{
    AddrPattern, Descriptor, Error, ExitPolicy, ExitRule, SignedDescriptor, SnapshotError,
};
use braid_registry::state::{Attestation, Command, LogId, Rejection, StateImage};
use braid_registry::store::{Applied, Store, StoreError, StoreLimits};
use ed25519_dalek::SigningKey;

fn id(term: u64, index: u64) -> LogId {
    LogId { term, index }
}

/// The one registry of these stores.
fn registry_key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn open(path: &Path) -> Store {
    let mut store = Store::open(path, StoreLimits::default()).unwrap();
    store
        .set_registries(&[registry_key().verifying_key().to_bytes()])
        .unwrap();
    store
}

/// The registry's attestation of no relay at `now` (it moves the state clock).
fn tick(now: u64, seq: u64) -> Command {
    Command::Attest(
        Attestation {
            signer: registry_key().verifying_key().to_bytes(),
            now,
            seq,
            relays: Vec::new(),
        }
        .sign(&registry_key())
        .unwrap(),
    )
}

fn db(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("registry.sqlite")
}

/// Applies a publish of a relay not listed yet, checking that it is stored.
fn put(store: &mut Store, at: LogId, d: &SignedDescriptor) {
    assert_eq!(
        store.apply(at, &publish(d)).unwrap(),
        Applied::Stored { replaced: false }
    );
}

fn publish(d: &SignedDescriptor) -> Command {
    Command::Publish(d.clone())
}

/// Relay `seed`'s descriptor published `offset` seconds after T0, valid for a day.
fn relay_at(seed: u8, offset: u64) -> SignedDescriptor {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let mut d: Descriptor = relay(seed, DAY).descriptor().clone();
    d.published = T0 + offset;
    d.expires = T0 + offset + DAY;
    d.sign(&key).unwrap()
}

#[test]
fn state_survives_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    let before = {
        let mut store = open(&path);
        assert_eq!(store.last_applied().unwrap(), None);
        assert!(store.is_empty().unwrap());
        for (i, seed) in (1..=3u8).enumerate() {
            let applied = store
                .apply(id(1, i as u64 + 1), &publish(&relay(seed, DAY)))
                .unwrap();
            assert_eq!(applied, Applied::Stored { replaced: false });
        }
        assert_eq!(
            store
                .apply_membership(id(1, 4), b"three registries")
                .unwrap(),
            Applied::Membership
        );
        assert_eq!(store.apply_blank(id(2, 5)).unwrap(), Applied::Blank);
        assert_eq!(
            store.apply(id(2, 6), &tick(T0 + 60, 1)).unwrap(),
            Applied::Attested {
                counted: 0,
                clock: T0 + 60
            }
        );
        store.image().unwrap()
    };
    let store = open(&path);
    assert_eq!(store.image().unwrap(), before);
    assert_eq!(store.last_applied().unwrap(), Some(id(2, 6)));
    assert_eq!(store.clock().unwrap(), T0 + 60);
    assert_eq!(
        store.membership().unwrap(),
        Some((id(1, 4), b"three registries".to_vec()))
    );
    assert_eq!(store.len().unwrap(), 3);
    let expected = sorted((1..=3).map(|s| relay(s, DAY)).collect());
    assert_eq!(store.descriptors().unwrap(), expected);
    assert_eq!(
        store.get(relay(2, DAY).identity()).unwrap(),
        Some(relay(2, DAY))
    );
    assert_eq!(store.get(&[9; 32]).unwrap(), None);
}

#[test]
fn entries_apply_once_and_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&db(&dir));
    let d = relay(1, DAY);
    assert_eq!(
        store.apply(id(1, 5), &publish(&d)).unwrap(),
        Applied::Stored { replaced: false }
    );
    // Replayed or older entries do nothing, whatever they carry.
    assert_eq!(
        store.apply(id(1, 5), &publish(&relay(2, DAY))).unwrap(),
        Applied::AlreadyApplied
    );
    assert_eq!(
        store
            .apply(id(1, 3), &Command::Expire { now: T0 + 2 * DAY })
            .unwrap(),
        Applied::AlreadyApplied
    );
    assert_eq!(store.len().unwrap(), 1);
    assert_eq!(store.last_applied().unwrap(), Some(id(1, 5)));
    // The same descriptor again at a new index: nothing changes but the position.
    assert_eq!(
        store.apply(id(1, 6), &publish(&d)).unwrap(),
        Applied::Unchanged
    );
    assert_eq!(store.last_applied().unwrap(), Some(id(1, 6)));
    // Terms never go down along a log.
    assert!(matches!(
        store.apply_blank(id(0, 7)),
        Err(StoreError::TermWentBack {
            index: 7,
            term: 0,
            last_term: 1
        })
    ));
    assert!(matches!(
        store.apply_blank(id(u64::MAX, 8)),
        Err(StoreError::LogIdOutOfRange { .. })
    ));
    assert_eq!(store.last_applied().unwrap(), Some(id(1, 6)));
}

#[test]
fn newer_descriptors_replace_and_older_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&db(&dir));
    let (old, new) = (relay_at(1, 0), relay_at(1, 600));
    assert_eq!(
        store.apply(id(1, 1), &publish(&new)).unwrap(),
        Applied::Stored { replaced: false }
    );
    assert_eq!(
        store.apply(id(1, 2), &publish(&old)).unwrap(),
        Applied::Rejected(Rejection::Stale {
            published: T0,
            listed: T0 + 600
        })
    );
    assert_eq!(store.get(new.identity()).unwrap(), Some(new.clone()));
    let newest = relay_at(1, 1200);
    assert_eq!(
        store.apply(id(1, 3), &publish(&newest)).unwrap(),
        Applied::Stored { replaced: true }
    );
    assert_eq!(store.descriptors().unwrap(), vec![newest]);
    assert_eq!(store.last_applied().unwrap(), Some(id(1, 3)));
}

#[test]
fn bad_entries_are_rejected_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&db(&dir));
    put(&mut store, id(1, 1), &relay(1, DAY));
    let before = store.descriptors().unwrap();

    // A forged descriptor in the log entry.
    let mut forged = publish(&relay(2, DAY)).encode();
    forged[2 + 64] ^= 1;
    assert_eq!(
        store.apply_encoded(id(1, 2), &forged).unwrap(),
        Applied::Rejected(Rejection::BadCommand(Error::BadSignature))
    );
    // Garbage.
    assert_eq!(
        store.apply_encoded(id(1, 3), &[1]).unwrap(),
        Applied::Rejected(Rejection::BadCommand(Error::Incomplete))
    );
    // A descriptor expired by the state clock.
    assert_eq!(
        store.apply(id(1, 4), &tick(T0 + HOUR, 1)).unwrap(),
        Applied::Attested {
            counted: 0,
            clock: T0 + HOUR
        }
    );
    assert_eq!(
        store.apply(id(1, 5), &publish(&relay(3, HOUR))).unwrap(),
        Applied::Rejected(Rejection::Expired {
            expires: T0 + HOUR,
            clock: T0 + HOUR
        })
    );
    assert_eq!(store.descriptors().unwrap(), before);
    assert_eq!(store.last_applied().unwrap(), Some(id(1, 5)));
    // A valid encoded entry goes through apply_encoded too.
    assert_eq!(
        store
            .apply_encoded(id(1, 6), &publish(&relay(4, DAY)).encode())
            .unwrap(),
        Applied::Stored { replaced: false }
    );
}

#[test]
fn the_relay_limit_holds() {
    let dir = tempfile::tempdir().unwrap();
    let limits = StoreLimits { max_descriptors: 2 };
    let mut store = Store::open(&db(&dir), limits).unwrap();
    put(&mut store, id(1, 1), &relay_at(1, 0));
    put(&mut store, id(1, 2), &relay(2, DAY));
    assert_eq!(
        store.apply(id(1, 3), &publish(&relay(3, DAY))).unwrap(),
        Applied::Rejected(Rejection::Full { max: 2 })
    );
    // A listed relay may still update itself when full.
    assert_eq!(
        store.apply(id(1, 4), &publish(&relay_at(1, 60))).unwrap(),
        Applied::Stored { replaced: true }
    );
    assert_eq!(store.len().unwrap(), 2);
    for max in [0, 10_001] {
        assert!(matches!(
            Store::open(
                &db(&dir),
                StoreLimits {
                    max_descriptors: max
                }
            ),
            Err(StoreError::BadLimits { .. })
        ));
    }
}

#[test]
fn expire_drops_expired_relays_and_the_clock_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&db(&dir));
    put(&mut store, id(1, 1), &relay(1, HOUR));
    put(&mut store, id(1, 2), &relay(2, 2 * HOUR));
    put(&mut store, id(1, 3), &relay(3, DAY));
    assert_eq!(
        store.apply(id(1, 4), &tick(T0 + HOUR - 1, 1)).unwrap(),
        Applied::Attested {
            counted: 0,
            clock: T0 + HOUR - 1
        }
    );
    // Expire may not move the clock past what the registries attested.
    assert_eq!(
        store
            .apply(id(1, 5), &Command::Expire { now: T0 + 2 * HOUR })
            .unwrap(),
        Applied::Expired { removed: 0 }
    );
    assert_eq!(store.clock().unwrap(), T0 + HOUR - 1);
    assert_eq!(
        store.apply(id(1, 6), &tick(T0 + 2 * HOUR, 1)).unwrap(),
        Applied::Attested {
            counted: 0,
            clock: T0 + 2 * HOUR
        }
    );
    assert_eq!(store.descriptors().unwrap(), vec![relay(3, DAY)]);
    assert_eq!(
        store.apply(id(1, 7), &Command::Expire { now: T0 }).unwrap(),
        Applied::Expired { removed: 0 }
    );
    assert_eq!(store.clock().unwrap(), T0 + 2 * HOUR);
    // A clock past what SQLite holds is refused in an attestation, and an Expire that far
    // changes nothing.
    assert_eq!(
        store.apply(id(1, 8), &tick(u64::MAX, 2)).unwrap(),
        Applied::Rejected(Rejection::TimeOutOfRange { value: u64::MAX })
    );
    assert_eq!(
        store
            .apply(id(1, 9), &Command::Expire { now: u64::MAX })
            .unwrap(),
        Applied::Expired { removed: 0 }
    );
    assert_eq!(store.descriptors().unwrap(), vec![relay(3, DAY)]);
    assert_eq!(store.clock().unwrap(), T0 + 2 * HOUR);
}

/// A descriptor as large as the format allows (about 3.2 kB): 8 addresses of 200 bytes and 64
/// IPv6 rules.
fn big_relay(i: u16) -> SignedDescriptor {
    let mut seed = [0u8; 32];
    seed[..2].copy_from_slice(&i.to_be_bytes());
    seed[31] = 1;
    let key = SigningKey::from_bytes(&seed);
    let rules = (0..64u16)
        .map(|r| ExitRule {
            accept: r % 2 == 0,
            addr: AddrPattern::Net(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, i, r, 0, 0, 0, 1)),
                128,
            ),
            ports: (1, 443 + r),
        })
        .collect();
    Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: [7; 32],
        addresses: (0..8)
            .map(|a| format!("/dns/{a}{}", "x".repeat(194)))
            .collect(),
        nickname: format!("big{i:0>29}"),
        bandwidth: 1,
        exit_policy: ExitPolicy { rules },
        family: Vec::new(),
        published: T0,
        expires: T0 + DAY,
    }
    .sign(&key)
    .unwrap()
}

#[test]
fn snapshots_over_one_mebibyte_restore_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let mut source = Store::open(&dir.path().join("a.sqlite"), StoreLimits::default()).unwrap();
    for i in 0..400u16 {
        let applied = source
            .apply(id(3, u64::from(i) + 1), &publish(&big_relay(i)))
            .unwrap();
        assert_eq!(applied, Applied::Stored { replaced: false });
    }
    assert_eq!(
        source.apply_membership(id(3, 401), b"m").unwrap(),
        Applied::Membership
    );
    let bytes = source.snapshot_bytes().unwrap();
    assert!(bytes.len() > 1 << 20, "{} bytes", bytes.len());

    // The target has other state, which the restore replaces entirely.
    let target_path = dir.path().join("b.sqlite");
    let mut target = open(&target_path);
    put(&mut target, id(1, 1), &relay(1, DAY));
    target.restore(&bytes).unwrap();
    assert_eq!(target.image().unwrap(), source.image().unwrap());
    assert_eq!(target.snapshot_bytes().unwrap(), bytes);
    drop(target);
    let reopened = open(&target_path);
    assert_eq!(reopened.last_applied().unwrap(), Some(id(3, 401)));
    assert_eq!(reopened.snapshot_bytes().unwrap(), bytes);
}

#[test]
fn a_bad_snapshot_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&db(&dir));
    put(&mut store, id(1, 1), &relay(1, DAY));
    let before = store.image().unwrap();

    let good = StateImage {
        last_applied: Some(id(4, 90)),
        clock: T0,
        membership: None,
        descriptors: sorted((2..=4).map(|s| relay(s, DAY)).collect()),
        votes: Default::default(),
    };
    let bytes = good.encode();
    let mut forged = bytes.clone();
    let last = good.descriptors[2].encode();
    // The empty votes (9 bytes) follow the last descriptor.
    forged[bytes.len() - 9 - last.len() + 64] ^= 1;
    assert!(matches!(
        store.restore(&forged),
        Err(StoreError::BadImage(SnapshotError::BadDescriptor {
            index: 2,
            ..
        }))
    ));
    assert!(matches!(
        store.restore(&bytes[..bytes.len() - 1]),
        Err(StoreError::BadImage(SnapshotError::Incomplete))
    ));
    let mut small = Store::open(
        &dir.path().join("small.sqlite"),
        StoreLimits { max_descriptors: 2 },
    )
    .unwrap();
    assert!(matches!(
        small.restore(&bytes),
        Err(StoreError::BadImage(SnapshotError::TooManyDescriptors {
            count: 3,
            max: 2
        }))
    ));
    assert_eq!(store.image().unwrap(), before);

    store.restore(&bytes).unwrap();
    assert_eq!(store.image().unwrap(), good);
}

#[test]
fn a_file_of_another_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db(&dir);
    drop(open(&path));
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute("UPDATE state SET format = 3", []).unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&path, StoreLimits::default()),
        Err(StoreError::UnsupportedFormat {
            found: 3,
            expected: 2
        })
    ));
}
