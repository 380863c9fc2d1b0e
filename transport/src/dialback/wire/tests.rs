//! Round trips, hex vectors, prefixes and every reject path of the dial-back codec.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use super::*;

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn request() -> Frame {
    Frame::Request(
        Request::new(vec![
            addr("/ip4/198.51.100.7/udp/9401/quic-v1"),
            addr("/ip4/198.51.100.7/tcp/9401"),
        ])
        .unwrap(),
    )
}

fn response() -> Frame {
    Frame::Response(
        Response::new(vec![
            Verdict::Reachable,
            Verdict::Unreachable(Reason::new("timeout")),
            Verdict::Refused(Reason::new("ip")),
        ])
        .unwrap(),
    )
}

const REQUEST_HEX: &str = "01010018 02 000b 04c6336407 9102 24b9 cd03 0008 04c6336407 06 24b9";
const RESPONSE_HEX: &str = "010200130300000001000774696d656f7574020002 6970";
const ERROR_HEX: &str = "010300050003626164";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn decode_err(bytes: &[u8]) -> WireError {
    Frame::decode(bytes).expect_err("must be rejected")
}

/// A frame with this kind and body (the length filled in).
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![VERSION, kind];
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[test]
fn hex_vectors() {
    let cases = [
        (request(), REQUEST_HEX),
        (response(), RESPONSE_HEX),
        (Frame::Error(Reason::new("bad")), ERROR_HEX),
    ];
    for (frame, hex) in cases {
        let wire = unhex(hex);
        assert_eq!(frame.encode(), wire, "{frame:?}");
        assert_eq!(Frame::decode(&wire).unwrap(), (frame, wire.len()));
    }
}

#[test]
fn round_trips_leave_following_bytes_alone() {
    let frames = [
        request(),
        response(),
        Frame::Response(Response::new(Vec::new()).unwrap()),
        Frame::Error(Reason::new("")),
        Frame::Request(
            Request::new(vec![
                addr("/ip6/2001:db8::1/udp/1/quic-v1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA");
                MAX_ADDRESSES
            ])
            .unwrap(),
        ),
        Frame::Response(
            Response::new(vec![
                Verdict::Unreachable(Reason::new("x".repeat(MAX_REASON_LEN)));
                MAX_ADDRESSES
            ])
            .unwrap(),
        ),
    ];
    for frame in frames {
        let mut wire = frame.encode();
        let len = wire.len();
        assert!(len - HEADER_LEN <= MAX_BODY_LEN);
        wire.extend_from_slice(&[VERSION, 0xff]);
        assert_eq!(Frame::decode(&wire).unwrap(), (frame, len));
    }
}

#[test]
fn every_strict_prefix_is_incomplete() {
    for hex in [REQUEST_HEX, RESPONSE_HEX, ERROR_HEX] {
        let wire = unhex(hex);
        for n in 0..wire.len() {
            match Frame::decode(&wire[..n]) {
                Err(WireError::Incomplete { needed }) => {
                    assert!(needed >= 1 && n + needed <= wire.len(), "{hex} at {n}");
                }
                other => panic!("{hex} prefix {n}: {other:?}"),
            }
        }
    }
}

#[test]
fn header_rejects() {
    assert_eq!(decode_err(&[2]), WireError::BadVersion(2));
    assert_eq!(decode_err(&[0, 1, 0, 0]), WireError::BadVersion(0));
    let len = u16::try_from(MAX_BODY_LEN + 1).unwrap().to_be_bytes();
    assert_eq!(
        decode_err(&[VERSION, 1, len[0], len[1]]),
        WireError::Oversized {
            len: MAX_BODY_LEN + 1,
            max: MAX_BODY_LEN
        }
    );
    assert_eq!(
        body_len(&[VERSION, 1, 0xff, 0xff]),
        Err(WireError::Oversized {
            len: 0xffff,
            max: MAX_BODY_LEN
        })
    );
    assert_eq!(body_len(&[VERSION, 9, 0, 7]), Ok(7));
}

