//! [`Reader`]: reads values front to back from a byte slice, never panicking, consuming nothing
//! on failure. It is not a framer: which fields a message has and which values they may take is
//! the caller's business.

use crate::error::{Error, Problem};

/// Whether the reader's input may grow (a stream prefix) or is whole (a body of known length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Running out is [`Error::Incomplete`].
    Prefix,
    /// Running out is [`Problem::Truncated`].
    Complete,
}

/// Reads big-endian integers, arrays, spans and length-prefixed fields from a byte slice.
///
/// Every read names `what` it reads; on failure the reader is left where it was.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    input: Input,
}

impl<'a> Reader<'a> {
    /// A reader over `input`, a prefix of a stream: running out of bytes is
    /// [`Error::Incomplete`] with the exact shortfall.
    pub fn new(input: &'a [u8]) -> Self {
        Reader {
            buf: input,
            pos: 0,
            input: Input::Prefix,
        }
    }

    /// A reader over `body`, the whole of something whose end is known (a cell body, a framed
    /// payload): running out of bytes is [`Error::Malformed`] with [`Problem::Truncated`].
    pub fn complete(body: &'a [u8]) -> Self {
        Reader {
            buf: body,
            pos: 0,
            input: Input::Complete,
        }
    }

    /// How many bytes have been consumed.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether every byte has been consumed.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The bytes not consumed yet, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// The bytes consumed between `start` (an earlier [`Reader::position`]) and now; empty if
    /// `start` is not an earlier position.
    pub fn consumed_since(&self, start: usize) -> &'a [u8] {
        self.buf.get(start..self.pos).unwrap_or_default()
    }

    /// The error for a read of `n` bytes when only `remaining` are left.
    fn short(&self, n: usize, what: &'static str) -> Error {
        let needed = n - self.remaining();
        match self.input {
            Input::Prefix => Error::Incomplete { what, needed },
            Input::Complete => Error::Malformed {
                what,
                problem: Problem::Truncated { needed },
            },
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(self.short(n, what));
        }
        let end = self.pos + n;
        let bytes = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(bytes)
    }

    /// Everything left (possibly nothing).
    pub fn take_rest(&mut self) -> &'a [u8] {
        let rest = self.rest();
        self.pos = self.buf.len();
        rest
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Error> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, Error> {
        Ok(self.array::<1>(what)?[0])
    }

    /// A big-endian u16.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, Error> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// A big-endian u32.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// A big-endian u64.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, Error> {
        self.array(what).map(u64::from_be_bytes)
    }

    /// Bytes after a length prefix of `prefix_len` bytes (already read as `len`), at most `max`.
    /// On failure the prefix is given back, so nothing is consumed.
    fn prefixed(
        &mut self,
        start: usize,
        len: usize,
        max: usize,
        what: &'static str,
    ) -> Result<&'a [u8], Error> {
        if len > max {
            self.pos = start;
            return Err(Error::Malformed {
                what,
                problem: Problem::TooLong { len, max },
            });
        }
        self.take(len, what).inspect_err(|_| self.pos = start)
    }

    /// A field with a one-byte length prefix, at most `max` bytes long.
    pub fn u8_prefixed(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let len = usize::from(self.u8(what)?);
        self.prefixed(start, len, max, what)
    }

    /// A field with a big-endian u16 length prefix, at most `max` bytes long.
    pub fn u16_prefixed(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let len = usize::from(self.u16(what)?);
        self.prefixed(start, len, max, what)
    }

    /// A field with a big-endian u32 length prefix, at most `max` bytes long.
    pub fn u32_prefixed(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let len = self.u32(what)?;
        // A length that does not even fit in usize is over any maximum.
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        self.prefixed(start, len, max, what)
    }

    /// Consumes everything left, which must be zero bytes (padding).
    pub fn zero_padding(&mut self, what: &'static str) -> Result<(), Error> {
        if let Some(i) = self.rest().iter().position(|&b| b != 0) {
            return Err(Error::Malformed {
                what,
                problem: Problem::NonZeroPadding {
                    offset: self.pos + i,
                },
            });
        }
        self.pos = self.buf.len();
        Ok(())
    }

    /// Fails unless every byte has been consumed (no trailing bytes).
    pub fn expect_end(&self, what: &'static str) -> Result<(), Error> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(Error::Malformed {
                what,
                problem: Problem::TrailingBytes { extra },
            }),
        }
    }

    /// Ends reading: as [`Reader::expect_end`], consuming the reader.
    pub fn finish(self, what: &'static str) -> Result<(), Error> {
        self.expect_end(what)
    }
}
