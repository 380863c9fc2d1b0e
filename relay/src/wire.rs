//! A small Reader/Writer pair for the length-prefixed fields inside cell bodies.
//!
//! Cell bodies are complete once a cell has arrived, so a field that runs past the end of its
//! body is `Malformed`, not `Incomplete`.

use crate::error::CellError;

/// Reads fields from a byte slice, front to back.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CellError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(CellError::Malformed {
                what: "truncated field",
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CellError> {
        Ok(self.take(1)?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, CellError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Bytes prefixed by a one-byte length.
    pub fn bytes_u8(&mut self) -> Result<&'a [u8], CellError> {
        let n = self.u8()? as usize;
        self.take(n)
    }

    /// Bytes prefixed by a big-endian u16 length.
    pub fn bytes_u16(&mut self) -> Result<&'a [u8], CellError> {
        let n = self.u16()? as usize;
        self.take(n)
    }

    /// Fails unless everything left is zero (cell padding).
    pub fn expect_zero_padding(&mut self, what: &'static str) -> Result<(), CellError> {
        if self.buf[self.pos..].iter().all(|&b| b == 0) {
            self.pos = self.buf.len();
            Ok(())
        } else {
            Err(CellError::Malformed { what })
        }
    }

    /// Fails unless the input is used up (no trailing bytes).
    pub fn expect_end(&self, what: &'static str) -> Result<(), CellError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CellError::Malformed { what })
        }
    }
}

/// Appends fields to a growing buffer.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Bytes with a one-byte length prefix.
    pub fn bytes_u8(&mut self, b: &[u8]) -> Result<(), CellError> {
        let n = u8::try_from(b.len()).map_err(|_| CellError::ContentTooLong {
            len: b.len(),
            max: u8::MAX as usize,
        })?;
        self.buf.push(n);
        self.buf.extend_from_slice(b);
        Ok(())
    }

    /// Bytes with a big-endian u16 length prefix.
    pub fn bytes_u16(&mut self, b: &[u8]) -> Result<(), CellError> {
        let n = u16::try_from(b.len()).map_err(|_| CellError::ContentTooLong {
            len: b.len(),
            max: u16::MAX as usize,
        })?;
        self.buf.extend_from_slice(&n.to_be_bytes());
        self.buf.extend_from_slice(b);
        Ok(())
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::new();
        w.u8(5);
        w.bytes_u8(b"ab").expect("fits");
        w.bytes_u16(b"cde").expect("fits");
        let b = w.finish();
        assert_eq!(hex::encode(&b), "0502616200036364 65".replace(' ', ""));
        let mut r = Reader::new(&b);
        assert_eq!(r.u8(), Ok(5));
        assert_eq!(r.bytes_u8(), Ok(&b"ab"[..]));
        assert_eq!(r.bytes_u16(), Ok(&b"cde"[..]));
        r.expect_end("end").expect("at end");
        for n in 0..b.len() {
            let mut r = Reader::new(&b[..n]);
            let res = r
                .u8()
                .and_then(|_| r.bytes_u8())
                .and_then(|_| r.bytes_u16());
            assert!(res.is_err(), "prefix {n}");
        }
    }

    #[test]
    fn oversized_fields_rejected() {
        let mut w = Writer::new();
        assert!(w.bytes_u8(&[0; 256]).is_err());
        assert!(w.bytes_u16(&vec![0; 65536]).is_err());
    }
}