#[test]
fn request_rejects() {
    let count = |count: usize| WireError::Count {
        what: "request addresses",
        count,
        min: 1,
        max: MAX_ADDRESSES,
    };
    assert_eq!(decode_err(&frame(1, &[0])), count(0));
    assert_eq!(decode_err(&frame(1, &[9])), count(9));
    assert_eq!(
        decode_err(&frame(1, &[])),
        WireError::Malformed {
            what: "request address count"
        }
    );
    assert_eq!(
        decode_err(&frame(1, &[1, 0, 0])),
        WireError::AddressLength {
            index: 0,
            len: 0,
            max: MAX_ADDRESS_LEN
        }
    );
    let mut long = vec![1, 0x01, 0x01];
    long.extend_from_slice(&[4; 257]);
    assert_eq!(
        decode_err(&frame(1, &long)),
        WireError::AddressLength {
            index: 0,
            len: 257,
            max: MAX_ADDRESS_LEN
        }
    );
    // Protocol code 0x7f is not a multiaddr protocol.
    assert!(matches!(
        decode_err(&frame(1, &[1, 0, 2, 0x7f, 0])),
        WireError::BadAddress { index: 0, .. }
    ));
    // An ip4 address cut short inside its own encoding.
    assert!(matches!(
        decode_err(&frame(1, &[1, 0, 3, 4, 1, 2])),
        WireError::BadAddress { index: 0, .. }
    ));
    // Two announced, one present.
    assert_eq!(
        decode_err(&frame(1, &[2, 0, 5, 4, 1, 2, 3, 4])),
        WireError::Malformed {
            what: "request address"
        }
    );
    // A length running past the body.
    assert_eq!(
        decode_err(&frame(1, &[1, 0, 9, 4, 1, 2, 3, 4])),
        WireError::Malformed {
            what: "request address"
        }
    );
    assert_eq!(
        decode_err(&frame(1, &[1, 0, 5, 4, 1, 2, 3, 4, 0])),
        WireError::Malformed {
            what: "trailing bytes in the body"
        }
    );
    assert_eq!(Request::new(Vec::new()), Err(count(0)));
    assert_eq!(
        Request::new(vec![addr("/ip4/1.2.3.4/tcp/1"); 9]),
        Err(count(9))
    );
    let huge = format!("/dns/{}/tcp/1", "a".repeat(300));
    assert!(matches!(
        Request::new(vec![addr("/ip4/1.2.3.4/tcp/1"), addr(&huge)]),
        Err(WireError::AddressLength { index: 1, .. })
    ));
}

#[test]
fn response_and_error_rejects() {
    assert_eq!(
        decode_err(&frame(2, &[9])),
        WireError::Count {
            what: "response verdicts",
            count: 9,
            min: 0,
            max: MAX_ADDRESSES
        }
    );
    assert_eq!(
        decode_err(&frame(2, &[1, 0, 0, 1, b'x'])),
        WireError::Malformed {
            what: "a Reachable verdict with a reason"
        }
    );
    assert_eq!(
        decode_err(&frame(2, &[1, 1, 0, 1, 0xff])),
        WireError::Malformed {
            what: "reason is not UTF-8"
        }
    );
    let mut long = vec![0x01, 0x01];
    long.extend_from_slice(&[b'x'; 257]);
    assert_eq!(
        decode_err(&frame(3, &long)),
        WireError::Malformed {
            what: "reason longer than 256 bytes"
        }
    );
    assert_eq!(
        decode_err(&frame(2, &[1, 1, 0])),
        WireError::Malformed {
            what: "verdict reason"
        }
    );
    assert_eq!(
        decode_err(&frame(3, &[0, 1, b'x', 0])),
        WireError::Malformed {
            what: "trailing bytes in the body"
        }
    );
    assert!(matches!(
        Response::new(vec![Verdict::Reachable; 9]),
        Err(WireError::Count { count: 9, .. })
    ));
}

#[test]
fn unknown_values_are_kept() {
    let wire = frame(2, &[1, 7, 0, 2, b'h', b'i']);
    let (decoded, _) = Frame::decode(&wire).unwrap();
    assert_eq!(
        decoded,
        Frame::Response(
            Response::new(vec![Verdict::Unknown {
                code: 7,
                reason: Reason::new("hi")
            }])
            .unwrap()
        )
    );
    assert_eq!(decoded.encode(), wire);
    let wire = frame(0x42, b"future");
    let (decoded, used) = Frame::decode(&wire).unwrap();
    let Frame::Unknown(unknown) = &decoded else {
        panic!("{decoded:?}")
    };
    assert_eq!(
        (unknown.kind(), unknown.body(), used),
        (0x42, &b"future"[..], wire.len())
    );
    assert_eq!(decoded.encode(), wire);
}

#[test]
fn reasons_are_cut_at_a_character_boundary() {
    let text = "é".repeat(200); // 400 bytes
    let reason = Reason::new(text);
    assert_eq!(reason.as_str().len(), MAX_REASON_LEN);
    assert!(reason.as_str().chars().all(|c| c == 'é'));
    let reason = Reason::new(format!("a{}", "é".repeat(200)));
    assert_eq!(reason.as_str().len(), MAX_REASON_LEN - 1);
    assert_eq!(
        Verdict::Refused(Reason::new("busy")).to_string(),
        "refused: busy"
    );
}
