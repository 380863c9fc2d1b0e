use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn sample(seed: u8) -> Attestation {
    Attestation {
        signer: key(seed).verifying_key().to_bytes(),
        now: 1_700_000_000,
        seq: 7,
        relays: vec![
            AttestedRelay {
                relay: [2; 32],
                digest: [3; 32],
                measured_bw: Some(1_000_000),
            },
            AttestedRelay {
                relay: [1; 32],
                digest: [4; 32],
                measured_bw: None,
            },
        ],
    }
}

#[test]
fn signs_sorts_and_round_trips_with_a_hex_prefix() {
    let signed = sample(9).sign(&key(9)).unwrap();
    let bytes = signed.encode();
    assert_eq!(
        bytes.len(),
        1 + 32 + 8 + 8 + 2 + (32 + 32 + 1) + (32 + 32 + 9) + 64
    );
    let signer = hex::encode(key(9).verifying_key().to_bytes());
    let head = format!("01{signer}000000006553f1000000000000000007000201");
    assert!(
        hex::encode(&bytes).starts_with(&head),
        "{}",
        hex::encode(&bytes)
    );
    let back = SignedAttestation::decode(&bytes).unwrap();
    assert_eq!(back, signed);
    assert_eq!(back.attestation().relays[0].relay, [1; 32]);
    for len in 0..bytes.len() {
        assert_eq!(
            SignedAttestation::decode(&bytes[..len]),
            Err(Error::Incomplete),
            "{len}"
        );
    }
}

#[test]
fn forged_tampered_and_malformed_attestations_are_refused() {
    let bytes = sample(9).sign(&key(9)).unwrap().encode();
    let bad_sig = Err(Error::Malformed {
        what: "attestation signature does not verify against its signer",
    });
    // Tampered time.
    let mut t = bytes.clone();
    t[40] ^= 1;
    assert_eq!(SignedAttestation::decode(&t), bad_sig);
    // Signed by key 8 in the name of key 9.
    let mut forged = sample(9);
    forged.signer = key(8).verifying_key().to_bytes();
    let mut f = forged.sign(&key(8)).unwrap().encode();
    f[1..33].copy_from_slice(&key(9).verifying_key().to_bytes());
    assert_eq!(SignedAttestation::decode(&f), bad_sig);
    // Wrong key for the signer field.
    assert_eq!(sample(9).sign(&key(8)), Err(Error::KeyMismatch));
    // Version, trailing bytes, flag, too many relays, oversized.
    let mut v = bytes.clone();
    v[0] = 2;
    assert_eq!(SignedAttestation::decode(&v), Err(Error::BadVersion(2)));
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert_eq!(
        SignedAttestation::decode(&trailing),
        Err(Error::Malformed {
            what: "trailing bytes after the attestation"
        })
    );
    let mut flag = bytes.clone();
    flag[51 + 64] = 2;
    assert_eq!(
        SignedAttestation::decode(&flag),
        Err(Error::Malformed {
            what: "attested bandwidth flag is neither 0 nor 1"
        })
    );
    let mut count = bytes.clone();
    count[49..51].copy_from_slice(&65u16.to_be_bytes());
    assert_eq!(
        SignedAttestation::decode(&count),
        Err(Error::Malformed {
            what: "attestation names more relays than the limit"
        })
    );
    assert_eq!(
        SignedAttestation::decode(&vec![1; MAX_ATTESTATION_LEN + 1]),
        Err(Error::Malformed {
            what: "attestation longer than the limit"
        })
    );
    let mut many = sample(9);
    many.relays = (0..=MAX_ATTESTED_RELAYS)
        .map(|i| AttestedRelay {
            relay: [i as u8; 32],
            digest: [0; 32],
            measured_bw: Some(1),
        })
        .collect();
    assert!(matches!(many.sign(&key(9)), Err(Error::Malformed { .. })));
}

#[test]
fn a_maximal_attestation_fits_the_limit_and_a_raft_entry() {
    let mut a = sample(9);
    a.relays = (0..MAX_ATTESTED_RELAYS)
        .map(|i| AttestedRelay {
            relay: [i as u8; 32],
            digest: [0; 32],
            measured_bw: Some(u64::MAX),
        })
        .collect();
    let bytes = a.sign(&key(9)).unwrap().encode();
    assert_eq!(bytes.len(), MAX_ATTESTATION_LEN);
    const { assert!(2 + MAX_ATTESTATION_LEN <= 8 * 1024) };
    assert!(SignedAttestation::decode(&bytes).is_ok());
}
