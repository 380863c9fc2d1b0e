#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::num::NonZeroU32;

use super::*;
use crate::wire::{ERASURE_HEADER_LEN, Flags, VERSION};

const S: StreamId = StreamId(5);

fn key() -> FragmentKey {
    FragmentKey::from_bytes([3; 32])
}

fn data(seq: u64, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    Fragment::Data(Data {
        stream: S,
        seq,
        fin,
        payload,
    })
    .encode(&key(), &mut out)
    .unwrap();
    out
}

fn shards(base: u64, message: &[u8], k: usize, n: usize, fin: bool) -> Vec<Vec<u8>> {
    let params = ErasureParams::new(k, n).unwrap();
    erasure::encode(message, params)
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            let mut out = Vec::new();
            let f = Fragment::Erasure(Shard {
                stream: S,
                seq: base.wrapping_add(i as u64),
                fin,
                k: k as u8,
                n: n as u8,
                index: i as u8,
                message_len: message.len() as u32,
                shard,
            });
            f.encode(&key(), &mut out).unwrap();
            out
        })
        .collect()
}

fn receiver(window_bytes: u32, window_fragments: u32) -> Receiver {
    let config = Config {
        window_bytes: NonZeroU32::new(window_bytes).unwrap(),
        window_fragments: NonZeroU32::new(window_fragments).unwrap(),
        max_payload: crate::config::PayloadLimit::try_from(64).unwrap(),
        ..Config::default()
    };
    Receiver::new(&config, S, key()).unwrap()
}

fn ack_of(r: Received) -> Ack {
    let ack = match r {
        Received::Accepted { ack, .. } | Received::Duplicate { ack } => ack,
        Received::Dropped(reason) => panic!("dropped: {reason:?}"),
    };
    match crate::wire::open(&key(), &ack.fragment).unwrap() {
        Fragment::Ack(a) => a,
        other => panic!("not an ack: {other:?}"),
    }
}

#[test]
fn in_order_data_is_delivered_and_acked() {
    let mut r = receiver(1 << 20, 64);
    let mut out = Vec::new();
    let got = r
        .on_fragment(StrandId(2), &data(0, false, b"abc"), &mut out)
        .unwrap();
    assert!(
        matches!(got, Received::Accepted { delivered: 3, finished: false, ack } if ack.strand == StrandId(2))
    );
    assert_eq!(
        ack_of(got),
        Ack {
            stream: S,
            cumulative: 1,
            echo: 0,
            sack: 0
        }
    );
    assert_eq!(out, b"abc");
}

#[test]
fn out_of_order_is_buffered_sacked_and_delivered_when_the_gap_fills() {
    let mut r = receiver(1 << 20, 64);
    let mut out = Vec::new();
    let a = r
        .on_fragment(StrandId(0), &data(2, false, b"cc"), &mut out)
        .unwrap();
    assert_eq!(
        ack_of(a),
        Ack {
            stream: S,
            cumulative: 0,
            echo: 2,
            sack: 0b10
        }
    );
    let a = r
        .on_fragment(StrandId(0), &data(1, false, b"bb"), &mut out)
        .unwrap();
    assert_eq!(
        ack_of(a),
        Ack {
            stream: S,
            cumulative: 0,
            echo: 1,
            sack: 0b11
        }
    );
    assert!(out.is_empty());
    assert_eq!(r.buffered_bytes(), 4);
    let a = r
        .on_fragment(StrandId(0), &data(0, false, b"aa"), &mut out)
        .unwrap();
    assert!(matches!(a, Received::Accepted { delivered: 6, .. }));
    assert_eq!(ack_of(a).cumulative, 3);
    assert_eq!(out, b"aabbcc");
    assert_eq!(r.buffered_bytes(), 0);
}

