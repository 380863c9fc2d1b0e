//! Fuzzes SOCKS4 and SOCKS4a requests on the SOCKS port: arbitrary bytes after the version
//! byte 4, in arbitrary chunkings, through `Handshake::handle`.
//!
//! Checks that it never panics, never consumes more than it was given or anything on
//! `NeedMore`/`Fail`, never asks to read past the request, never reads more than
//! `MAX_SOCKS4_REQUEST_LEN` bytes, and that the chunking does not change the outcome.

#![no_main]

use braid_router::socks5::{Action, Handshake, MAX_SOCKS4_REQUEST_LEN, Protocol};
use libfuzzer_sys::fuzz_target;

/// Feeds `data` the way the driver does (exactly `at_least` more bytes each time, or the
/// fuzzer's piece size when `follow_hints` is false) and describes the outcome.
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
                assert!(fed < MAX_SOCKS4_REQUEST_LEN, "read {fed} bytes");
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
                assert_eq!(request.protocol, Protocol::Socks4);
                return format!("Done({request:?}) len {consumed}");
            }
            Action::Fail { reply, error } => {
                assert_eq!(consumed, 0);
                return format!("Fail({reply:02x?}, {error:?})");
            }
            Action::Send(bytes) => panic!("SOCKS4 sends nothing before its reply: {bytes:02x?}"),
        }
    }
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (rest, cuts) = input;
    let mut data = vec![4u8];
    data.extend_from_slice(&rest);
    let whole = drive(&data, &[], false);
    let pieces = drive(&data, &cuts, false);
    let hinted = drive(&data, &[], true);
    // Feeding everything at once may complete where reading by hints stops at the same
    // point: the outcomes agree, and the hinted reader never consumed past the request.
    assert_eq!(whole, pieces);
    assert_eq!(whole, hinted);
});
