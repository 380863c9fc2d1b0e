#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;

fn key() -> FragmentKey {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = i as u8;
    }
    FragmentKey::from_bytes(k)
}

/// A frame with arbitrary flags and payload, tagged correctly (to reach the decode checks).
fn tagged(flags: u8, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![VERSION, flags, 0, 0, 0, 9];
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    let tag = key().tag(&out);
    out.extend_from_slice(&tag);
    out
}

fn decode_err(bytes: &[u8]) -> WireError {
    open(&key(), bytes).unwrap_err()
}

fn encode(f: Fragment<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let n = f.encode(&key(), &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

const DATA_HEADER_HEX: &str = "01030102030400000000000000050005";

fn data_vector() -> Vec<u8> {
    encode(Fragment::Data(Data {
        stream: StreamId(0x0102_0304),
        seq: 5,
        fin: true,
        payload: b"braid",
    }))
}

fn ack_vector() -> Vec<u8> {
    let ack = Ack {
        stream: StreamId(7),
        cumulative: 0x100,
        echo: 0x102,
        sack: 0b101,
    };
    ack.encode(&key()).to_vec()
}

fn shard_vector() -> Vec<u8> {
    encode(Fragment::Erasure(Shard {
        stream: StreamId(7),
        seq: 11,
        fin: false,
        k: 2,
        n: 3,
        index: 1,
        message_len: 3,
        shard: &[0xaa, 0xbb],
    }))
}

#[test]
fn data_vector_layout_and_tag() {
    let bytes = data_vector();
    let header_and_payload =
        hex::decode(format!("{DATA_HEADER_HEX}{}", hex::encode(b"braid"))).unwrap();
    assert_eq!(&bytes[..21], header_and_payload.as_slice());
    let mut raw_key = [0u8; 32];
    for (i, b) in raw_key.iter_mut().enumerate() {
        *b = i as u8;
    }
    let tag = blake3::keyed_hash(&raw_key, &header_and_payload);
    assert_eq!(&bytes[21..], tag.as_bytes());
    assert_eq!(
        hex::encode(&bytes),
        "010301020304000000000000000500056272616964\
         eb5c20e0215b3741de34ea383a1d5505e7395f202e125a83800b64fac361759a"
    );
}

#[test]
fn ack_vector_layout_and_tag() {
    let bytes = ack_vector();
    assert_eq!(bytes.len(), ACK_FRAGMENT_LEN);
    assert_eq!(
        hex::encode(&bytes),
        "0104000000070000000000000100001000000000000001020000000000000005\
         fa6728042d0d41ed9deb09f0497295060863599c3be78bb8274175282b5fa68e"
    );
}

#[test]
fn shard_vector_layout_and_tag() {
    assert_eq!(
        hex::encode(shard_vector()),
        "01080000000700000000000000 0b000a020301000000 0003aabb".replace(' ', "")
            + "479827a68107eac81cf25105d902bae2734d66f29057cfe7da7c4c480586b6af"
    );
}

/// The tag is the plain BLAKE3 keyed hash of everything before it.
#[test]
fn tags_are_keyed_blake3_of_header_and_payload() {
    let mut raw_key = [0u8; 32];
    for (i, b) in raw_key.iter_mut().enumerate() {
        *b = i as u8;
    }
    for bytes in [data_vector(), ack_vector(), shard_vector()] {
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        assert_eq!(blake3::keyed_hash(&raw_key, body).as_bytes(), tag);
    }
}

#[test]
fn round_trips() {
    let shard = [1u8, 2, 3, 4];
    let payload = vec![0x5a; 3840];
    let fragments = [
        Fragment::Data(Data {
            stream: StreamId(1),
            seq: 0,
            fin: false,
            payload: &[],
        }),
        Fragment::Data(Data {
            stream: StreamId(u32::MAX),
            seq: u64::MAX,
            fin: true,
            payload: &payload,
        }),
        Fragment::Ack(Ack {
            stream: StreamId(3),
            cumulative: 9,
            echo: 12,
            sack: u64::MAX,
        }),
        Fragment::Erasure(Shard {
            stream: StreamId(4),
            seq: 300,
            fin: true,
            k: 3,
            n: 5,
            index: 4,
            message_len: 12,
            shard: &shard,
        }),
    ];
    for f in fragments {
        let bytes = encode(f);
        assert_eq!(open(&key(), &bytes).unwrap(), f);
        let raw = RawFragment::parse_exact(&bytes).unwrap();
        assert_eq!(raw.as_bytes(), bytes.as_slice());
    }
}

#[test]
fn every_strict_prefix_is_incomplete() {
    for bytes in [data_vector(), ack_vector(), shard_vector()] {
        for end in 0..bytes.len() {
            let err = RawFragment::read(&bytes[..end]).unwrap_err();
            assert!(err.is_incomplete(), "prefix {end}: {err:?}");
        }
        let full = RawFragment::read(&bytes[..]).unwrap();
        assert!(full.1.is_empty());
    }
    assert_eq!(
        RawFragment::read(&[]).unwrap_err(),
        WireError::Incomplete { needed: HEADER_LEN }
    );
    let data = data_vector();
    assert_eq!(
        RawFragment::read(&data[..20]).unwrap_err(),
        WireError::Incomplete { needed: data.len() }
    );
}

#[test]
fn reader_reads_back_to_back_fragments() {
    let mut stream = data_vector();
    stream.extend(ack_vector());
    let (first, rest) = RawFragment::read(&stream).unwrap();
    assert_eq!(first.as_bytes(), data_vector().as_slice());
    assert_eq!(first.stream_id(), StreamId(0x0102_0304));
    assert_eq!(first.seq(), 5);
    assert_eq!(first.flags(), Flags(Flags::DATA | Flags::FIN));
    let (second, rest) = RawFragment::read(rest).unwrap();
    assert_eq!(second.as_bytes(), ack_vector().as_slice());
    assert!(rest.is_empty());
}

#[test]
fn framing_rejects() {
    let mut bytes = data_vector();
    bytes[0] = 2;
    assert_eq!(decode_err(&bytes), WireError::UnsupportedVersion(2));
    assert_eq!(decode_err(&[0]), WireError::UnsupportedVersion(0));
    let mut long = data_vector();
    long.push(0);
    assert_eq!(decode_err(&long), WireError::TrailingBytes { extra: 1 });
}

#[test]
fn any_altered_byte_is_rejected() {
    let bytes = data_vector();
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut altered = bytes.clone();
            altered[i] ^= 1 << bit;
            assert!(open(&key(), &altered).is_err(), "byte {i} bit {bit}");
        }
    }
    let mut payload_flip = bytes.clone();
    payload_flip[17] ^= 1;
    assert_eq!(decode_err(&payload_flip), WireError::TagMismatch);
    let mut tag_flip = bytes.clone();
    tag_flip[40] ^= 0x80;
    assert_eq!(decode_err(&tag_flip), WireError::TagMismatch);
    let other = FragmentKey::from_bytes([9; 32]);
    assert_eq!(open(&other, &bytes).unwrap_err(), WireError::TagMismatch);
}

