//! Fuzzes the fragment reader: arbitrary bytes must read, verify and decode without panicking;
//! the first frame re-tagged with the right key must decode or fail with a non-Incomplete
//! error, and whatever decodes must encode back to exactly the same bytes.

#![no_main]

use braid_splitter::FragmentKey;
use braid_splitter::key::padded_hash;
use braid_splitter::wire::{self, RawFragment, TAG_LEN};
use libfuzzer_sys::fuzz_target;

const KEY: [u8; 32] = [0x5a; 32];

fuzz_target!(|data: &[u8]| {
    let key = FragmentKey::from_bytes(KEY);
    let mut rest = data;
    while let Ok((raw, next)) = RawFragment::read(rest) {
        let _ = (raw.stream_id(), raw.seq(), raw.flags());
        let _ = raw.verify(&key);
        rest = next;
    }
    let _ = wire::open(&key, data);

    let Ok((raw, _)) = RawFragment::read(data) else {
        return;
    };
    let mut frame = raw.as_bytes().to_vec();
    let body = frame.len() - TAG_LEN;
    let tag = padded_hash(&KEY, &frame[..body]);
    frame[body..].copy_from_slice(tag.as_bytes());
    match wire::open(&key, &frame) {
        Ok(fragment) => {
            let mut out = Vec::new();
            fragment
                .encode(&key, &mut out)
                .expect("a decoded fragment re-encodes");
            assert_eq!(out, frame, "round trip of {fragment:?}");
        }
        Err(e) => assert!(!e.is_incomplete(), "{e}"),
    }
});
