//! Snapshot verification, signing, the registry set and the "last good snapshot stays" rule:
//! one test per reject path, all with real Ed25519 keys and real bytes.

use crate::support::*;
use braid_directory::descriptor::SIGNING_DOMAIN;
use braid_directory::snapshot::{MAX_REGISTRIES, RegistrySignature, SNAPSHOT_CLOCK_SKEW_SECS};
use braid_directory::{
    Descriptor, Error, RegistrySet, SignedSnapshot, SnapshotError, accept_newer,
};
use ed25519_dalek::{Signer, SigningKey};

fn three() -> Vec<Vec<u8>> {
    sorted((1..=3).map(|s| relay(s, DAY)).collect())
        .iter()
        .map(|d| d.encode())
        .collect()
}

#[test]
fn a_majority_is_needed() {
    let set = registry_set(3);
    assert_eq!(set.threshold(), 2);
    let one = hand_signed(&set, 3, &[1], T0, T0 + HOUR, &three());
    assert_eq!(
        verify_bytes(&one, &set, T0),
        Err(SnapshotError::TooFewSignatures {
            valid: 1,
            needed: 2
        })
    );
    let none = hand_signed(&set, 3, &[], T0, T0 + HOUR, &three());
    assert_eq!(
        verify_bytes(&none, &set, T0),
        Err(SnapshotError::TooFewSignatures {
            valid: 0,
            needed: 2
        })
    );
    let two = hand_signed(&set, 3, &[2, 1], T0, T0 + HOUR, &three());
    assert_eq!(verify_bytes(&two, &set, T0).unwrap().signers(), &[1, 2]);

    let five = registry_set(5);
    assert_eq!(five.threshold(), 3);
    let bytes = hand_signed(&five, 5, &[0, 4], T0, T0 + HOUR, &three());
    assert_eq!(
        verify_bytes(&bytes, &five, T0),
        Err(SnapshotError::TooFewSignatures {
            valid: 2,
            needed: 3
        })
    );
    let bytes = hand_signed(&five, 5, &[0, 3, 4], T0, T0 + HOUR, &three());
    assert!(verify_bytes(&bytes, &five, T0).is_ok());
}

#[test]
fn a_signature_by_a_key_outside_the_set_does_not_count() {
    let set = registry_set(3);
    let body = body_bytes(set.digest(), T0, T0 + HOUR, &three());
    let keys = keys_in_index_order(&set, 3);
    let outsider = SigningKey::from_bytes(&[0x55; 32]);
    let sigs = [
        RegistrySignature {
            signer: 0,
            signature: sign_body(&keys[0], &body),
        },
        // The outsider claims to be registry 1.
        RegistrySignature {
            signer: 1,
            signature: sign_body(&outsider, &body),
        },
    ];
    assert_eq!(
        verify_bytes(&with_signatures(&body, &sigs), &set, T0),
        Err(SnapshotError::TooFewSignatures {
            valid: 1,
            needed: 2
        })
    );
    // A signer index past the set is refused outright.
    let sigs = [
        sigs[0],
        RegistrySignature {
            signer: 3,
            signature: sign_body(&outsider, &body),
        },
    ];
    assert_eq!(
        verify_bytes(&with_signatures(&body, &sigs), &set, T0),
        Err(SnapshotError::UnknownSigner {
            index: 3,
            registries: 3
        })
    );
    // And the outsider cannot add itself through the signing API.
    let mut signed = SignedSnapshot::decode(&with_signatures(&body, &[])).unwrap();
    assert_eq!(
        signed.sign_with(&set, &outsider),
        Err(SnapshotError::NotARegistry)
    );
}

