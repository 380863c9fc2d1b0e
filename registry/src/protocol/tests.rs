//! Codec tests: hex vectors, round trips, every strict prefix `Incomplete`, each reject path.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use braid_directory::snapshot::{RegistrySet, RegistrySignature, Snapshot};
use braid_directory::{Descriptor, Error, ExitPolicy, ListedRelay, SnapshotError};
use ed25519_dalek::SigningKey;

use super::*;

const T0: u64 = 1_700_000_000;

fn relay(seed: u8) -> SignedDescriptor {
    let key = SigningKey::from_bytes(&[seed; 32]);
    Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: [seed; 32],
        addresses: vec![format!("/ip4/127.0.0.{seed}/udp/4001/quic-v1")],
        nickname: format!("relay{seed}"),
        bandwidth: 1 << 20,
        exit_policy: ExitPolicy::reject_all(),
        published: T0,
        expires: T0 + 86_400,
    }
    .sign(&key)
    .unwrap()
}

fn signed_snapshot() -> SignedSnapshot {
    let keys: Vec<SigningKey> = (0..3u8)
        .map(|i| SigningKey::from_bytes(&[0xA0 + i; 32]))
        .collect();
    let public: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    let set = RegistrySet::new(&public).unwrap();
    let relays = vec![
        ListedRelay::vouched(relay(7)),
        ListedRelay::vouched(relay(9)),
    ];
    let mut s = Snapshot::new(&set, T0, T0 + 3600, 20_000, relays)
        .unwrap()
        .into_unsigned();
    s.sign_with(&set, &keys[0]).unwrap();
    s
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// Every valid request and response, with the frames the tests use.
fn requests() -> Vec<Request> {
    vec![
        Request::Publish(relay(7)),
        Request::GetSnapshot { newer_than: 0 },
        Request::GetSnapshot {
            newer_than: 0x0102_0304_0506_0708,
        },
        Request::CoSign(signed_snapshot()),
        Request::Offer(signed_snapshot()),
        Request::decode(&h("01 7f 00000002 6869")).unwrap(),
    ]
}

fn responses() -> Vec<Response> {
    vec![
        Response::Published,
        Response::Refused(Refusal::new(RefuseCode::Busy, "busy")),
        Response::Refused(Refusal::new(RefuseCode::Unknown(200), "")),
        Response::Snapshot(signed_snapshot()),
        Response::NotModified,
        Response::Unavailable,
        Response::Signature(RegistrySignature {
            signer: 2,
            signature: [0xab; 64],
        }),
        Response::Accepted,
        Response::decode(&h("01 ff 00000001 00")).unwrap(),
    ]
}

#[test]
fn hex_vectors_of_the_fixed_messages() {
    let signature_vector = format!("01 86 00000041 02 {}", "ab".repeat(64));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            Request::GetSnapshot {
                newer_than: 0x0102_0304_0506_0708,
            }
            .encode(),
            "01 02 00000008 0102030405060708",
        ),
        (Response::Published.encode(), "01 81 00000000"),
        (
            Response::Refused(Refusal::new(RefuseCode::Busy, "busy")).encode(),
            "01 82 00000007 09 0004 62757379",
        ),
        (Response::NotModified.encode(), "01 84 00000000"),
        (Response::Unavailable.encode(), "01 85 00000000"),
        (Response::Accepted.encode(), "01 87 00000000"),
        (
            Response::Signature(RegistrySignature {
                signer: 2,
                signature: [0xab; 64],
            })
            .encode(),
            &signature_vector,
        ),
    ];
    for (encoded, expected) in cases {
        assert_eq!(hex::encode(&encoded), expected.replace(' ', ""));
    }
}

#[test]
fn variable_bodies_are_the_inner_encodings() {
    let d = relay(7);
    let frame = Request::Publish(d.clone()).encode();
    let len = d.encode().len() as u32;
    assert_eq!(frame[..6], [&[1u8, 1][..], &len.to_be_bytes()].concat()[..]);
    assert_eq!(frame[6..], d.encode()[..]);

    let s = signed_snapshot();
    for (frame, kind) in [
        (Request::CoSign(s.clone()).encode(), 3),
        (Request::Offer(s.clone()).encode(), 4),
        (Response::Snapshot(s.clone()).encode(), 0x83),
    ] {
        let len = s.encode().len() as u32;
        assert_eq!(
            frame[..6],
            [&[1u8, kind][..], &len.to_be_bytes()].concat()[..]
        );
        assert_eq!(frame[6..], s.encode()[..]);
    }
}

