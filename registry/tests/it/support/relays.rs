//! Signed relay descriptors for the state and store tests: real keys, real signatures.

use braid_directory::{Descriptor, ExitPolicy, SignedDescriptor};
use ed25519_dalek::SigningKey;

pub(crate) const T0: u64 = 1_700_000_000;
#[cfg_attr(not(feature = "store"), allow(dead_code))] // only the `store` module uses it
pub(crate) const HOUR: u64 = 3600;
pub(crate) const DAY: u64 = 86_400;

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
        family: Vec::new(),
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