#[test]
fn a_signature_over_another_body_does_not_count() {
    let set = registry_set(3);
    let body = body_bytes(set.digest(), T0, T0 + HOUR, &three());
    let other = body_bytes(set.digest(), T0, T0 + 2 * HOUR, &three());
    let keys = keys_in_index_order(&set, 3);
    let sigs = [
        RegistrySignature {
            signer: 0,
            signature: sign_body(&keys[0], &body),
        },
        RegistrySignature {
            signer: 1,
            signature: sign_body(&keys[1], &other),
        },
    ];
    assert_eq!(
        verify_bytes(&with_signatures(&body, &sigs), &set, T0),
        Err(SnapshotError::TooFewSignatures {
            valid: 1,
            needed: 2
        })
    );
}

#[test]
fn a_duplicate_signer_is_refused() {
    let set = registry_set(3);
    let body = body_bytes(set.digest(), T0, T0 + HOUR, &three());
    let keys = keys_in_index_order(&set, 3);
    let sig = RegistrySignature {
        signer: 2,
        signature: sign_body(&keys[2], &body),
    };
    assert_eq!(
        verify_bytes(&with_signatures(&body, &[sig, sig]), &set, T0),
        Err(SnapshotError::DuplicateSigner { index: 2 })
    );
    let mut signed = SignedSnapshot::decode(&with_signatures(&body, &[sig])).unwrap();
    assert_eq!(
        signed.sign_with(&set, &keys[2]),
        Err(SnapshotError::DuplicateSigner { index: 2 })
    );
    assert_eq!(
        signed.add_signature(&set, sig),
        Err(SnapshotError::DuplicateSigner { index: 2 })
    );
}

#[test]
fn add_signature_checks_what_it_adds() {
    let set = registry_set(3);
    let body = body_bytes(set.digest(), T0, T0 + HOUR, &three());
    let keys = keys_in_index_order(&set, 3);
    let mut signed = SignedSnapshot::decode(&with_signatures(&body, &[])).unwrap();
    let forged = RegistrySignature {
        signer: 1,
        signature: sign_body(&keys[0], &body),
    };
    assert_eq!(
        signed.add_signature(&set, forged),
        Err(SnapshotError::BadSignature { index: 1 })
    );
    let unknown = RegistrySignature {
        signer: 7,
        signature: [0; 64],
    };
    assert_eq!(
        signed.add_signature(&set, unknown),
        Err(SnapshotError::UnknownSigner {
            index: 7,
            registries: 3
        })
    );
    assert!(signed.signatures().is_empty());
    for i in [1u8, 0] {
        let good = RegistrySignature {
            signer: i,
            signature: sign_body(&keys[usize::from(i)], &body),
        };
        signed.add_signature(&set, good).unwrap();
    }
    assert_eq!(signed.verify(&set, T0).unwrap().signers(), &[0, 1]);
}

#[test]
fn the_wrong_registry_set_is_refused() {
    let set = registry_set(3);
    let other = registry_set(5);
    let bytes = hand_signed(&set, 3, &[0, 1, 2], T0, T0 + HOUR, &three());
    let want = SnapshotError::WrongRegistrySet {
        snapshot: set.digest(),
        configured: other.digest(),
    };
    assert_eq!(verify_bytes(&bytes, &other, T0), Err(want.clone()));
    assert!(want.to_string().starts_with(&format!(
        "directory snapshot was made for registry set {}…",
        hex::encode(&set.digest()[..8])
    )));
    let mut signed = SignedSnapshot::decode(&bytes).unwrap();
    let key = registry_key(4);
    assert_eq!(signed.sign_with(&other, &key), Err(want));
}

