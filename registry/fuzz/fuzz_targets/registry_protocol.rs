//! The `/braid/registry/1` codec on arbitrary bytes: `decode_header`, `Request::decode` and
//! `Response::decode` never panic; whatever decodes re-encodes to exactly the input (the codec
//! is canonical) and agrees with its header; every strict prefix of a decodable frame is
//! `Incomplete` (checked for short inputs, to keep runs fast).
#![no_main]

use braid_registry::protocol::{HEADER_LEN, ProtocolError, Request, Response, decode_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = decode_header(data);
    let request = Request::decode(data);
    let response = Response::decode(data);
    if let Ok(request) = &request {
        assert_eq!(request.encode(), data);
        assert!(response.is_err());
    }
    if let Ok(response) = &response {
        assert_eq!(response.encode(), data);
    }
    if request.is_ok() || response.is_ok() {
        let header = header.expect("a decodable frame has a valid header");
        assert_eq!(header.body_len + HEADER_LEN, data.len());
        if data.len() <= 512 {
            for cut in 0..data.len() {
                let prefix = &data[..cut];
                let result = if request.is_ok() {
                    Request::decode(prefix).err()
                } else {
                    Response::decode(prefix).err()
                };
                assert!(
                    matches!(result, Some(ProtocolError::Incomplete { .. })),
                    "prefix {cut}: {result:?}"
                );
            }
        }
    }
});
