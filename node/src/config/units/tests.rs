//! Vectors for the unit parser and its serde helpers.

use serde::Deserialize;

use super::*;

#[test]
fn sizes() {
    for (text, want) in [
        ("0", 0),
        ("4096", 4096),
        ("10 B", 10),
        ("10B", 10),
        ("500 kB", 500_000),
        ("500 KB", 500_000),
        ("10 MB", 10_000_000),
        ("10mb", 10_000_000),
        ("200 GB", 200_000_000_000),
        ("2 TB", 2_000_000_000_000),
        ("1 KiB", 1024),
        ("1.5 GiB", 1_610_612_736),
        ("4 MiB", 4 * 1024 * 1024),
        ("1 TiB", 1 << 40),
        ("  2.5 kB ", 2500),
        ("0.1 kB", 100),
        ("1.0005 kB", 1000),
        ("7 bytes", 7),
    ] {
        assert_eq!(parse_size(text), Ok(want), "{text:?}");
    }
}

#[test]
fn rates() {
    assert_eq!(parse_rate("2 MB/s"), Ok(2_000_000));
    assert_eq!(parse_rate("2 MB"), Ok(2_000_000));
    assert_eq!(parse_rate("512 KiB/s"), Ok(512 * 1024));
    assert_eq!(parse_rate("1000000"), Ok(1_000_000));
    let e = parse_rate("2 Mbit/s").unwrap_err();
    assert!(
        e.contains("\"2 Mbit/s\"") && e.contains("unknown unit"),
        "{e}"
    );
}

#[test]
fn durations() {
    for (text, want) in [
        ("90", 90),
        ("90 s", 90),
        ("90s", 90),
        ("30 min", 1800),
        ("1.5 min", 90),
        ("2 h", 7200),
        ("2 hours", 7200),
        ("7 days", 604_800),
        ("1 day", 86_400),
        ("1 week", 604_800),
        ("10 seconds", 10),
    ] {
        assert_eq!(parse_duration_secs(text), Ok(want), "{text:?}");
    }
}

#[test]
fn bad_values_are_named() {
    for (text, why) in [
        ("", "expected a number"),
        ("MB", "expected a number"),
        ("-1 MB", "expected a number"),
        ("10 XB", "unknown unit \"XB\""),
        ("10 MB/s", "unknown unit"),
        ("1..5 MB", "not a number"),
        ("1. MB", "not a number"),
        (".5 MB", "not a number"),
        ("1.0000000001 MB", "digits after the point"),
        ("99999999999999999999 B", "too large"),
        ("20000000 TB", "too large"),
        ("1 2 MB", "unknown unit"),
    ] {
        let e = parse_size(text).unwrap_err();
        assert!(e.contains(why), "{text:?}: {e}");
        assert!(e.contains(&format!("{text:?}")), "{text:?}: {e}");
    }
    let e = parse_duration_secs("30 lightyears").unwrap_err();
    assert!(e.contains("invalid duration \"30 lightyears\""), "{e}");
    assert!(parse_duration_secs("1000000000000000 weeks").is_err());
}

#[derive(Debug, Deserialize)]
struct T {
    #[serde(deserialize_with = "size")]
    size: u64,
    #[serde(default, deserialize_with = "opt_rate")]
    rate: Option<u64>,
    #[serde(deserialize_with = "secs")]
    every_secs: u64,
}

#[test]
fn serde_takes_integers_and_strings_and_names_the_key() {
    let t: T = toml::from_str("size = 4096\nevery_secs = 60").unwrap();
    assert_eq!((t.size, t.rate, t.every_secs), (4096, None, 60));
    let t: T = toml::from_str("size = \"1 GiB\"\nrate = \"1 MB/s\"\nevery_secs = \"2 h\"").unwrap();
    assert_eq!(
        (t.size, t.rate, t.every_secs),
        (1 << 30, Some(1_000_000), 7200)
    );
    let e = toml::from_str::<T>("size = \"1 GiB\"\nevery_secs = \"2 fortnights\"")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("every_secs") && e.contains("2 fortnights"),
        "{e}"
    );
    let e = toml::from_str::<T>("size = -5\nevery_secs = 1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("negative"), "{e}");
    let e = toml::from_str::<T>("size = 1.5\nevery_secs = 1")
        .unwrap_err()
        .to_string();
    assert!(e.contains("string with a unit"), "{e}");
}
