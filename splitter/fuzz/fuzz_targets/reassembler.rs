//! Fuzzes the receiver: a stream of arbitrary fragments (most re-tagged with the right key so
//! they get past verification) must never panic, never buffer past the configured bounds, and
//! only ever deliver bytes that some accepted fragment carried.

#![no_main]

use std::num::NonZeroU32;

use braid_splitter::wire::{RawFragment, TAG_LEN};
use braid_splitter::{Config, FragmentKey, Receiver, StrandId, StreamId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key_bytes = [0x33; 32];
    let key = FragmentKey::from_bytes(key_bytes);
    let config = Config {
        window_bytes: NonZeroU32::new(8192).expect("non-zero"),
        window_fragments: NonZeroU32::new(32).expect("non-zero"),
        ..Config::default()
    };
    let mut receiver = Receiver::new(&config, StreamId(1), key).expect("valid config");
    let mut out = Vec::new();
    // Input: a sequence of [control u8][frame...]; bit 0 of control: re-tag the frame.
    let mut rest = data;
    while let Some((&control, tail)) = rest.split_first() {
        let (mut frame, next) = match RawFragment::read(tail) {
            Ok((raw, next)) => (raw.as_bytes().to_vec(), next),
            Err(_) => (tail.to_vec(), &[][..]),
        };
        rest = next;
        if control & 1 == 1 && frame.len() >= TAG_LEN + 16 {
            let body = frame.len() - TAG_LEN;
            let tag = braid_splitter::key::padded_hash(&key_bytes, &frame[..body]);
            frame[body..].copy_from_slice(tag.as_bytes());
        }
        let strand = StrandId(u32::from(control >> 1));
        match receiver.on_fragment(strand, &frame, &mut out) {
            Ok(_) => {}
            Err(_) => return, // the caller would cut the peer off
        }
        assert!(receiver.buffered_bytes() <= 8192);
        assert!(out.len() <= data.len(), "delivered more than was received");
    }
});
