//! `SignedSnapshot::decode` then `verify` on arbitrary bytes: never panics; whatever decodes
//! re-encodes to exactly the input; whatever verifies has a majority of distinct signers,
//! sorted, distinct, fresh descriptors, weights no higher than the claim and the registries' cap,
//! Exit flags only on exit policies, and `accept_newer` agrees with `verify`.
//!
//! The registry set is fixed (seeds 0xA0, 0xA1, 0xA2, as in the tests), so seeds from
//! `tests/snapshot_*.rs` (written by `cargo test -p braid-directory --test snapshot_codec
//! write_fuzz_seeds -- --ignored` with `BRAID_FUZZ_SEEDS` set) verify and get mutated from there.
#![no_main]

use std::sync::OnceLock;

use braid_directory::{RegistrySet, SignedSnapshot, accept_newer};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

/// The time every input is checked at: T0 of the tests plus one minute.
const NOW: u64 = 1_700_000_060;

fn set() -> &'static RegistrySet {
    static SET: OnceLock<RegistrySet> = OnceLock::new();
    SET.get_or_init(|| {
        let keys: Vec<[u8; 32]> = (0..3u8)
            .map(|i| {
                SigningKey::from_bytes(&[0xA0 + i; 32])
                    .verifying_key()
                    .to_bytes()
            })
            .collect();
        RegistrySet::new(&keys).expect("three distinct valid keys")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = SignedSnapshot::decode(data) else {
        return;
    };
    assert_eq!(signed.encode(), data);
    let verified = signed.verify(set(), NOW);
    assert_eq!(accept_newer(None, data, set(), NOW), verified);
    if let Ok(v) = verified {
        assert!(v.signers().len() >= set().threshold());
        assert!(v.signers().windows(2).all(|w| w[0] < w[1]));
        assert!(
            v.descriptors()
                .windows(2)
                .all(|w| w[0].identity() < w[1].identity())
        );
        assert!(v.descriptors().iter().all(|d| d.check_fresh(NOW).is_ok()));
        assert!(v.unmeasured_weight() >= 1);
        for r in v.relays() {
            let claim = r.descriptor.descriptor().bandwidth;
            let cap = r.measured_bw.unwrap_or(v.unmeasured_weight());
            // No relay weighs more than it claims or than the registries allow.
            assert_eq!(r.weight(), claim.min(cap));
            assert!(r.weight() >= 1);
            assert!(r.measured_bw != Some(0));
            assert!(!r.flags.is_exit() || r.descriptor.descriptor().is_exit());
        }
        assert_eq!(v.to_directory().relays(), v.relays());
        assert_eq!(v.to_directory().len(), signed.descriptor_count());
    }
});