#[test]
fn a_forged_descriptor_is_refused() {
    let set = registry_set(3);
    let mut list = three();
    // Relay 2 of 3 (index 1) now claims another onion key (byte 64 is its last byte); its
    // signature no longer holds. The registries sign the result anyway: a registry majority
    // gone bad must not be enough to slip in a descriptor its relay did not sign.
    list[1][64] ^= 1;
    let bytes = hand_signed(&set, 3, &[0, 1, 2], T0, T0 + HOUR, &list);
    assert_eq!(
        verify_bytes(&bytes, &set, T0),
        Err(SnapshotError::BadDescriptor {
            index: 1,
            reason: Box::new(Error::BadSignature)
        })
    );
    // A descriptor signed by a key other than its identity.
    let imposter = SigningKey::from_bytes(&[0x66; 32]);
    let mut bad = list[2].clone();
    let sig_at = bad.len() - 64;
    let forged = imposter.sign(&[SIGNING_DOMAIN, &bad[1..sig_at]].concat());
    bad[sig_at..].copy_from_slice(&forged.to_bytes());
    let list = vec![list[0].clone(), three()[1].clone(), bad];
    let bytes = hand_signed(&set, 3, &[0, 1], T0, T0 + HOUR, &list);
    assert_eq!(
        verify_bytes(&bytes, &set, T0),
        Err(SnapshotError::BadDescriptor {
            index: 2,
            reason: Box::new(Error::BadSignature)
        })
    );
}

#[test]
fn an_expired_or_future_descriptor_is_refused() {
    let set = registry_set(3);
    let mut list = three();
    // Relay index 0 lives one hour only; the snapshot is checked two hours in.
    let short = sorted((1..=3).map(|s| relay(s, HOUR)).collect())[0].encode();
    list[0] = short;
    let bytes = hand_signed(&set, 3, &[0, 1], T0, T0 + 3 * HOUR, &list);
    assert!(verify_bytes(&bytes, &set, T0 + HOUR - 1).is_ok());
    assert_eq!(
        verify_bytes(&bytes, &set, T0 + 2 * HOUR),
        Err(SnapshotError::BadDescriptor {
            index: 0,
            reason: Box::new(Error::Expired {
                expires: T0 + HOUR,
                now: T0 + 2 * HOUR
            })
        })
    );
    // The builder refuses to list it at all: it would go bad during the snapshot's life.
    let short = sorted((1..=3).map(|s| relay(s, HOUR)).collect())[0].clone();
    let others = sorted((1..=3).map(|s| relay(s, DAY)).collect());
    assert_eq!(
        snapshot(
            &set,
            T0,
            T0 + 3 * HOUR,
            vec![others[2].clone(), short.clone()]
        ),
        Err(SnapshotError::ExpiresTooSoon {
            index: 1,
            expires: T0 + HOUR,
            valid_until: T0 + 3 * HOUR
        })
    );
    // A descriptor published in the future (beyond the skew) of the snapshot's check time.
    let bytes = hand_signed(&set, 3, &[0, 1], T0 - HOUR, T0 + HOUR, &three());
    let now = T0 - HOUR;
    assert_eq!(
        verify_bytes(&bytes, &set, now),
        Err(SnapshotError::BadDescriptor {
            index: 0,
            reason: Box::new(Error::NotYetValid { published: T0, now })
        })
    );
}

#[test]
fn a_stale_or_future_snapshot_is_refused() {
    let set = registry_set(3);
    let bytes = hand_signed(&set, 3, &[0, 1], T0, T0 + HOUR, &three());
    assert!(verify_bytes(&bytes, &set, T0 + HOUR - 1).is_ok());
    assert_eq!(
        verify_bytes(&bytes, &set, T0 + HOUR),
        Err(SnapshotError::Expired {
            valid_until: T0 + HOUR,
            now: T0 + HOUR
        })
    );
    let early = T0 - SNAPSHOT_CLOCK_SKEW_SECS;
    assert!(verify_bytes(&bytes, &set, early).is_ok());
    assert_eq!(
        verify_bytes(&bytes, &set, early - 1),
        Err(SnapshotError::NotYetValid {
            issued_at: T0,
            now: early - 1
        })
    );
}

