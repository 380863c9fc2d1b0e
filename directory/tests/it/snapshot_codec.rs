//! The directory snapshot wire format: round trips, a hex test vector, every strict prefix, and
//! every decoding reject path.

use crate::support::*;
use braid_directory::descriptor::MAX_ENCODED_LEN;
use braid_directory::snapshot::{
    MAX_REGISTRIES, MAX_SNAPSHOT_DESCRIPTORS, MAX_SNAPSHOT_LEN, MIN_DESCRIPTOR_LEN,
    RegistrySignature,
};
use braid_directory::{
    Directory, ListedRelay, RelayFlags, SignedSnapshot, Snapshot, SnapshotError,
};

/// Relays 1..=5, signed by registries 0 and 2 of 3.
fn example() -> (braid_directory::RegistrySet, SignedSnapshot) {
    let set = registry_set(3);
    let descriptors = (1..=5).map(|s| relay(s, DAY)).collect();
    let mut signed = snapshot(&set, T0, T0 + 3 * HOUR, descriptors)
        .unwrap()
        .into_unsigned();
    let keys = keys_in_index_order(&set, 3);
    signed.sign_with(&set, &keys[0]).unwrap();
    signed.sign_with(&set, &keys[2]).unwrap();
    (set, signed)
}

#[test]
fn round_trips_and_verifies() {
    let (set, signed) = example();
    let bytes = signed.encode();
    let decoded = SignedSnapshot::decode(&bytes).unwrap();
    assert_eq!(decoded, signed);
    assert_eq!(decoded.encode(), bytes);
    assert_eq!(decoded.descriptor_count(), 5);
    assert_eq!(decoded.issued_at(), T0);
    assert_eq!(decoded.valid_until(), T0 + 3 * HOUR);
    assert_eq!(decoded.registry_set(), set.digest());

    let verified = decoded.verify(&set, T0 + 60).unwrap();
    assert_eq!(verified.signers(), &[0, 2]);
    assert_eq!(verified.issued_at(), T0);
    assert_eq!(verified.signed().encode(), bytes);
    let expected = sorted((1..=5).map(|s| relay(s, DAY)).collect());
    assert_eq!(verified.descriptors(), expected.iter().collect::<Vec<_>>());
    assert_eq!(verified.unmeasured_weight(), UW);
    assert!(verified.relays().iter().all(|r| r.weight() == UW));
    assert!(!verified.is_expired(T0 + 3 * HOUR - 1));
    assert!(verified.is_expired(T0 + 3 * HOUR));

    // The directory view is what router code already reads.
    let dir: Directory = verified.to_directory();
    let listed = expected.iter().cloned().map(plain).collect();
    assert_eq!(dir, Directory::from_relays(listed).unwrap());
    assert_eq!(Directory::from(verified), dir);
}

#[test]
fn the_builder_sorts_and_the_hand_encoding_matches() {
    let set = registry_set(3);
    let descriptors: Vec<_> = [4u8, 1, 3].iter().map(|&s| relay(s, DAY)).collect();
    let built = snapshot(&set, T0, T0 + HOUR, descriptors.clone()).unwrap();
    let encoded: Vec<Vec<u8>> = sorted(descriptors).iter().map(|d| d.encode()).collect();
    assert_eq!(
        built.encode(),
        body_bytes(set.digest(), T0, T0 + HOUR, &encoded)
    );
    // An empty snapshot is allowed (a network with no relay yet).
    let empty = snapshot(&set, T0, T0 + HOUR, vec![]).unwrap();
    assert_eq!(empty.encode(), body_bytes(set.digest(), T0, T0 + HOUR, &[]));
}

// The digest and both signatures were cross-checked outside Rust: BLAKE3 written from the spec
// in Python (body digest 5c5ffe86...), Ed25519 by Python `cryptography` (OpenSSL).

/// The registry set digest of keys with seeds 0xA0, 0xA1, 0xA2.
const SET_DIGEST_HEX: &str = "47ba9fbc816c24858a68c8fd32f2494a271f0558e3f3a78de70b29ad63157d79";
/// Registry index 0's signature over the vector's body.
const SIG0_HEX: &str = "60ba20b7c5d67c20cd2bb20553447f47fd894df984c04a3507da62fe57f479974cecdfc7786f56904f4e41e61c9b5b9f64b957cae040dfb4461f2d5af3882504";
/// Registry index 1's signature over the vector's body.
const SIG1_HEX: &str = "e0b92e6f201c6a518760ff3e55348ec68e9f6396b439aa2b499ef1bf928aa012b4e06759316d5a3ddab70f3c40a9dfd82980743f1995872183c9317ade933d03";

