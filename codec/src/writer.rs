//! [`Writer`]: appends big-endian integers, arrays and length-prefixed fields to a growing
//! buffer, the mirror of [`crate::Reader`]. A length-prefixed write refuses a field longer than
//! its maximum and then writes nothing.

use crate::error::WriteError;

/// Appends values to a byte buffer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Writer::default()
    }

    /// An empty writer with room for `n` bytes.
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: Vec::with_capacity(n),
        }
    }

    /// A writer that appends to `buf`, keeping what it holds (take it back with
    /// [`Writer::finish`]).
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Writer { buf }
    }

    /// How many bytes the buffer holds.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes the buffer holds.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Makes room for at least `n` more bytes.
    pub fn reserve(&mut self, n: usize) {
        self.buf.reserve(n);
    }

    /// Raw bytes, no prefix.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// A big-endian u16.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    /// `n` zero bytes (padding).
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Refuses `bytes` if longer than `max` or than `limit`, what the prefix can describe.
    fn check(bytes: &[u8], max: usize, limit: usize, what: &'static str) -> Result<(), WriteError> {
        let max = max.min(limit);
        if bytes.len() > max {
            return Err(WriteError::TooLong {
                what,
                len: bytes.len(),
                max,
            });
        }
        Ok(())
    }

    /// `bytes` after a one-byte length; refused if longer than `max` or 255.
    pub fn u8_prefixed(
        &mut self,
        bytes: &[u8],
        max: usize,
        what: &'static str,
    ) -> Result<(), WriteError> {
        Self::check(bytes, max, usize::from(u8::MAX), what)?;
        // Checked above: the length is at most u8::MAX.
        self.u8(u8::try_from(bytes.len()).unwrap_or(u8::MAX));
        self.bytes(bytes);
        Ok(())
    }

    /// `bytes` after a big-endian u16 length; refused if longer than `max` or 65535.
    pub fn u16_prefixed(
        &mut self,
        bytes: &[u8],
        max: usize,
        what: &'static str,
    ) -> Result<(), WriteError> {
        Self::check(bytes, max, usize::from(u16::MAX), what)?;
        // Checked above: the length is at most u16::MAX.
        self.u16(u16::try_from(bytes.len()).unwrap_or(u16::MAX));
        self.bytes(bytes);
        Ok(())
    }

    /// `bytes` after a big-endian u32 length; refused if longer than `max` or 2^32 - 1.
    pub fn u32_prefixed(
        &mut self,
        bytes: &[u8],
        max: usize,
        what: &'static str,
    ) -> Result<(), WriteError> {
        let limit = usize::try_from(u32::MAX).unwrap_or(usize::MAX);
        Self::check(bytes, max, limit, what)?;
        // Checked above: the length is at most u32::MAX.
        self.u32(u32::try_from(bytes.len()).unwrap_or(u32::MAX));
        self.bytes(bytes);
        Ok(())
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

impl From<Writer> for Vec<u8> {
    fn from(w: Writer) -> Vec<u8> {
        w.finish()
    }
}
