//! Shared helpers for the snapshot tests: real keys, real signed descriptors, and a hand-written
//! encoder that follows the README table (so the tests also check the documented format).

#![allow(dead_code)] // each test module uses a different part

use braid_directory::snapshot::{RegistrySignature, SNAPSHOT_SIGNING_DOMAIN};
use braid_directory::{
    Descriptor, ExitPolicy, ListedRelay, RegistrySet, RelayFlags, SignedDescriptor, SignedSnapshot,
    Snapshot, SnapshotError,
};
use ed25519_dalek::{Signer, SigningKey};

pub(crate) const T0: u64 = 1_700_000_000;
pub(crate) const HOUR: u64 = 3600;
pub(crate) const DAY: u64 = 86_400;

/// Registry key `i` (seed `0xA0 + i`).
pub(crate) fn registry_key(i: u8) -> SigningKey {
    SigningKey::from_bytes(&[0xA0 + i; 32])
}

/// The set of registry keys 0..n.
pub(crate) fn registry_set(n: u8) -> RegistrySet {
    let keys: Vec<[u8; 32]> = (0..n)
        .map(|i| registry_key(i).verifying_key().to_bytes())
        .collect();
    RegistrySet::new(&keys).unwrap()
}

/// The registry keys 0..n in the set's index order.
pub(crate) fn keys_in_index_order(set: &RegistrySet, n: u8) -> Vec<SigningKey> {
    let mut keys: Vec<SigningKey> = (0..n).map(registry_key).collect();
    keys.sort_by_key(|k| set.index_of(&k.verifying_key()).unwrap());
    keys
}

/// A relay descriptor signed by relay key `seed`, published at T0, expiring `lifetime` later.
pub(crate) fn relay(seed: u8, lifetime: u64) -> SignedDescriptor {
    let key = SigningKey::from_bytes(&[seed; 32]);
    Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: [seed; 32],
        addresses: vec![format!("/ip4/127.0.0.{seed}/udp/4001/quic-v1")],
        nickname: format!("relay{seed}"),
        bandwidth: 1 << 20,
        exit_policy: if seed.is_multiple_of(2) {
            ExitPolicy::accept_all()
        } else {
            ExitPolicy::reject_all()
        },
        published: T0,
        expires: T0 + lifetime,
    }
    .sign(&key)
    .unwrap()
}

/// Descriptors sorted by identity, as a snapshot lists them.
pub(crate) fn sorted(mut descriptors: Vec<SignedDescriptor>) -> Vec<SignedDescriptor> {
    descriptors.sort_by(|a, b| a.identity().cmp(b.identity()));
    descriptors
}

/// The unmeasured weight the tests' snapshots carry.
pub(crate) const UW: u64 = 20_000;

/// `d` listed without flags and unmeasured (what [`body_bytes`] writes for a bare descriptor).
pub(crate) fn plain(d: SignedDescriptor) -> ListedRelay {
    ListedRelay {
        descriptor: d,
        measured_bw: None,
        flags: RelayFlags::default(),
        unmeasured_weight: UW,
    }
}

/// [`Snapshot::new`] of the descriptors listed [`plain`], with [`UW`].
pub(crate) fn snapshot(
    set: &RegistrySet,
    issued_at: u64,
    valid_until: u64,
    descriptors: Vec<SignedDescriptor>,
) -> Result<Snapshot, SnapshotError> {
    Snapshot::new(
        set,
        issued_at,
        valid_until,
        UW,
        descriptors.into_iter().map(plain).collect(),
    )
}

/// One entry as the README writes it: descriptor bytes, flags byte, measured (0 = none).
pub(crate) type HandEntry = (Vec<u8>, u8, u64);

/// A body written by hand from the README table: version, issued_at, valid_until, set digest,
/// unmeasured weight, u32 count, then each entry as u16 length, descriptor bytes, flags byte and
/// u64 measured bandwidth, in the order given.
pub(crate) fn body_entries(
    set_digest: [u8; 32],
    issued_at: u64,
    valid_until: u64,
    unmeasured_weight: u64,
    entries: &[HandEntry],
) -> Vec<u8> {
    let mut out = vec![2u8];
    out.extend_from_slice(&issued_at.to_be_bytes());
    out.extend_from_slice(&valid_until.to_be_bytes());
    out.extend_from_slice(&set_digest);
    out.extend_from_slice(&unmeasured_weight.to_be_bytes());
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for (d, flags, measured) in entries {
        out.extend_from_slice(&(d.len() as u16).to_be_bytes());
        out.extend_from_slice(d);
        out.push(*flags);
        out.extend_from_slice(&measured.to_be_bytes());
    }
    out
}

/// [`body_entries`] with [`UW`] and every descriptor listed [`plain`] (flags 0, unmeasured).
pub(crate) fn body_bytes(
    set_digest: [u8; 32],
    issued_at: u64,
    valid_until: u64,
    descriptors: &[Vec<u8>],
) -> Vec<u8> {
    let entries: Vec<HandEntry> = descriptors.iter().map(|d| (d.clone(), 0, 0)).collect();
    body_entries(set_digest, issued_at, valid_until, UW, &entries)
}

/// A signature by `key` over `body` as the README says: domain, then BLAKE3 of the body.
pub(crate) fn sign_body(key: &SigningKey, body: &[u8]) -> [u8; 64] {
    let digest = blake3::hash(body);
    key.sign(&[SNAPSHOT_SIGNING_DOMAIN, digest.as_bytes()].concat())
        .to_bytes()
}

/// `body` followed by the given signatures, as the README says.
pub(crate) fn with_signatures(body: &[u8], signatures: &[RegistrySignature]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.push(signatures.len() as u8);
    for s in signatures {
        out.push(s.signer);
        out.extend_from_slice(&s.signature);
    }
    out
}

/// A hand-encoded snapshot of `descriptors` for `set` signed by the registries at `signers`
/// (indices into the set), with the given lifetime.
pub(crate) fn hand_signed(
    set: &RegistrySet,
    n: u8,
    signers: &[u8],
    issued_at: u64,
    valid_until: u64,
    descriptors: &[Vec<u8>],
) -> Vec<u8> {
    let body = body_bytes(set.digest(), issued_at, valid_until, descriptors);
    let keys = keys_in_index_order(set, n);
    let sigs: Vec<RegistrySignature> = signers
        .iter()
        .map(|&i| RegistrySignature {
            signer: i,
            signature: sign_body(&keys[usize::from(i)], &body),
        })
        .collect();
    with_signatures(&body, &sigs)
}

/// Decodes `bytes` and checks it at `now` against `set`.
pub(crate) fn verify_bytes(
    bytes: &[u8],
    set: &RegistrySet,
    now: u64,
) -> Result<braid_directory::VerifiedSnapshot, braid_directory::SnapshotError> {
    SignedSnapshot::decode(bytes)?.verify(set, now)
}