#[test]
fn round_trips() {
    for r in requests() {
        assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    }
    for r in responses() {
        assert_eq!(Response::decode(&r.encode()).unwrap(), r);
    }
    let unknown = Request::decode(&h("01 7f 00000002 6869")).unwrap();
    let Request::Unknown(u) = &unknown else {
        panic!("{unknown:?}")
    };
    assert_eq!((u.kind(), u.body()), (0x7f, &b"hi"[..]));
}

#[test]
fn every_strict_prefix_is_incomplete() {
    let frames: Vec<Vec<u8>> = requests()
        .iter()
        .map(Request::encode)
        .chain(responses().iter().map(Response::encode))
        .collect();
    for frame in frames {
        for cut in 0..frame.len() {
            let prefix = &frame[..cut];
            let is_request = frame[1] < 0x80;
            let result = if is_request {
                Request::decode(prefix).err()
            } else {
                Response::decode(prefix).err()
            };
            assert!(
                matches!(result, Some(ProtocolError::Incomplete { needed }) if needed > 0),
                "prefix {cut} of kind {:#x}: {result:?}",
                frame[1]
            );
        }
    }
}

#[test]
fn a_bad_version_is_refused_at_the_header() {
    assert_eq!(
        decode_header(&h("02 02 00000008")),
        Err(ProtocolError::BadVersion(2))
    );
    assert_eq!(
        Request::decode(&h("00 02 00000008 0000000000000000")),
        Err(ProtocolError::BadVersion(0))
    );
}

#[test]
fn oversized_bodies_are_refused_at_the_header() {
    let cases = [
        (kind::GET_SNAPSHOT, 9, 8),
        (kind::PUBLISH, MAX_ENCODED_LEN + 1, MAX_ENCODED_LEN),
        (kind::PUBLISHED, 1, 0),
        (kind::ACCEPTED, 1, 0),
        (kind::REFUSED, 260, 259),
        (kind::SIGNATURE, 66, 65),
        (0x7f, 4097, 4096),
        (0xff, 4097, 4096),
        (kind::SNAPSHOT, MAX_SNAPSHOT_LEN + 1, MAX_SNAPSHOT_LEN),
        (kind::OFFER, MAX_SNAPSHOT_LEN + 1, MAX_SNAPSHOT_LEN),
        (kind::CO_SIGN, u32::MAX as usize, MAX_SNAPSHOT_LEN),
    ];
    for (k, len, max) in cases {
        let mut header = vec![1, k];
        header.extend_from_slice(&(len as u32).to_be_bytes());
        let expected = Err(ProtocolError::Oversized { kind: k, len, max });
        assert_eq!(decode_header(&header).map(|_| ()), expected, "kind {k:#x}");
        // The whole-frame decoders refuse it from the header alone.
        if k < 0x80 {
            assert_eq!(Request::decode(&header).map(|_| ()), expected);
        } else {
            assert_eq!(Response::decode(&header).map(|_| ()), expected);
        }
    }
    // A 10 000-relay snapshot of typical size (about 2.5 MB) fits easily.
    const { assert!(MAX_BODY_LEN > 2_500_000 * 10) };
}

#[test]
fn fixed_size_bodies_must_have_their_size() {
    assert_eq!(
        Request::decode(&h("01 02 00000007 00000000000000")),
        Err(ProtocolError::Malformed {
            what: "GetSnapshot body is not 8 bytes"
        })
    );
    let short_sig = [h("01 86 00000040"), vec![0; 64]].concat();
    assert_eq!(
        Response::decode(&short_sig),
        Err(ProtocolError::Malformed {
            what: "Signature body is not 65 bytes"
        })
    );
}

