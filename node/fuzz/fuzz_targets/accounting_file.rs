//! Fuzzes the relay's accounting file parser: arbitrary text must never panic, and a file it
//! accepts re-encodes to a text that parses to the same count.

#![no_main]

use braid_node::relay_node::accounting::SavedAccounting;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(saved) = SavedAccounting::decode(text) {
        assert_eq!(SavedAccounting::decode(&saved.encode()), Ok(saved));
    }
});
