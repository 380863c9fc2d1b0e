//! Hex vectors, every strict prefix, and every reject path of the reader and the writer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use super::*;

/// Every kind of field once: u8, u16, u32, u64, a 2-byte array, u8-, u16- and u32-prefixed
/// fields, then two bytes of zero padding.
const VECTOR: &str = "ab 0102 03040506 0708090a0b0c0d0e cafe 02 6869 0003 636465 00000001 6a 0000";

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn write_vector() -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(0xab);
    w.u16(0x0102);
    w.u32(0x0304_0506);
    w.u64(0x0708_090a_0b0c_0d0e);
    w.bytes(&[0xca, 0xfe]);
    w.u8_prefixed(b"hi", 2, "u8 field").unwrap();
    w.u16_prefixed(b"cde", 3, "u16 field").unwrap();
    w.u32_prefixed(b"j", 1, "u32 field").unwrap();
    w.zeros(2);
    w.finish()
}

/// Reads the vector, checking every value.
fn read_vector(r: &mut Reader<'_>) -> Result<(), Error> {
    assert_eq!(r.u8("u8")?, 0xab);
    assert_eq!(r.u16("u16")?, 0x0102);
    assert_eq!(r.u32("u32")?, 0x0304_0506);
    assert_eq!(r.u64("u64")?, 0x0708_090a_0b0c_0d0e);
    assert_eq!(r.array::<2>("array")?, [0xca, 0xfe]);
    assert_eq!(r.u8_prefixed(2, "u8 field")?, b"hi");
    assert_eq!(r.u16_prefixed(3, "u16 field")?, b"cde");
    assert_eq!(r.u32_prefixed(1, "u32 field")?, b"j");
    assert_eq!(r.take(2, "padding")?, [0, 0]);
    r.expect_end("vector")
}

#[test]
fn writer_writes_the_vector_and_reader_reads_it() {
    let bytes = write_vector();
    assert_eq!(bytes, unhex(VECTOR));
    let mut r = Reader::new(&bytes);
    read_vector(&mut r).unwrap();
    assert_eq!(r.position(), bytes.len());
    assert_eq!(r.consumed_since(1), &bytes[1..]);
    assert_eq!(r.consumed_since(bytes.len() + 1), b"");
    r.finish("vector").unwrap();
    let mut r = Reader::complete(&bytes);
    read_vector(&mut r).unwrap();
}

#[test]
fn every_strict_prefix_is_incomplete_and_truncated_in_a_body() {
    let bytes = unhex(VECTOR);
    for n in 0..bytes.len() {
        let mut r = Reader::new(&bytes[..n]);
        match read_vector(&mut r) {
            Err(Error::Incomplete { needed, .. }) => {
                assert!(needed >= 1, "prefix {n}");
                // Reading `needed` more never reads past the message.
                assert!(n + needed <= bytes.len(), "prefix {n} needs {needed}");
            }
            other => panic!("prefix {n}: {other:?}"),
        }
        let mut r = Reader::complete(&bytes[..n]);
        match read_vector(&mut r) {
            Err(Error::Malformed {
                problem: Problem::Truncated { needed },
                ..
            }) => assert!(needed >= 1 && n + needed <= bytes.len(), "body {n}"),
            other => panic!("body {n}: {other:?}"),
        }
    }
}

#[test]
fn incomplete_names_the_field_and_its_shortfall() {
    let mut r = Reader::new(&[0, 5, 1, 2]);
    assert_eq!(
        r.u16_prefixed(16, "SOCKS5 greeting methods"),
        Err(Error::Incomplete {
            what: "SOCKS5 greeting methods",
            needed: 3
        })
    );
    assert_eq!(r.position(), 0, "a failed read consumes nothing");
    assert_eq!(
        Reader::new(&[1]).u32("descriptor expiry"),
        Err(Error::Incomplete {
            what: "descriptor expiry",
            needed: 3
        })
    );
    let err = Reader::new(&[]).u8("cell version").unwrap_err();
    assert!(err.is_incomplete());
    assert_eq!((err.what(), err.needed()), ("cell version", Some(1)));
    assert_eq!(
        Reader::complete(&[7]).u64("seq"),
        Err(Error::Malformed {
            what: "seq",
            problem: Problem::Truncated { needed: 7 }
        })
    );
}