#[test]
fn hex_vector() {
    let set = registry_set(3);
    assert_eq!(hex::encode(set.digest()), SET_DIGEST_HEX);
    // Relay 1: no flags, unmeasured. Relay 2 (an exit): Guard and Exit, measured at 1 MB/s.
    let (d1, d2) = (relay(1, DAY), relay(2, DAY));
    let r2 = ListedRelay {
        measured_bw: Some(1_000_000),
        flags: RelayFlags::new(true, true),
        ..plain(d2.clone())
    };
    let listed = vec![plain(d1.clone()), r2.clone()];
    let mut signed = Snapshot::new(&set, T0, T0 + 3 * HOUR, UW, listed)
        .unwrap()
        .into_unsigned();
    let keys = keys_in_index_order(&set, 3);
    signed.sign_with(&set, &keys[1]).unwrap();
    signed.sign_with(&set, &keys[0]).unwrap();
    // Relay 2's identity sorts first.
    assert!(d2.identity() < d1.identity());
    let expected = [
        "02",               // version
        "000000006553f100", // issued_at T0
        "0000000065541b30", // valid_until T0 + 3 h
        SET_DIGEST_HEX,     // registry set digest
        "0000000000004e20", // unmeasured weight 20 000
        "00000002",         // two entries
        &format!("{:04x}", d2.encode().len()),
        &hex::encode(d2.encode()),
        "03",               // Guard | Exit
        "00000000000f4240", // measured 1 000 000
        &format!("{:04x}", d1.encode().len()),
        &hex::encode(d1.encode()),
        "00",               // no flags
        "0000000000000000", // not measured
        "02",               // two signatures, in the order added
        "01",
        SIG1_HEX,
        "00",
        SIG0_HEX,
    ]
    .concat();
    assert_eq!(hex::encode(signed.encode()), expected);
    let bytes = hex::decode(&expected).unwrap();
    let verified = SignedSnapshot::decode(&bytes)
        .unwrap()
        .verify(&set, T0)
        .unwrap();
    assert_eq!(verified.relays(), &[r2.clone(), plain(d1)]);
    assert_eq!(verified.relays()[0].weight(), 1_000_000);
    assert_eq!(verified.relays()[1].weight(), UW);
    assert_eq!(verified.signers(), &[0, 1]);
}

