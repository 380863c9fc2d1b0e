//! The directory snapshot file: round trip, format, and every reject path.

use crate::support::{T0, relay as signed};
use braid_directory::directory::{MAX_DIRECTORY_ENTRIES, MAX_DIRECTORY_TEXT_LEN};
use braid_directory::{Directory, Error, SignedDescriptor};

/// When the test descriptors were published (`support::relay` publishes at `T0`).
const PUBLISHED: u64 = T0;

fn text_of(entries: &[String]) -> String {
    let quoted: Vec<String> = entries.iter().map(|e| format!("{e:?}")).collect();
    format!(r#"{{"version":1,"descriptors":[{}]}}"#, quoted.join(","))
}

fn hex_of(d: &SignedDescriptor) -> String {
    hex::encode(d.encode())
}

#[test]
fn round_trips_through_text() {
    let dir = Directory::new(vec![signed(1, 3600), signed(2, 7200), signed(3, 86_400)]).unwrap();
    let text = dir.to_text();
    assert_eq!(Directory::from_text(&text).unwrap(), dir);
    // The text is the documented JSON shape.
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["version"], 1);
    let entries = json["descriptors"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[1], hex_of(dir.descriptors()[1]));
    assert!(text.ends_with("]\n}\n"));
}

#[test]
fn exact_text_of_a_small_directory() {
    let d = signed(1, 3600);
    let dir = Directory::new(vec![d.clone()]).unwrap();
    assert_eq!(
        dir.to_text(),
        format!(
            "{{\n  \"version\": 1,\n  \"descriptors\": [\n    \"{}\"\n  ]\n}}\n",
            hex_of(&d)
        )
    );
    assert_eq!(
        Directory::default().to_text(),
        "{\n  \"version\": 1,\n  \"descriptors\": []\n}\n"
    );
}

#[test]
fn compact_json_and_uppercase_hex_are_accepted() {
    let d = signed(4, 3600);
    assert_eq!(
        Directory::from_text(&text_of(&[hex_of(&d)]))
            .unwrap()
            .descriptors(),
        vec![&d]
    );
    assert_eq!(
        Directory::from_text(&text_of(&[hex_of(&d).to_uppercase()]))
            .unwrap()
            .descriptors(),
        vec![&d]
    );
    assert_eq!(
        Directory::from_text(&text_of(&[])).unwrap(),
        Directory::default()
    );
}

fn format_error(text: &str) -> String {
    match Directory::from_text(text) {
        Err(Error::DirectoryFormat(msg)) => msg,
        other => panic!("expected DirectoryFormat, got {other:?}"),
    }
}