#[test]
fn length_prefixes_over_the_maximum_are_rejected_before_their_bytes() {
    // The prefix says 3, the maximum is 2; the bytes have not arrived, and need not.
    let mut r = Reader::new(&[3]);
    let too_long = |what| Error::Malformed {
        what,
        problem: Problem::TooLong { len: 3, max: 2 },
    };
    assert_eq!(r.u8_prefixed(2, "peer id"), Err(too_long("peer id")));
    assert_eq!(r.position(), 0);
    assert_eq!(
        Reader::new(&[0, 3]).u16_prefixed(2, "address"),
        Err(too_long("address"))
    );
    assert_eq!(
        Reader::new(&[0, 0, 0, 3]).u32_prefixed(2, "snapshot"),
        Err(too_long("snapshot"))
    );
    let huge = Reader::new(&[0xff; 4]).u32_prefixed(usize::MAX, "snapshot");
    assert_eq!(huge.unwrap_err().needed(), Some(0xffff_ffff));
    // At the maximum is fine.
    assert_eq!(Reader::new(&[2, 9, 9]).u8_prefixed(2, "x"), Ok(&[9, 9][..]));
    let err = Reader::new(&[3]).u8_prefixed(2, "peer id").unwrap_err();
    assert!(!err.is_incomplete());
    assert_eq!(err.needed(), None);
    assert_eq!(
        err.to_string(),
        "malformed peer id: length 3 is over the limit of 2"
    );
}

#[test]
fn trailing_bytes_and_padding_are_rejected() {
    let mut r = Reader::new(&[1, 2, 3]);
    assert_eq!(r.u8("version"), Ok(1));
    assert_eq!(
        r.expect_end("hop payload"),
        Err(Error::Malformed {
            what: "hop payload",
            problem: Problem::TrailingBytes { extra: 2 }
        })
    );
    assert_eq!(r.rest(), [2, 3]);
    assert_eq!(r.remaining(), 2);
    assert_eq!(
        r.clone().finish("hop payload").unwrap_err().what(),
        "hop payload"
    );
    assert_eq!(r.take_rest(), [2, 3]);
    assert!(r.is_empty());
    r.finish("hop payload").unwrap();

    let mut r = Reader::complete(&[5, 0, 0, 1, 0]);
    assert_eq!(r.u8("len"), Ok(5));
    assert_eq!(
        r.zero_padding("created padding"),
        Err(Error::Malformed {
            what: "created padding",
            problem: Problem::NonZeroPadding { offset: 3 }
        })
    );
    assert_eq!(r.position(), 1);
    let mut r = Reader::complete(&[5, 0, 0]);
    assert_eq!(r.u8("len"), Ok(5));
    r.zero_padding("created padding").unwrap();
    assert!(r.is_empty());
}

#[test]
fn writer_refuses_over_long_fields_and_writes_nothing() {
    let mut w = Writer::with_capacity(8);
    assert_eq!(
        w.u8_prefixed(&[0; 256], usize::MAX, "peer id"),
        Err(WriteError::TooLong {
            what: "peer id",
            len: 256,
            max: 255
        })
    );
    assert_eq!(
        w.u16_prefixed(&vec![0; 65_536], usize::MAX, "noise message"),
        Err(WriteError::TooLong {
            what: "noise message",
            len: 65_536,
            max: 65_535
        })
    );
    assert_eq!(
        w.u32_prefixed(&[0; 5], 4, "snapshot"),
        Err(WriteError::TooLong {
            what: "snapshot",
            len: 5,
            max: 4
        })
    );
    assert_eq!(
        w.u8_prefixed(b"abc", 2, "address").unwrap_err().to_string(),
        "address of 3 bytes is over the limit of 2"
    );
    assert!(w.is_empty());
    w.u8_prefixed(&[7; 255], 255, "peer id").unwrap();
    assert_eq!(w.len(), 256);
    assert_eq!(w.as_bytes()[0], 0xff);
    let bytes: Vec<u8> = w.into();
    assert_eq!(bytes.len(), 256);
}
