//! Fuzzes the SOCKS5 server handshake: arbitrary client bytes in arbitrary chunkings.
//!
//! Checks that `Handshake::handle` never panics, never reports consuming more than it was given,
//! always asks for at least one byte when it needs more, and that the chunking does not change
//! the outcome: the actions for the bytes fed all at once equal those for the bytes fed in the
//! fuzzer-chosen pieces.

#![no_main]

use braid_router::socks5::{Action, Handshake};
use libfuzzer_sys::fuzz_target;

/// Feeds `data` in pieces whose sizes come from `cuts` (cycled; 0 means "the rest") and returns
/// a description of each action other than `NeedMore`, plus the final one.
fn drive(data: &[u8], cuts: &[u8]) -> Vec<String> {
    let mut hs = Handshake::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut fed = 0;
    let mut cut = cuts.iter().cycle();
    let mut out = Vec::new();
    loop {
        let (consumed, action) = hs.handle(&buf);
        assert!(
            consumed <= buf.len(),
            "consumed {consumed} of {}",
            buf.len()
        );
        buf.drain(..consumed);
        match action {
            Action::NeedMore { at_least } => {
                assert!(at_least >= 1);
                assert_eq!(consumed, 0);
                if fed == data.len() {
                    out.push(format!("NeedMore({at_least}) with {} buffered", buf.len()));
                    return out;
                }
                let piece = match cut.next().copied().unwrap_or(0) {
                    0 => data.len() - fed,
                    n => usize::from(n).min(data.len() - fed),
                };
                buf.extend_from_slice(&data[fed..fed + piece]);
                fed += piece;
            }
            Action::Send(bytes) => {
                assert!(consumed > 0);
                out.push(format!("Send({bytes:02x?})"));
            }
            Action::Done(request) => {
                assert!(consumed > 0);
                out.push(format!(
                    "Done({request:?}) rest {}",
                    data.len() - fed + buf.len()
                ));
                return out;
            }
            Action::Fail { reply, error } => {
                assert_eq!(consumed, 0);
                out.push(format!("Fail({reply:02x?}, {error:?})"));
                return out;
            }
        }
    }
}

fuzz_target!(|input: (Vec<u8>, Vec<u8>)| {
    let (data, cuts) = input;
    let whole = drive(&data, &[]);
    let pieces = drive(&data, &cuts);
    let bytewise = drive(&data, &[1]);
    assert_eq!(whole, pieces);
    assert_eq!(whole, bytewise);
});