#[test]
fn the_last_good_snapshot_stays_in_use() {
    let set = registry_set(3);
    let first = hand_signed(&set, 3, &[0, 1], T0, T0 + 3 * HOUR, &three());
    let current = accept_newer(None, &first, &set, T0).unwrap();

    // The same one again, or an older one: not newer, refused before any signature check.
    let older = hand_signed(&set, 3, &[0, 1], T0 - HOUR, T0 + 2 * HOUR, &three());
    assert_eq!(
        accept_newer(Some(&current), &first, &set, T0),
        Err(SnapshotError::NotNewer {
            current: T0,
            candidate: T0
        })
    );
    assert_eq!(
        accept_newer(Some(&current), &older, &set, T0),
        Err(SnapshotError::NotNewer {
            current: T0,
            candidate: T0 - HOUR
        })
    );
    // A newer one with too few signatures, or garbage: refused with the reason.
    let weak = hand_signed(&set, 3, &[2], T0 + HOUR, T0 + 4 * HOUR, &three());
    assert_eq!(
        accept_newer(Some(&current), &weak, &set, T0 + HOUR),
        Err(SnapshotError::TooFewSignatures {
            valid: 1,
            needed: 2
        })
    );
    assert_eq!(
        accept_newer(Some(&current), &weak[..10], &set, T0 + HOUR),
        Err(SnapshotError::Incomplete)
    );
    // A newer valid one replaces it.
    let newer = hand_signed(&set, 3, &[1, 2], T0 + HOUR, T0 + 4 * HOUR, &three());
    let next = accept_newer(Some(&current), &newer, &set, T0 + HOUR).unwrap();
    assert_eq!(next.issued_at(), T0 + HOUR);
}

#[test]
fn registry_sets_are_checked_and_order_free() {
    let k = |i| registry_key(i).verifying_key().to_bytes();
    let a = RegistrySet::new(&[k(0), k(1), k(2)]).unwrap();
    let b = RegistrySet::new(&[k(2), k(0), k(1)]).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    assert_ne!(
        a.digest(),
        RegistrySet::new(&[k(0), k(1)]).unwrap().digest()
    );
    assert!(
        a.keys()
            .windows(2)
            .all(|w| w[0].as_bytes() < w[1].as_bytes())
    );

    for (n, threshold) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (9, 5)] {
        assert_eq!(registry_set(n).threshold(), threshold, "{n} registries");
    }
    let bad = |keys: &[[u8; 32]]| match RegistrySet::new(keys) {
        Err(SnapshotError::BadRegistrySet { reason }) => reason,
        other => panic!("expected BadRegistrySet, got {other:?}"),
    };
    assert_eq!(bad(&[]), "0 keys; need 1 to 9");
    let ten: Vec<[u8; 32]> = (0..=MAX_REGISTRIES as u8).map(k).collect();
    assert_eq!(bad(&ten), "10 keys; need 1 to 9");
    assert_eq!(bad(&[k(0), k(1), k(0)]), "the same key is listed twice");
    // The identity point is small-order: a "key" anyone can sign for.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(bad(&[identity]).contains("small-order"));
}

#[test]
fn the_builder_refuses_duplicate_identities() {
    let set = registry_set(1);
    let d = relay(3, DAY);
    let same_identity_later = {
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut plain: Descriptor = d.descriptor().clone();
        plain.published += 60;
        plain.sign(&key).unwrap()
    };
    assert_eq!(
        snapshot(
            &set,
            T0 + 60,
            T0 + HOUR,
            vec![d, relay(4, DAY), same_identity_later]
        ),
        Err(SnapshotError::DuplicateIdentity { index: 2, first: 0 })
    );
}

#[test]
fn a_single_registry_works() {
    let set = registry_set(1);
    let mut signed = snapshot(&set, T0, T0 + HOUR, vec![relay(1, DAY)])
        .unwrap()
        .into_unsigned();
    signed.sign_with(&set, &registry_key(0)).unwrap();
    assert_eq!(signed.verify(&set, T0).unwrap().signers(), &[0]);
}