#[test]
fn duplicates_and_junk_are_dropped_and_counted() {
    let mut r = receiver(1 << 20, 64);
    let mut out = Vec::new();
    let first = data(0, false, b"x");
    let _ = r.on_fragment(StrandId(0), &first, &mut out).unwrap();
    let _ = r
        .on_fragment(StrandId(0), &data(2, false, b"z"), &mut out)
        .unwrap();
    // Delivered duplicate and buffered duplicate: ack again.
    assert_eq!(
        ack_of(r.on_fragment(StrandId(1), &first, &mut out).unwrap()).cumulative,
        1
    );
    assert!(matches!(
        r.on_fragment(StrandId(1), &data(2, false, b"z"), &mut out)
            .unwrap(),
        Received::Duplicate { .. }
    ));
    let mut forged = data(1, false, b"y");
    forged[16] ^= 4;
    assert_eq!(
        r.on_fragment(StrandId(0), &forged, &mut out).unwrap(),
        Received::Dropped(DropReason::Forged)
    );
    assert_eq!(
        r.on_fragment(StrandId(0), &forged[..20], &mut out).unwrap(),
        Received::Dropped(DropReason::Malformed)
    );
    let mut other_stream = Vec::new();
    Fragment::Data(Data {
        stream: StreamId(6),
        seq: 1,
        fin: false,
        payload: b"y",
    })
    .encode(&key(), &mut other_stream)
    .unwrap();
    assert_eq!(
        r.on_fragment(StrandId(0), &other_stream, &mut out).unwrap(),
        Received::Dropped(DropReason::WrongStream)
    );
    let ack = Ack {
        stream: S,
        cumulative: 0,
        echo: 0,
        sack: 0,
    }
    .encode(&key());
    assert_eq!(
        r.on_fragment(StrandId(0), &ack, &mut out).unwrap(),
        Received::Dropped(DropReason::UnexpectedKind)
    );
    assert_eq!(out, b"x");
    let d = r.stats().dropped;
    assert_eq!(
        (
            d.duplicate,
            d.forged,
            d.malformed,
            d.wrong_stream,
            d.unexpected_kind
        ),
        (2, 1, 1, 1, 1)
    );
    assert_eq!(d.total(), 6);
}

#[test]
fn reorder_buffer_fragment_bound_is_an_error() {
    let mut r = receiver(1 << 20, 8);
    let mut out = Vec::new();
    let _ = r
        .on_fragment(StrandId(0), &data(7, false, b"ok"), &mut out)
        .unwrap();
    let err = r
        .on_fragment(StrandId(0), &data(8, false, b"no"), &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReorderOverflow {
                seq: 8,
                next: 0,
                bound: "fragments",
                limit: 8,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn reorder_buffer_byte_bound_is_an_error() {
    let mut r = receiver(100, 64);
    let mut out = Vec::new();
    let _ = r
        .on_fragment(StrandId(0), &data(1, false, &[1; 60]), &mut out)
        .unwrap();
    let _ = r
        .on_fragment(StrandId(0), &data(2, false, &[2; 40]), &mut out)
        .unwrap();
    assert_eq!(r.buffered_bytes(), 100);
    let err = r
        .on_fragment(StrandId(0), &data(3, false, &[3]), &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReorderOverflow {
                seq: 3,
                bound: "bytes",
                limit: 100,
                ..
            }
        ),
        "{err}"
    );
    // In-order data is never buffered, so it is not limited by the byte bound.
    let mut r = receiver(100, 64);
    let _ = r
        .on_fragment(StrandId(0), &data(0, false, &[0; 200]), &mut out)
        .unwrap();
}

#[test]
fn fin_finishes_and_guards_the_end() {
    let mut r = receiver(1 << 20, 64);
    let mut out = Vec::new();
    let _ = r
        .on_fragment(StrandId(0), &data(1, true, b""), &mut out)
        .unwrap();
    assert!(!r.is_finished());
    let got = r
        .on_fragment(StrandId(0), &data(0, false, b"end"), &mut out)
        .unwrap();
    assert!(matches!(
        got,
        Received::Accepted {
            delivered: 3,
            finished: true,
            ..
        }
    ));
    assert!(r.is_finished());
    let err = r
        .on_fragment(StrandId(0), &data(2, false, b"late"), &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol {
                violation: Violation::DataAfterFin { fin_seq: 1 },
                ..
            }
        ),
        "{err}"
    );

    let mut r = receiver(1 << 20, 64);
    let _ = r
        .on_fragment(StrandId(0), &data(3, true, b""), &mut out)
        .unwrap();
    let err = r
        .on_fragment(StrandId(0), &data(2, true, b""), &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol {
            violation: Violation::ConflictingFin {
                first: 3,
                second: 2
            },
            ..
        }
    ));

    let mut r = receiver(1 << 20, 64);
    let _ = r
        .on_fragment(StrandId(0), &data(5, false, b"x"), &mut out)
        .unwrap();
    let err = r
        .on_fragment(StrandId(0), &data(3, true, b""), &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol {
            violation: Violation::DataAfterFin { fin_seq: 3 },
            ..
        }
    ));
}

