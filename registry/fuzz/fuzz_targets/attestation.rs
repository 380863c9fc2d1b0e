//! Registry attestations on arbitrary bytes: `SignedAttestation::decode` never panics, what it
//! accepts re-encodes to exactly the input and names at most the limit of sorted, distinct
//! relays; and the vote rules never panic on what it yields.
#![no_main]

use braid_registry::state::votes::{attested_clock, median_bandwidth};
use braid_registry::state::{MAX_ATTESTED_RELAYS, SignedAttestation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedAttestation::decode(data) {
        assert_eq!(signed.encode(), data);
        let a = signed.attestation();
        assert!(a.relays.len() <= MAX_ATTESTED_RELAYS);
        assert!(a.relays.windows(2).all(|w| w[0].relay < w[1].relay));
    }
    // The rules on arbitrary clocks and measurements.
    let values: Vec<u64> = data
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or([0; 8])))
        .collect();
    for n in 1..=9 {
        let clock = attested_clock(&values, n);
        assert!(
            values.is_empty()
                || values.iter().filter(|v| **v >= clock).count() >= n / 2 + 1
                || clock == 0
        );
        if let Some(bw) = median_bandwidth(&values, n) {
            assert!(values.contains(&bw));
        }
    }
});