#[test]
fn file_level_errors() {
    assert_eq!(format_error(""), "expected a JSON object");
    assert_eq!(format_error("[1, []]"), "expected a JSON object");
    assert_eq!(format_error(" 1"), "expected a JSON object");
    assert!(format_error("{").contains("EOF"));
    assert!(format_error(r#"{"version":1}"#).contains("missing field `descriptors`"));
    assert!(format_error(r#"{"descriptors":[]}"#).contains("missing field `version`"));
    assert!(
        format_error(r#"{"version":1,"descriptors":[],"extra":0}"#)
            .contains("unknown field `extra`")
    );
    assert!(format_error(r#"{"version":"1","descriptors":[]}"#).contains("invalid type"));
    assert!(format_error(r#"{"version":1,"descriptors":[1]}"#).contains("invalid type"));
    assert_eq!(
        format_error(r#"{"version":2,"descriptors":[]}"#),
        "unsupported version 2 (expected 1)"
    );
    assert_eq!(
        format_error(r#"{"version":0,"descriptors":[]}"#),
        "unsupported version 0 (expected 1)"
    );
    assert!(format_error(r#"{"version":1,"descriptors":[]} x"#).contains("trailing characters"));
}

#[test]
fn bad_entries_are_named_by_index() {
    let good = [hex_of(&signed(1, 3600)), hex_of(&signed(2, 3600))];
    let entry =
        |bad: String| Directory::from_text(&text_of(&[good[0].clone(), good[1].clone(), bad]));
    let mut forged = signed(3, 3600).encode();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(
        entry(hex::encode(&forged)),
        Err(Error::DirectoryEntry {
            index: 2,
            error: Box::new(Error::BadSignature)
        })
    );
    let not_hex = Error::Malformed {
        what: "directory entry is not hex",
    };
    assert_eq!(
        entry("zz".into()),
        Err(Error::DirectoryEntry {
            index: 2,
            error: Box::new(not_hex.clone())
        })
    );
    assert_eq!(
        entry("abc".into()),
        Err(Error::DirectoryEntry {
            index: 2,
            error: Box::new(not_hex)
        })
    );
    assert_eq!(
        entry(String::new()),
        Err(Error::DirectoryEntry {
            index: 2,
            error: Box::new(Error::Incomplete)
        })
    );
    let short = hex::encode(&forged[..100]);
    assert_eq!(
        entry(short),
        Err(Error::DirectoryEntry {
            index: 2,
            error: Box::new(Error::Incomplete)
        })
    );
    // The message names the entry.
    let msg = entry("zz".into()).unwrap_err().to_string();
    assert_eq!(
        msg,
        "directory entry 2: malformed descriptor: directory entry is not hex"
    );
}

#[test]
fn duplicate_identities_are_rejected() {
    let a = signed(1, 3600);
    let a_later = signed(1, 7200); // same relay, another descriptor
    let b = signed(2, 3600);
    let text = text_of(&[hex_of(&a), hex_of(&b), hex_of(&a_later)]);
    assert_eq!(
        Directory::from_text(&text),
        Err(Error::DuplicateIdentity { index: 2, first: 0 })
    );
    assert_eq!(
        Directory::new(vec![b.clone(), a.clone(), a]),
        Err(Error::DuplicateIdentity { index: 2, first: 1 })
    );
}

#[test]
fn entry_count_limit() {
    // MAX entries passes the count check and fails only on the (empty) first entry...
    let at_limit = text_of(&vec![String::new(); MAX_DIRECTORY_ENTRIES]);
    assert_eq!(
        Directory::from_text(&at_limit),
        Err(Error::DirectoryEntry {
            index: 0,
            error: Box::new(Error::Incomplete)
        })
    );
    // ...one more is refused as a whole.
    let over = text_of(&vec![String::new(); MAX_DIRECTORY_ENTRIES + 1]);
    assert_eq!(
        format_error(&over),
        "10001 descriptors, more than the limit of 10000"
    );
    let d = signed(1, 3600);
    assert!(matches!(
        Directory::new(vec![d; MAX_DIRECTORY_ENTRIES + 1]),
        Err(Error::DirectoryFormat(msg)) if msg.contains("10001 descriptors")
    ));
}

#[test]
fn text_length_limit() {
    let mut text = text_of(&[]);
    text.push_str(&" ".repeat(MAX_DIRECTORY_TEXT_LEN - text.len()));
    assert_eq!(Directory::from_text(&text), Ok(Directory::default()));
    text.push(' ');
    assert!(format_error(&text).contains("more than the limit"));
}

#[test]
fn fresh_filters_by_time() {
    let dir = Directory::new(vec![signed(1, 100), signed(2, 1000), signed(3, 10)]).unwrap();
    let seeds = |now| {
        dir.fresh(now)
            .iter()
            .map(|d| d.descriptor().onion_key[0])
            .collect::<Vec<_>>()
    };
    assert_eq!(seeds(PUBLISHED), [1, 2, 3]);
    assert_eq!(seeds(PUBLISHED + 10), [1, 2]);
    assert_eq!(seeds(PUBLISHED + 100), [2]);
    assert_eq!(seeds(PUBLISHED + 1000), Vec::<u8>::new());
    assert_eq!(seeds(PUBLISHED - 300), [1, 2, 3]);
    assert_eq!(seeds(PUBLISHED - 301), Vec::<u8>::new()); // not yet valid
}