#[test]
fn authentic_but_undecodable_is_a_protocol_error() {
    let mut bytes = vec![VERSION, 0x40 | Flags::DATA, 0, 0, 0, 5];
    bytes.extend_from_slice(&9u64.to_be_bytes());
    bytes.extend_from_slice(&0u16.to_be_bytes());
    let tag = key().tag(&bytes);
    bytes.extend_from_slice(&tag);
    let err = receiver(1 << 20, 64)
        .on_fragment(StrandId(0), &bytes, &mut Vec::new())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol {
                seq: 9,
                violation: Violation::Undecodable(_),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn erasure_group_rebuilds_in_order_with_data_around_it() {
    let message = b"a short request that is erasure coded".to_vec();
    let group = shards(1, &message, 2, 4, false);
    let mut r = receiver(1 << 20, 64);
    let mut out = Vec::new();
    let _ = r
        .on_fragment(StrandId(0), &data(5, true, b"!"), &mut out)
        .unwrap();
    let a = r.on_fragment(StrandId(0), &group[3], &mut out).unwrap();
    assert_eq!(ack_of(a).sack, 0b11000, "seq 4 (shard 3) and seq 5 (data)");
    let a = r.on_fragment(StrandId(1), &group[0], &mut out).unwrap();
    // Rebuilt: all four sequence numbers count as received.
    assert_eq!(ack_of(a).sack, 0b11111);
    assert!(out.is_empty(), "seq 0 still missing");
    assert!(matches!(
        r.on_fragment(StrandId(2), &group[1], &mut out).unwrap(),
        Received::Duplicate { .. }
    ));
    assert_eq!(r.stats().dropped.redundant, 1);
    let got = r
        .on_fragment(StrandId(0), &data(0, false, b">"), &mut out)
        .unwrap();
    assert!(matches!(got, Received::Accepted { finished: true, .. }));
    let mut expected = b">".to_vec();
    expected.extend_from_slice(&message);
    expected.push(b'!');
    assert_eq!(out, expected);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(r.stats().messages_rebuilt, 1);
}

#[test]
fn erasure_conflicts_are_protocol_errors() {
    let mut out = Vec::new();
    // Shards of one group disagreeing on parameters.
    let mut r = receiver(1 << 20, 64);
    let _ = r
        .on_fragment(StrandId(0), &shards(2, b"abcdef", 2, 4, false)[0], &mut out)
        .unwrap();
    let err = r
        .on_fragment(StrandId(0), &shards(2, b"abcdef", 2, 3, false)[1], &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol {
                violation: Violation::ErasureConflict { base: 2 },
                ..
            }
        ),
        "{err}"
    );
    // Data inside a group's range.
    let mut r = receiver(1 << 20, 64);
    let _ = r
        .on_fragment(StrandId(0), &shards(2, b"abcdef", 2, 4, false)[0], &mut out)
        .unwrap();
    let err = r
        .on_fragment(StrandId(0), &data(3, false, b"x"), &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol {
            violation: Violation::ErasureConflict { .. },
            ..
        }
    ));
    // A group over buffered data.
    let mut r = receiver(1 << 20, 64);
    let _ = r
        .on_fragment(StrandId(0), &data(4, false, b"x"), &mut out)
        .unwrap();
    let err = r
        .on_fragment(StrandId(0), &shards(2, b"abcdef", 2, 4, false)[0], &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol {
            violation: Violation::ErasureConflict { base: 2 },
            ..
        }
    ));
    // A group whose range would straddle the delivery point.
    let mut r = receiver(1 << 20, 64);
    let _ = r
        .on_fragment(StrandId(0), &data(0, false, b"x"), &mut out)
        .unwrap();
    let err = r
        .on_fragment(StrandId(0), &shards(0, b"abcdef", 1, 3, false)[2], &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol {
            violation: Violation::ErasureConflict { base: 0 },
            ..
        }
    ));
    // A group beyond the fragment window.
    let mut r = receiver(1 << 20, 4);
    let err = r
        .on_fragment(StrandId(0), &shards(2, b"abcdef", 2, 3, false)[0], &mut out)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::ReorderOverflow {
            bound: "fragments",
            ..
        }
    ));
    // Shard bytes count against the byte window.
    let mut r = receiver(100, 64);
    let big = shards(1, &[9; 200], 2, 3, false);
    assert_eq!(
        big[0].len() - crate::wire::OVERHEAD,
        ERASURE_HEADER_LEN + 100
    );
    let err = r.on_fragment(StrandId(0), &big[0], &mut out).unwrap_err();
    assert!(matches!(err, Error::ReorderOverflow { bound: "bytes", .. }));
}

/// Found by the reassembler fuzz target: sequence numbers at the top of the range.
#[test]
fn sequence_numbers_near_the_limit_are_overflow_errors_not_panics() {
    let mut out = Vec::new();
    let err = receiver(1 << 20, 64)
        .on_fragment(StrandId(0), &data(u64::MAX, true, b""), &mut out)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReorderOverflow {
                bound: "fragments",
                ..
            }
        ),
        "{err}"
    );
    let err = receiver(1 << 20, 64)
        .on_fragment(
            StrandId(0),
            &shards(u64::MAX - 1, b"ab", 1, 3, true)[1],
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::ReorderOverflow {
                bound: "fragments",
                ..
            }
        ),
        "{err}"
    );
}
