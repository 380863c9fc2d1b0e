//! The `/braid/raft/1` codecs on arbitrary bytes: `Frame::decode` never panics, what it accepts
//! re-encodes to exactly the bytes it used, and a Request or Response body that decodes as a
//! message survives an encode/decode round trip.
#![no_main]

use braid_registry::raft::frame::Frame;
use braid_registry::raft::wire::{self, RpcRequest, RpcResponse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((frame, used)) = Frame::decode(data, 1 << 20) else {
        return;
    };
    assert_eq!(frame.encode(), &data[..used]);
    match &frame {
        Frame::Request(body) => {
            if let Ok(request) = wire::decode::<RpcRequest>(body) {
                let again = wire::encode(&request).expect("encode");
                let back: RpcRequest = wire::decode(&again).expect("round trip");
                assert_eq!(format!("{back:?}"), format!("{request:?}"));
            }
        }
        Frame::Response(body) => {
            if let Ok(response) = wire::decode::<RpcResponse>(body) {
                let again = wire::encode(&response).expect("encode");
                let back: RpcResponse = wire::decode(&again).expect("round trip");
                assert_eq!(format!("{back:?}"), format!("{response:?}"));
            }
        }
        _ => {}
    }
});