#[test]
fn trailing_bytes_are_malformed() {
    let mut frame = Response::Published.encode();
    frame.push(0);
    assert_eq!(
        Response::decode(&frame),
        Err(ProtocolError::Malformed {
            what: "trailing bytes after the frame"
        })
    );
    let mut frame = Request::Publish(relay(7)).encode();
    frame.push(0);
    assert!(matches!(
        Request::decode(&frame),
        Err(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn the_wrong_direction_is_malformed() {
    assert_eq!(
        Request::decode(&Response::Published.encode()),
        Err(ProtocolError::Malformed {
            what: "a response kind where a request was expected"
        })
    );
    assert_eq!(
        Response::decode(&Request::GetSnapshot { newer_than: 1 }.encode()),
        Err(ProtocolError::Malformed {
            what: "a request kind where a response was expected"
        })
    );
}

#[test]
fn bad_refusals_are_malformed() {
    let text_over = [h("01 82 00000103 01 0101"), vec![b'a'; 256]].concat();
    let cases = [
        (text_over, "refusal text over 256 bytes"),
        (
            h("01 82 00000005 01 0004 6162"),
            "Refused body shorter than its fields",
        ),
        (
            h("01 82 00000002 01 00"),
            "Refused body shorter than its fields",
        ),
        (
            h("01 82 00000005 01 0002 ff fe"),
            "refusal text is not UTF-8",
        ),
        (
            h("01 82 00000005 01 0001 61 62"),
            "trailing bytes in the Refused body",
        ),
    ];
    for (frame, what) in cases {
        assert_eq!(
            Response::decode(&frame),
            Err(ProtocolError::Malformed { what })
        );
    }
}

#[test]
fn a_forged_descriptor_is_refused_with_its_reason() {
    let mut frame = Request::Publish(relay(7)).encode();
    let last = frame.len() - 1;
    frame[last] ^= 1;
    assert_eq!(
        Request::decode(&frame),
        Err(ProtocolError::BadDescriptor(Error::BadSignature))
    );
    let cut = [
        h("01 01 00000001"),
        vec![braid_directory::DESCRIPTOR_VERSION],
    ]
    .concat();
    assert_eq!(
        Request::decode(&cut),
        Err(ProtocolError::BadDescriptor(Error::Incomplete))
    );
}

#[test]
fn a_bad_snapshot_is_refused_with_its_reason() {
    for k in [kind::CO_SIGN, kind::OFFER] {
        let frame = [vec![1, k, 0, 0, 0, 1], vec![9]].concat();
        assert_eq!(
            Request::decode(&frame),
            Err(ProtocolError::BadSnapshot(SnapshotError::BadVersion(9)))
        );
    }
    // A snapshot body of only its version byte.
    let frame = [
        h("01 83 00000001"),
        vec![braid_directory::snapshot::SNAPSHOT_VERSION],
    ]
    .concat();
    assert_eq!(
        Response::decode(&frame),
        Err(ProtocolError::BadSnapshot(SnapshotError::Incomplete))
    );
}

#[test]
fn decode_body_checks_its_slice() {
    let header = Header {
        kind: kind::GET_SNAPSHOT,
        body_len: 8,
    };
    assert_eq!(
        Request::decode_body(header, &[0; 7]),
        Err(ProtocolError::Malformed {
            what: "body length differs from the header"
        })
    );
    let forged = Header {
        kind: kind::GET_SNAPSHOT,
        body_len: 9,
    };
    assert!(matches!(
        Request::decode_body(forged, &[0; 9]),
        Err(ProtocolError::Oversized { .. })
    ));
}

#[test]
fn refusal_text_is_cut_at_a_character_boundary() {
    let r = Refusal::new(RefuseCode::BadRequest, "é".repeat(200));
    assert_eq!(r.text().len(), 256);
    let r = Refusal::new(RefuseCode::BadRequest, format!("a{}", "é".repeat(200)));
    assert_eq!(r.text().len(), 255);
    assert_eq!(
        Response::decode(&Response::Refused(r.clone()).encode()).unwrap(),
        Response::Refused(r)
    );
}

#[test]
fn refuse_codes_round_trip() {
    for code in 0..=255u8 {
        assert_eq!(RefuseCode::from_code(code).code(), code);
    }
    assert_eq!(RefuseCode::from_code(9), RefuseCode::Busy);
    assert_eq!(RefuseCode::from_code(0), RefuseCode::Unknown(0));
}
