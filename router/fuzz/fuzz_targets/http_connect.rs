//! Fuzzes the HTTP CONNECT request parser (the `httparse` wrapper behind the proxy's
//! `http_listen` port): arbitrary bytes, fed whole, in arbitrary pieces, and by the read
//! hints the driver follows.
//!
//! Checks that it never panics, never consumes anything but a whole head, never asks to read
//! past the head or past `MAX_HEAD_LEN`, that a failure always carries a response, and that
//! the way the bytes arrive does not change the outcome.

#![no_main]

use braid_router::http_connect::{Handshake, MAX_HEAD_LEN};
use braid_router::socks5::{Action, Protocol};
use libfuzzer_sys::fuzz_target;

fn drive(data: &[u8], cuts: &[u8], follow_hints: bool) -> String {
    let mut hs = Handshake::new();
    let mut fed = 0;
    let mut cut = cuts.iter().cycle();
    loop {
        let (consumed, action) = hs.handle(&data[..fed]);
        assert!(consumed <= fed);
        match action {
            Action::NeedMore { at_least } => {
                assert!(at_least >= 1);
                assert_eq!(consumed, 0);
                assert!(fed + at_least <= MAX_HEAD_LEN, "hint past the limit");
                if fed == data.len() {
                    return format!("NeedMore after {fed}");
                }
                let piece = if follow_hints {
                    at_least
                } else {
                    match cut.next().copied().unwrap_or(0) {
                        0 => data.len() - fed,
                        n => usize::from(n),
                    }
                };
                fed = (fed + piece).min(data.len());
            }
            Action::Done(request) => {
                assert_eq!(request.protocol, Protocol::HttpConnect);
                assert!(consumed <= MAX_HEAD_LEN);
                return format!("Done({request:?}) len {consumed}");
            }
            Action::Fail { reply, error } => {
                assert_eq!(consumed, 0);
                let reply = reply.expect("every HTTP failure is answered");
                assert!(reply.starts_with(b"HTTP/1.1 4"), "{reply:02x?}");
                return format!("Fail({error:?})");
            }
            Action::Send(bytes) => panic!("HTTP CONNECT sends nothing before its reply: {bytes:02x?}"),
        }
    }
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, cuts) = input;
    let whole = drive(&data, &[], false);
    let pieces = drive(&data, &cuts, false);
    let hinted = drive(&data, &[], true);
    // The hinted reader stops at the head's end, as the whole-buffer parse does: bytes
    // after it never change the outcome.
    assert_eq!(whole, hinted);
    assert_eq!(whole, pieces);
});
