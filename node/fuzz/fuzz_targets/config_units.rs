//! Fuzzes the config unit parser: sizes, rates and durations on arbitrary text must never
//! panic, and an accepted size written back as plain bytes parses to the same value.

#![no_main]

use braid_node::config::units::{parse_duration_secs, parse_rate, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = parse_size(text) {
        assert_eq!(parse_size(&format!("{v} B")), Ok(v));
        // Every size is a rate too.
        assert_eq!(parse_rate(text), Ok(v));
    }
    if let Ok(v) = parse_duration_secs(text) {
        assert_eq!(parse_duration_secs(&format!("{v} s")), Ok(v));
    }
    let _ = parse_rate(text);
});
