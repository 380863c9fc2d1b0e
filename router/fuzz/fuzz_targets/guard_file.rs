//! Fuzzes the guard file parser: arbitrary bytes as a saved guard state.
//!
//! Checks that `Guards::decode` never panics, and that whatever it accepts encodes back to the
//! same bytes (the format has one encoding per state) and decodes again to the same guards.

#![no_main]

use braid_router::guards::{GuardSettings, Guards};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(guards) = Guards::decode(GuardSettings::default(), data) {
        let bytes = guards.encode();
        assert_eq!(bytes, data, "accepted bytes must re-encode identically");
        let again = Guards::decode(GuardSettings::default(), &bytes).expect("re-decode");
        assert_eq!(again.sampled(), guards.sampled());
        assert_eq!(again.primary(), guards.primary());
    }
});
