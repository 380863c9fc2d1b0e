//! Fuzzes the echo rules of a measurement circuit's last hop (`measure::Echo`): arbitrary
//! message sequences (each one a length byte, then that many bytes decoded as a relay message
//! area; undecodable ones are skipped) must never panic, never echo more than
//! `MEASURE_MAX_BYTES`, and only ever echo a `Data` unchanged on the stream it came on.

#![no_main]

use braid_relay::RelayMsg;
use braid_relay::measure::{EchoAction, Echo, MEASURE_MAX_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut echo = Echo::new();
    let mut rest = data;
    let mut echoed = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let take = usize::from(len).min(tail.len());
        let (area, next) = tail.split_at(take);
        rest = next;
        let Ok(msg) = RelayMsg::decode(area) else {
            continue;
        };
        let was_done = echo.is_done();
        match echo.on_message(msg.clone()) {
            EchoAction::Send(RelayMsg::Data { stream, data }) => {
                assert!(!was_done);
                assert_eq!(msg, RelayMsg::Data { stream, data: data.clone() });
                echoed += data.len() as u64;
            }
            EchoAction::Send(_) | EchoAction::Nothing | EchoAction::Violation => {}
        }
        assert_eq!(echo.echoed(), echoed);
        assert!(echo.echoed() <= MEASURE_MAX_BYTES);
    }
});
