//! The replicated-state codecs (no SQLite): commands and state images, with hex vectors, round
//! trips, every strict prefix and every reject path.

use crate::support::relays::*;
use braid_directory::{Error, SnapshotError};
use braid_registry::state::votes::{RegistryClock, Vote, Votes};
use braid_registry::state::{Command, LogId, MAX_COMMAND_LEN, MAX_MEMBERSHIP_LEN, StateImage};

#[test]
fn commands_round_trip_with_a_hex_vector() {
    let expire = Command::Expire { now: T0 };
    assert_eq!(hex::encode(expire.encode()), "0102000000006553f100");
    let d = relay(5, DAY);
    let publish = Command::Publish(d.clone());
    assert_eq!(
        hex::encode(publish.encode()),
        format!("0101{}", hex::encode(d.encode()))
    );
    for c in [expire, publish] {
        let bytes = c.encode();
        assert_eq!(Command::decode(&bytes).unwrap(), c);
        for len in 0..bytes.len() {
            assert_eq!(
                Command::decode(&bytes[..len]),
                Err(Error::Incomplete),
                "{len}"
            );
        }
    }
}

#[test]
fn bad_commands_are_refused() {
    assert_eq!(
        Command::decode(&[2, 2, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(Error::BadVersion(2))
    );
    assert_eq!(
        Command::decode(&[1, 9]),
        Err(Error::Malformed {
            what: "unknown command tag"
        })
    );
    assert_eq!(
        Command::decode(&[1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(Error::Malformed {
            what: "trailing bytes after the command"
        })
    );
    assert_eq!(
        Command::decode(&vec![1; MAX_COMMAND_LEN + 1]),
        Err(Error::Malformed {
            what: "command longer than the limit"
        })
    );
    // A forged descriptor inside.
    let mut bytes = Command::Publish(relay(5, DAY)).encode();
    bytes[2 + 64] ^= 1; // its onion key
    assert_eq!(Command::decode(&bytes), Err(Error::BadSignature));
}

fn image() -> StateImage {
    let descriptors = sorted((1..=4).map(|s| relay(s, DAY)).collect());
    let first = *descriptors[0].identity();
    StateImage {
        last_applied: Some(LogId { term: 3, index: 41 }),
        clock: T0,
        membership: Some((LogId { term: 2, index: 7 }, b"members".to_vec())),
        descriptors,
        votes: Votes {
            clocks: vec![RegistryClock {
                registry: [7; 32],
                now: T0,
                seq: 3,
            }],
            votes: vec![Vote {
                relay: first,
                registry: [7; 32],
                digest: [1; 32],
                addresses: [2; 32],
                at: T0,
                measured_bw: Some(5),
            }],
            listed: vec![(first, T0)],
        },
    }
}

#[test]
fn state_images_round_trip() {
    let img = image();
    let bytes = img.encode();
    assert_eq!(StateImage::decode(&bytes, 10).unwrap(), img);
    for len in 0..bytes.len() {
        assert_eq!(
            StateImage::decode(&bytes[..len], 10),
            Err(SnapshotError::Incomplete),
            "{len}"
        );
    }
    let empty = StateImage::default();
    // version, no last_applied, clock 0, no membership, no descriptor, no votes
    assert_eq!(
        hex::encode(empty.encode()),
        [
            "02",
            "00",
            "0000000000000000",
            "00",
            "00000000",
            "00",
            "00000000",
            "00000000"
        ]
        .concat()
    );
    assert_eq!(StateImage::decode(&empty.encode(), 10).unwrap(), empty);
}

#[test]
fn state_image_hex_vector() {
    let img = StateImage {
        last_applied: Some(LogId { term: 1, index: 2 }),
        clock: 3,
        membership: Some((LogId { term: 1, index: 1 }, vec![0xab])),
        descriptors: vec![],
        votes: Votes::default(),
    };
    assert_eq!(
        hex::encode(img.encode()),
        [
            "02",                               // version
            "01",                               // last_applied is set
            "0000000000000001",                 // term
            "0000000000000002",                 // index
            "0000000000000003",                 // clock
            "01",                               // membership is set
            "00000000000000010000000000000001", // its log id
            "00000001ab",                       // its bytes
            "00000000",                         // no descriptor
            "00",                               // no registry clock
            "00000000",                         // no vote
            "00000000",                         // no listed relay
        ]
        .concat()
    );
}

#[test]
fn bad_state_images_are_refused() {
    let img = image();
    let bytes = img.encode();
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        StateImage::decode(&trailing, 10),
        Err(SnapshotError::Malformed {
            what: "trailing bytes after the state image"
        })
    );
    assert_eq!(
        StateImage::decode(&bytes, 3),
        Err(SnapshotError::TooManyDescriptors { count: 4, max: 3 })
    );
    let mut flag = bytes.clone();
    flag[1] = 2;
    assert_eq!(
        StateImage::decode(&flag, 10),
        Err(SnapshotError::Malformed {
            what: "log id flag is neither 0 nor 1"
        })
    );
    // A descriptor expired at the image's clock breaks the state's rule.
    let mut late = img.clone();
    late.clock = T0 + DAY;
    assert!(matches!(
        StateImage::decode(&late.encode(), 10),
        Err(SnapshotError::BadDescriptor { index: 0, reason }) if matches!(*reason, Error::Expired { .. })
    ));
    // Out of order.
    let mut unsorted = img.clone();
    unsorted.descriptors.swap(1, 2);
    assert_eq!(
        StateImage::decode(&unsorted.encode(), 10),
        Err(SnapshotError::Unsorted { index: 2 })
    );
    // A forged descriptor: flip a byte of the last descriptor's onion key.
    let mut forged = bytes.clone();
    let last = img.descriptors[3].encode();
    let no_votes = StateImage {
        votes: Votes::default(),
        ..img.clone()
    };
    let tail = bytes.len() - no_votes.encode().len() + 9;
    let at = bytes.len() - tail - last.len() + 64;
    forged[at] ^= 1;
    assert_eq!(
        StateImage::decode(&forged, 10),
        Err(SnapshotError::BadDescriptor {
            index: 3,
            reason: Box::new(Error::BadSignature)
        })
    );
    // Votes naming a relay without a descriptor, or out of order.
    let mut orphan = img.clone();
    orphan.votes.votes[0].relay = [0xff; 32];
    assert_eq!(
        StateImage::decode(&orphan.encode(), 10),
        Err(SnapshotError::Malformed {
            what: "a vote or listed relay names a relay without a descriptor"
        })
    );
    let mut twice = img.clone();
    twice.votes.listed.push(twice.votes.listed[0]);
    assert_eq!(
        StateImage::decode(&twice.encode(), 10),
        Err(SnapshotError::Malformed {
            what: "listed relays are not sorted and distinct"
        })
    );
    // A membership record over the limit.
    let big = StateImage {
        membership: Some((LogId { term: 1, index: 1 }, vec![0; MAX_MEMBERSHIP_LEN + 1])),
        ..StateImage::default()
    };
    assert_eq!(
        StateImage::decode(&big.encode(), 10),
        Err(SnapshotError::Malformed {
            what: "membership record over the limit"
        })
    );
}

/// Not a check: writes valid commands and images as fuzz seeds into `$BRAID_FUZZ_SEEDS`
/// (`registry/fuzz/corpus/state`).
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("BRAID_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("seed-image"), image().encode()).unwrap();
    std::fs::write(dir.join("seed-empty-image"), StateImage::default().encode()).unwrap();
    let publish = Command::Publish(relay(5, DAY)).encode();
    std::fs::write(dir.join("seed-publish"), publish).unwrap();
    let expire = Command::Expire { now: T0 }.encode();
    std::fs::write(dir.join("seed-expire"), expire).unwrap();
}
