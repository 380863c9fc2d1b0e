//! The byte Reader/Writer pair behind the descriptor and snapshot wire formats.
//!
//! Big-endian integers, fixed arrays and length-prefixed fields. The reader never panics and tells
//! "input ended" ([`Error::Incomplete`]) apart from "input is wrong" ([`Error::Malformed`]). It
//! knows nothing about descriptors; field rules live in `descriptor` and `policy`. It is public
//! because the registry's codecs (`/braid/registry/1` frames, replicated-state commands and
//! images) read and write the same encodings with it.

use crate::Error;

/// Reads values from a byte slice, front to back.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// How many bytes have been consumed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The bytes consumed between `start` (an earlier [`Reader::position`]) and now.
    pub fn consumed_since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// The next `n` bytes, or `Incomplete` if fewer are left.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(Error::Incomplete)?;
        let bytes = self.buf.get(self.pos..end).ok_or(Error::Incomplete)?;
        self.pos = end;
        Ok(bytes)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// A field prefixed by a one-byte length.
    pub fn u8_prefixed(&mut self) -> Result<&'a [u8], Error> {
        let len = self.u8()?;
        self.take(usize::from(len))
    }

    /// Ends reading: `Malformed` if any byte is left over.
    pub fn finish(self, what: &'static str) -> Result<(), Error> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(Error::Malformed { what })
        }
    }
}

/// Appends values to a growing buffer; the mirror of [`Reader`].
#[derive(Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Appends raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// A writer whose buffer has room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    /// Appends a big-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    /// Appends a one-byte length then the bytes; `None` if longer than 255 bytes.
    pub fn u8_prefixed(&mut self, bytes: &[u8]) -> Option<()> {
        let len = u8::try_from(bytes.len()).ok()?;
        self.u8(len);
        self.bytes(bytes);
        Some(())
    }

    /// The bytes written.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn reader_reads_what_writer_wrote() {
        let mut w = Writer::default();
        w.u8(0xab);
        w.u16(0x0102);
        w.u64(0x0304_0506_0708_090a);
        assert_eq!(w.u8_prefixed(b"hi"), Some(()));
        let bytes = w.into_vec();
        assert_eq!(hex::encode(&bytes), "ab0102030405060708090a026869");

        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Ok(0xab));
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(r.u64(), Ok(0x0304_0506_0708_090a));
        assert_eq!(r.u8_prefixed(), Ok(&b"hi"[..]));
        assert_eq!(r.consumed_since(1), &bytes[1..]);
        assert_eq!(r.finish("trailing"), Ok(()));
    }

    #[test]
    fn short_input_is_incomplete_and_leftovers_are_malformed() {
        assert_eq!(Reader::new(&[1]).u16(), Err(Error::Incomplete));
        assert_eq!(
            Reader::new(&[5, 1, 2]).u8_prefixed(),
            Err(Error::Incomplete)
        );
        assert_eq!(Reader::new(&[]).u8(), Err(Error::Incomplete));
        let mut r = Reader::new(&[1, 2]);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(
            r.finish("left over"),
            Err(Error::Malformed { what: "left over" })
        );
    }

    #[test]
    fn writer_refuses_fields_longer_than_a_u8_length() {
        let mut w = Writer::default();
        assert_eq!(w.u8_prefixed(&[0; 255]), Some(()));
        assert_eq!(w.u8_prefixed(&[0; 256]), None);
    }
}
