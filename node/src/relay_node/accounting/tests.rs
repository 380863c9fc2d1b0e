//! The accounting file: round trip, rejects, corrupt files moved aside, the log formatting.

use super::*;

fn state(used: u64) -> AccountingState {
    AccountingState {
        used_bytes: used,
        limit_bytes: 200_000_000_000,
        period_end_unix: 1_798_761_600,
        hibernating: false,
        period_start_unix: 1_796_083_200,
    }
}

#[test]
fn round_trips_through_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(load(dir.path()), None);
    save(dir.path(), &state(41_234_567_890)).expect("save");
    assert_eq!(
        load(dir.path()),
        Some(SavedAccounting {
            version: 1,
            period_start: 1_796_083_200,
            used: 41_234_567_890,
        })
    );
    assert!(!dir.path().join("accounting.tmp").exists());
}

#[test]
fn the_text_format_is_fixed() {
    let s = SavedAccounting {
        version: 1,
        period_start: 5,
        used: 7,
    };
    let text = s.encode();
    assert!(
        text.ends_with("version = 1\nperiod_start = 5\nused = 7\n"),
        "{text}"
    );
    assert_eq!(SavedAccounting::decode(&text), Ok(s));
}

#[test]
fn bad_files_are_rejected_with_a_reason() {
    for (text, why) in [
        ("version = 2\nperiod_start = 1\nused = 1\n", "version 2"),
        ("version = 1\nperiod_start = 1\n", "used"),
        ("version = 1\nperiod_start = 1\nused = -1\n", ""),
        (
            "version = 1\nperiod_start = 1\nused = 1\nextra = 1\n",
            "extra",
        ),
        ("garbage", ""),
        ("", "version"),
    ] {
        let e = SavedAccounting::decode(text).unwrap_err();
        assert!(e.contains(why), "{text:?}: {e}");
    }
    assert!(SavedAccounting::decode(&"#".repeat(5000)).is_err());
}

#[test]
fn a_corrupt_file_is_moved_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join(ACCOUNTING_FILE), b"\xff\xfe not toml").expect("write");
    assert_eq!(load(dir.path()), None);
    assert!(!dir.path().join(ACCOUNTING_FILE).exists());
    assert!(dir.path().join(ACCOUNTING_CORRUPT_FILE).exists());
}

#[test]
fn human_numbers() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(999), "999 B");
    assert_eq!(human_bytes(41_234_567_890), "41.2 GB");
    assert_eq!(human_bytes(200_000_000_000), "200 GB");
    assert_eq!(human_bytes(1_500_000), "1.5 MB");
    assert_eq!(human_bytes(u64::MAX), "18.4 EB");
    assert_eq!(utc_date(1_798_761_600), "2027-01-01");
    assert_eq!(utc_date(0), "1970-01-01");
}
