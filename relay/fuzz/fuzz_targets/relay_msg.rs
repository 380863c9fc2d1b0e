//! Fuzzes the end-to-end relay message codec: `RelayMsg::decode` on arbitrary bytes must never
//! panic; a message it accepts must re-encode into a buffer of the same length and decode to the
//! same message. Known commands have one encoding, so their re-encoding equals the input.

#![no_main]

use braid_relay::RelayMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = RelayMsg::decode(data) else {
        return;
    };
    let mut buf = vec![0xa5; data.len()];
    msg.encode_into(&mut buf)
        .expect("a decoded message fits the space it came from");
    assert_eq!(RelayMsg::decode(&buf).as_ref(), Ok(&msg));
    if !matches!(msg, RelayMsg::Unknown { .. }) {
        // Unknown commands drop their data; every known one is canonical.
        assert_eq!(buf, data);
    }
});
