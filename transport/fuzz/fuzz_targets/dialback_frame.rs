//! Fuzzes the dial-back frame codec: `Frame::decode` on arbitrary bytes must never panic, and a
//! frame it accepts must re-encode to exactly the bytes it used (every encoding is canonical:
//! addresses keep their bytes, unknown kinds and verdicts are kept as values).
//!
//! Random bytes rarely carry a valid header with a matching length, so each input is also tried
//! as a body behind a valid header: the first byte picks the kind, the rest is the body (cut to
//! `MAX_BODY_LEN`). That must never panic either, and must be accepted or rejected as a whole.

#![no_main]

use braid_transport::dialback::wire::{Frame, HEADER_LEN, MAX_BODY_LEN, VERSION, WireError};
use libfuzzer_sys::fuzz_target;

fn check(wire: &[u8]) {
    match Frame::decode(wire) {
        Ok((frame, used)) => {
            assert!(used >= HEADER_LEN && used <= wire.len());
            assert!(used - HEADER_LEN <= MAX_BODY_LEN);
            assert_eq!(frame.encode(), &wire[..used]);
            assert_eq!(Frame::decode(&wire[..used]), Ok((frame, used)));
        }
        Err(WireError::Incomplete { needed }) => {
            assert!(needed >= 1);
            assert!(wire.len() < HEADER_LEN + MAX_BODY_LEN);
        }
        Err(_) => {}
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);

    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let body = &body[..body.len().min(MAX_BODY_LEN)];
    let len = u16::try_from(body.len()).expect("MAX_BODY_LEN fits a u16");
    let mut wire = vec![VERSION, kind % 4];
    wire.extend_from_slice(&len.to_be_bytes());
    wire.extend_from_slice(body);
    assert!(!matches!(
        Frame::decode(&wire),
        Err(WireError::Incomplete { .. } | WireError::BadVersion(_) | WireError::Oversized { .. })
    ));
    check(&wire);
});