#[test]
fn flag_rejects() {
    assert_eq!(
        decode_err(&tagged(0x10 | Flags::DATA, 0, b"")),
        WireError::UnknownFlags(0x11)
    );
    assert_eq!(
        decode_err(&tagged(0x80, 0, b"")),
        WireError::UnknownFlags(0x80)
    );
    assert_eq!(decode_err(&tagged(0, 0, b"")), WireError::InvalidKind(0));
    assert_eq!(
        decode_err(&tagged(Flags::FIN, 0, b"")),
        WireError::InvalidKind(Flags::FIN)
    );
    assert_eq!(
        decode_err(&tagged(Flags::DATA | Flags::ACK, 0, b"")),
        WireError::InvalidKind(0x05)
    );
    assert_eq!(
        decode_err(&tagged(Flags::ERASURE | Flags::DATA, 0, b"")),
        WireError::InvalidKind(0x09)
    );
    assert_eq!(
        decode_err(&tagged(Flags::ACK | Flags::FIN, 0, &[0; 16])),
        WireError::FinOnAck
    );
    assert_eq!(
        decode_err(&tagged(Flags::ACK, 0, &[0; 15])),
        WireError::AckLength(15)
    );
    assert_eq!(
        decode_err(&tagged(Flags::ACK, 0, &[0; 17])),
        WireError::AckLength(17)
    );
}

#[test]
fn erasure_rejects() {
    let e = Flags::ERASURE;
    let shard = |k: u8, n: u8, index: u8, reserved: u8, len: u32, body: &[u8]| {
        let mut p = vec![k, n, index, reserved];
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(body);
        p
    };
    assert_eq!(
        decode_err(&tagged(e, 5, &[2, 3, 0, 0, 0, 0, 0, 1, 7])),
        WireError::ErasureTooShort(9)
    );
    assert_eq!(
        decode_err(&tagged(e, 5, &shard(0, 3, 0, 0, 1, &[1, 2]))),
        WireError::ErasureParams {
            k: 0,
            n: 3,
            index: 0
        }
    );
    assert_eq!(
        decode_err(&tagged(e, 5, &shard(3, 3, 0, 0, 1, &[1, 2]))),
        WireError::ErasureParams {
            k: 3,
            n: 3,
            index: 0
        }
    );
    assert_eq!(
        decode_err(&tagged(e, 5, &shard(2, 3, 3, 0, 1, &[1, 2]))),
        WireError::ErasureParams {
            k: 2,
            n: 3,
            index: 3
        }
    );
    assert_eq!(
        decode_err(&tagged(e, 5, &shard(2, 3, 1, 4, 1, &[1, 2]))),
        WireError::ErasureReserved(4)
    );
    assert_eq!(
        decode_err(&tagged(e, 5, &shard(2, 3, 1, 0, 1, &[1, 2, 3]))),
        WireError::OddShard(3)
    );
    assert_eq!(
        decode_err(&tagged(e, 5, &shard(2, 3, 1, 0, 5, &[1, 2]))),
        WireError::MessageLength {
            message_len: 5,
            capacity: 4
        }
    );
    assert_eq!(
        decode_err(&tagged(e, 1, &shard(2, 3, 2, 0, 4, &[1, 2]))),
        WireError::ErasureBase { seq: 1, index: 2 }
    );
    assert!(open(&key(), &tagged(e, 5, &shard(2, 3, 2, 0, 4, &[1, 2]))).is_ok());
}

#[test]
fn encode_rejects_oversized_payload() {
    let big = vec![0; MAX_WIRE_PAYLOAD + 1];
    let f = Fragment::Data(Data {
        stream: StreamId(1),
        seq: 0,
        fin: false,
        payload: &big,
    });
    assert!(matches!(
        f.encode(&key(), &mut Vec::new()),
        Err(Error::FragmentTooLong { len: 65536 })
    ));
    let max = vec![0; MAX_WIRE_PAYLOAD];
    let f = Fragment::Data(Data {
        stream: StreamId(1),
        seq: 0,
        fin: false,
        payload: &max,
    });
    assert_eq!(
        f.encode(&key(), &mut Vec::new()).unwrap(),
        MAX_WIRE_PAYLOAD + OVERHEAD
    );
}