#[test]
fn every_strict_prefix_is_incomplete() {
    let (_, signed) = example();
    let bytes = signed.encode();
    for len in 0..bytes.len() {
        assert_eq!(
            SignedSnapshot::decode(&bytes[..len]),
            Err(SnapshotError::Incomplete),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn trailing_bytes_are_malformed() {
    let (_, signed) = example();
    let mut bytes = signed.encode();
    bytes.push(0);
    assert_eq!(
        SignedSnapshot::decode(&bytes),
        Err(SnapshotError::Malformed {
            what: "trailing bytes after the signatures"
        })
    );
}

#[test]
fn a_wrong_version_is_refused() {
    let (_, signed) = example();
    let mut bytes = signed.encode();
    for version in [0, 1, 3, 0xff] {
        bytes[0] = version;
        assert_eq!(
            SignedSnapshot::decode(&bytes),
            Err(SnapshotError::BadVersion(version))
        );
    }
}

#[test]
fn an_empty_or_too_long_lifetime_is_refused() {
    let set = registry_set(3);
    for (issued, until) in [(T0, T0), (T0, T0 - 1), (T0, T0 + DAY + 1)] {
        let bytes = with_signatures(&body_bytes(set.digest(), issued, until, &[]), &[]);
        let want = SnapshotError::BadLifetime {
            issued_at: issued,
            valid_until: until,
        };
        assert_eq!(SignedSnapshot::decode(&bytes), Err(want.clone()));
        assert_eq!(snapshot(&set, issued, until, vec![]), Err(want));
    }
}

#[test]
fn oversized_counts_and_lengths_are_refused() {
    let set = registry_set(3);
    let d = relay(1, DAY).encode();

    // A descriptor count over the limit, whatever follows.
    let mut bytes = body_bytes(set.digest(), T0, T0 + HOUR, &[]);
    let count_at = bytes.len() - 4;
    bytes[count_at..].copy_from_slice(&(MAX_SNAPSHOT_DESCRIPTORS as u32 + 1).to_be_bytes());
    assert_eq!(
        SignedSnapshot::decode(&bytes),
        Err(SnapshotError::TooManyDescriptors {
            count: MAX_SNAPSHOT_DESCRIPTORS + 1,
            max: MAX_SNAPSHOT_DESCRIPTORS
        })
    );
    bytes[count_at..].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        SignedSnapshot::decode(&bytes),
        Err(SnapshotError::TooManyDescriptors { .. })
    ));

    // A signature count over the limit.
    let body = body_bytes(set.digest(), T0, T0 + HOUR, std::slice::from_ref(&d));
    let sigs = vec![
        RegistrySignature {
            signer: 0,
            signature: [0; 64]
        };
        MAX_REGISTRIES + 1
    ];
    assert_eq!(
        SignedSnapshot::decode(&with_signatures(&body, &sigs)),
        Err(SnapshotError::TooManySignatures {
            count: MAX_REGISTRIES + 1,
            max: MAX_REGISTRIES
        })
    );

    // Descriptor lengths that no descriptor can have.
    for len in [
        0,
        MIN_DESCRIPTOR_LEN - 1,
        MAX_ENCODED_LEN + 1,
        usize::from(u16::MAX),
    ] {
        let mut bytes = body_bytes(set.digest(), T0, T0 + HOUR, std::slice::from_ref(&d));
        let len_at = count_at + 4;
        bytes[len_at..len_at + 2].copy_from_slice(&(len as u16).to_be_bytes());
        assert_eq!(
            SignedSnapshot::decode(&bytes),
            Err(SnapshotError::Malformed {
                what: "descriptor length out of range"
            }),
            "length {len}"
        );
    }

    // Input over the total limit is refused before reading.
    let huge = vec![1u8; MAX_SNAPSHOT_LEN + 1];
    assert_eq!(
        SignedSnapshot::decode(&huge),
        Err(SnapshotError::TooLarge {
            len: MAX_SNAPSHOT_LEN + 1,
            max: MAX_SNAPSHOT_LEN
        })
    );
}

#[test]
fn descriptors_out_of_order_or_repeated_are_refused() {
    let set = registry_set(3);
    let [a, b, c]: [Vec<u8>; 3] = sorted(vec![relay(1, DAY), relay(2, DAY), relay(3, DAY)])
        .iter()
        .map(|d| d.encode())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    for (list, index) in [
        (vec![b.clone(), a.clone(), c.clone()], 1),
        (vec![a.clone(), c.clone(), b.clone()], 2),
        (vec![a.clone(), a.clone()], 1),
        (vec![a.clone(), b.clone(), b.clone()], 2),
    ] {
        let bytes = hand_signed(&set, 3, &[0, 1], T0, T0 + HOUR, &list);
        assert_eq!(
            SignedSnapshot::decode(&bytes),
            Err(SnapshotError::Unsorted { index })
        );
    }
}

#[test]
fn a_snapshot_over_one_mebibyte_round_trips() {
    // Signing 7,000 descriptors would be slow in a debug build, and the codec does not look
    // inside a descriptor until verify: copy one real descriptor under 7,000 ascending
    // identities (which breaks their signatures, as verify then says).
    let set = registry_set(3);
    let real = relay(9, DAY).encode();
    let list: Vec<Vec<u8>> = (0u32..7000)
        .map(|i| {
            let mut d = real.clone();
            d[1..5].copy_from_slice(&i.to_be_bytes());
            d
        })
        .collect();
    let bytes = hand_signed(&set, 3, &[0, 1], T0, T0 + HOUR, &list);
    assert!(bytes.len() > 1 << 20);
    let decoded = SignedSnapshot::decode(&bytes).unwrap();
    assert_eq!(decoded.descriptor_count(), 7000);
    assert_eq!(decoded.encode(), bytes);
    // The registry signatures hold, but the descriptors' own signatures do not.
    assert!(matches!(
        decoded.verify(&set, T0),
        Err(SnapshotError::BadDescriptor { index: 0, .. })
    ));
}

/// Not a check: writes valid snapshots as fuzz seeds into `$BRAID_FUZZ_SEEDS`
/// (`directory/fuzz/corpus/snapshot`), for the `snapshot` fuzz target's fixed registry set.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let Some(dir) = std::env::var_os("BRAID_FUZZ_SEEDS") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).unwrap();
    let (set, signed) = example();
    std::fs::write(dir.join("seed-5-relays"), signed.encode()).unwrap();
    let one = hand_signed(&set, 3, &[0, 1], T0, T0 + HOUR, &[relay(2, DAY).encode()]);
    std::fs::write(dir.join("seed-1-relay"), one).unwrap();
    let empty = hand_signed(&set, 3, &[2, 0], T0, T0 + HOUR, &[]);
    std::fs::write(dir.join("seed-empty"), empty).unwrap();
}

/// `entries` in a body for `set`, signed by registries 0 and 1 of 3.
fn signed_entries(set: &braid_directory::RegistrySet, uw: u64, entries: &[HandEntry]) -> Vec<u8> {
    let body = body_entries(set.digest(), T0, T0 + HOUR, uw, entries);
    let keys = keys_in_index_order(set, 3);
    let sigs: Vec<RegistrySignature> = (0..2u8)
        .map(|i| RegistrySignature {
            signer: i,
            signature: sign_body(&keys[usize::from(i)], &body),
        })
        .collect();
    with_signatures(&body, &sigs)
}

#[test]
fn flags_and_measurements_round_trip_and_every_prefix_is_incomplete() {
    let set = registry_set(3);
    let (exit, middle) = (relay(2, DAY).encode(), relay(3, DAY).encode());
    let mut entries = vec![(exit, 0b11, 1_000_000), (middle, 0b01, 0)];
    entries.sort_by(|a, b| a.0[1..33].cmp(&b.0[1..33]));
    let bytes = signed_entries(&set, 12_345, &entries);
    let decoded = SignedSnapshot::decode(&bytes).unwrap();
    assert_eq!(decoded.encode(), bytes);
    assert_eq!(decoded.unmeasured_weight(), 12_345);
    let verified = decoded.verify(&set, T0).unwrap();
    for (relay, (_, flags, measured)) in verified.relays().iter().zip(&entries) {
        assert_eq!(relay.flags.bits(), *flags);
        assert_eq!(relay.measured_bw, (*measured != 0).then_some(*measured));
        assert_eq!(relay.unmeasured_weight, 12_345);
    }
    // Guard on an unmeasured relay is the registries' call; its weight is still capped.
    let middle = verified
        .relays()
        .iter()
        .find(|r| r.measured_bw.is_none())
        .unwrap();
    assert!(middle.flags.is_guard());
    assert_eq!(middle.weight(), 12_345);
    for len in 0..bytes.len() {
        assert_eq!(
            SignedSnapshot::decode(&bytes[..len]),
            Err(SnapshotError::Incomplete),
            "prefix of {len} bytes"
        );
    }
}

#[test]
fn unknown_flag_bits_are_malformed() {
    let set = registry_set(3);
    let d = relay(2, DAY).encode();
    for flags in [0b100, 0x80, 0xff] {
        let bytes = signed_entries(&set, UW, &[(d.clone(), flags, 0)]);
        assert_eq!(
            SignedSnapshot::decode(&bytes),
            Err(SnapshotError::Malformed {
                what: "unknown relay flag bits"
            }),
            "flags {flags:#04x}"
        );
    }
}

#[test]
fn an_unmeasured_weight_of_zero_is_refused() {
    let set = registry_set(3);
    let bytes = signed_entries(&set, 0, &[(relay(2, DAY).encode(), 0, 0)]);
    assert_eq!(
        SignedSnapshot::decode(&bytes),
        Err(SnapshotError::BadUnmeasuredWeight)
    );
    assert_eq!(
        Snapshot::new(&set, T0, T0 + HOUR, 0, vec![]),
        Err(SnapshotError::BadUnmeasuredWeight)
    );
}

#[test]
fn an_exit_flag_on_a_relay_that_allows_no_exit_is_refused() {
    let set = registry_set(3);
    // relay(1) rejects everything; a majority signed the entry anyway.
    let bytes = signed_entries(&set, UW, &[(relay(1, DAY).encode(), 0b10, 0)]);
    let decoded = SignedSnapshot::decode(&bytes).unwrap();
    assert!(matches!(
        decoded.verify(&set, T0),
        Err(SnapshotError::BadEntry { index: 0, .. })
    ));
    let lying = ListedRelay {
        flags: RelayFlags::new(false, true),
        ..plain(relay(1, DAY))
    };
    assert!(matches!(
        Snapshot::new(&set, T0, T0 + HOUR, UW, vec![lying]),
        Err(SnapshotError::BadEntry { index: 0, .. })
    ));
}

#[test]
fn the_builder_refuses_a_zero_measurement_and_a_foreign_unmeasured_weight() {
    let set = registry_set(3);
    let zero = ListedRelay {
        measured_bw: Some(0),
        ..plain(relay(2, DAY))
    };
    let foreign = ListedRelay {
        unmeasured_weight: UW + 1,
        ..plain(relay(4, DAY))
    };
    for (list, index) in [(vec![zero], 0), (vec![plain(relay(1, DAY)), foreign], 1)] {
        assert!(matches!(
            Snapshot::new(&set, T0, T0 + HOUR, UW, list),
            Err(SnapshotError::BadEntry { index: i, .. }) if i == index
        ));
    }
}
