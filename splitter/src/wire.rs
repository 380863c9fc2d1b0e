//! The fragment wire format: ids, flags, the reader (parse, then verify, then decode) and the
//! writer (encode and tag).
//!
//! ```text
//! [version u8 = 1][flags u8][stream id u32][seq u64][len u16][payload: len bytes][tag: 32 bytes]
//! ```
//!
//! All integers are big-endian. The tag is the BLAKE3 keyed hash of the header and payload. The
//! reader is a typestate: [`RawFragment`] (framing only: version and length), [`Verified`] (the
//! tag matched; the only way to get one) and [`Fragment`] (flags and payload interpreted). So
//! nothing but the frame length is used before the tag is checked. Not here: sequencing,
//! windows, acks as a protocol (see [`crate::sender`] and [`crate::receiver`]).

use std::fmt;

use crate::error::Error;
use crate::key::FragmentKey;

#[cfg(test)]
mod tests;

/// The only wire version this crate speaks.
pub const VERSION: u8 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 16;
/// Bytes of the tag (a full BLAKE3 output).
pub const TAG_LEN: usize = 32;
/// Bytes a fragment adds around its payload.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;
/// The largest payload the 16-bit length field can describe.
pub const MAX_WIRE_PAYLOAD: usize = u16::MAX as usize;
/// Payload bytes of an ACK fragment: echo (u64) and selective-ack bitmap (u64).
pub const ACK_BODY_LEN: usize = 16;
/// Total bytes of an ACK fragment.
pub const ACK_FRAGMENT_LEN: usize = OVERHEAD + ACK_BODY_LEN;
/// Payload bytes before the shard in an ERASURE fragment: k, n, index, reserved (u8 each),
/// message length (u32).
pub const ERASURE_HEADER_LEN: usize = 8;

/// Identifies a braided stream; chosen by the opener, carried in every fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Identifies a strand (one onion circuit of a braid) locally; never on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StrandId(pub u32);

impl fmt::Display for StrandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The flags byte. Exactly one kind bit (DATA, ACK, ERASURE) is set; FIN may accompany DATA or
/// ERASURE; every other bit is reserved and rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    /// Stream bytes at position `seq`.
    pub const DATA: u8 = 0x01;
    /// The stream ends with this fragment (or erasure message).
    pub const FIN: u8 = 0x02;
    /// An acknowledgement travelling against the data direction.
    pub const ACK: u8 = 0x04;
    /// One shard of an erasure-coded message.
    pub const ERASURE: u8 = 0x08;
    /// All defined bits.
    pub const KNOWN: u8 = Self::DATA | Self::FIN | Self::ACK | Self::ERASURE;
}

/// Why bytes are not a valid fragment. [`WireError::Incomplete`] means "wait for more bytes";
/// every other variant means the bytes are not a fragment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The buffer ends before the fragment does.
    #[error("incomplete fragment: need {needed} bytes")]
    Incomplete {
        /// The total length needed (a lower bound while the header is incomplete).
        needed: usize,
    },
    /// The version byte is not [`VERSION`].
    #[error("unsupported fragment version {0}")]
    UnsupportedVersion(u8),
    /// Bytes after a complete fragment where exactly one was expected.
    #[error("{extra} trailing bytes after the fragment")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// The tag does not match: forged, altered, or tagged with another key.
    #[error("fragment tag does not verify")]
    TagMismatch,
    /// Reserved flag bits are set.
    #[error("unknown flag bits in {0:#04x}")]
    UnknownFlags(u8),
    /// Not exactly one of DATA, ACK, ERASURE.
    #[error("flags {0:#04x} do not name exactly one fragment kind")]
    InvalidKind(u8),
    /// FIN on an ACK fragment.
    #[error("FIN flag on an ACK fragment")]
    FinOnAck,
    /// An ACK payload that is not [`ACK_BODY_LEN`] bytes.
    #[error("ACK payload of {0} bytes (expected 16)")]
    AckLength(usize),
    /// An ERASURE payload too short for its header and a 2-byte shard.
    #[error("ERASURE payload of {0} bytes is too short")]
    ErasureTooShort(usize),
    /// Erasure parameters outside `1 <= k < n`, `index < n`.
    #[error("invalid erasure parameters k={k} n={n} index={index}")]
    ErasureParams {
        /// Data shards.
        k: u8,
        /// Total shards.
        n: u8,
        /// This shard.
        index: u8,
    },
    /// The reserved erasure byte is not zero.
    #[error("reserved erasure byte is {0:#04x}")]
    ErasureReserved(u8),
    /// A shard of odd length (Reed-Solomon shards are even).
    #[error("erasure shard of odd length {0}")]
    OddShard(usize),
    /// The message length exceeds what k shards hold.
    #[error("erasure message length {message_len} exceeds the {capacity} bytes of k shards")]
    MessageLength {
        /// Claimed message length.
        message_len: u32,
        /// k times the shard length.
        capacity: usize,
    },
    /// A shard's sequence number is smaller than its index (the group would start before 0).
    #[error("erasure shard {index} at sequence number {seq}")]
    ErasureBase {
        /// The sequence number.
        seq: u64,
        /// The shard index.
        index: u8,
    },
}

impl WireError {
    /// Whether more bytes could make this a valid fragment.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Self::Incomplete { .. })
    }
}

/// A complete frame whose version and length are checked and whose tag is not (yet).
#[derive(Debug, Clone, Copy)]
pub struct RawFragment<'a> {
    frame: &'a [u8],
}

impl<'a> RawFragment<'a> {
    /// Reads one fragment from the front of `buf`, returning it and the bytes after it.
    pub fn read(buf: &'a [u8]) -> Result<(Self, &'a [u8]), WireError> {
        match buf.first() {
            None => return Err(WireError::Incomplete { needed: HEADER_LEN }),
            Some(&v) if v != VERSION => return Err(WireError::UnsupportedVersion(v)),
            Some(_) => {}
        }
        let Some(len_bytes) = buf.get(14..16) else {
            return Err(WireError::Incomplete { needed: HEADER_LEN });
        };
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        let total = OVERHEAD + len;
        if buf.len() < total {
            return Err(WireError::Incomplete { needed: total });
        }
        let (frame, rest) = buf.split_at(total);
        Ok((Self { frame }, rest))
    }

    /// Parses `buf` as exactly one fragment (a carrier message holds one): trailing bytes are
    /// rejected.
    pub fn parse_exact(buf: &'a [u8]) -> Result<Self, WireError> {
        let (raw, rest) = Self::read(buf)?;
        if !rest.is_empty() {
            return Err(WireError::TrailingBytes { extra: rest.len() });
        }
        Ok(raw)
    }

    /// The stream id the fragment claims, for routing it to its stream. Unauthenticated.
    pub fn stream_id(&self) -> StreamId {
        StreamId(u32::from_be_bytes(array(&self.frame[2..6])))
    }

    /// The sequence number the fragment claims. Unauthenticated.
    pub fn seq(&self) -> u64 {
        u64::from_be_bytes(array(&self.frame[6..14]))
    }

    /// The flags the fragment claims, for routing ACKs to the sender and the rest to the
    /// receiver. Unauthenticated.
    pub fn flags(&self) -> Flags {
        Flags(self.frame[1])
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.frame
    }

    /// Checks the tag with `key` in constant time.
    pub fn verify(self, key: &FragmentKey) -> Result<Verified<'a>, WireError> {
        let (authenticated, tag) = self.frame.split_at(self.frame.len() - TAG_LEN);
        if key.verify(authenticated, &array(tag)) {
            Ok(Verified { frame: self.frame })
        } else {
            Err(WireError::TagMismatch)
        }
    }
}

/// A frame whose tag verified: proof that [`Verified::decode`] only interprets authentic bytes.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    frame: &'a [u8],
}

impl<'a> Verified<'a> {
    /// Interprets flags and payload.
    pub fn decode(self) -> Result<Fragment<'a>, WireError> {
        let h = self.frame;
        let flags = h[1];
        let stream = StreamId(u32::from_be_bytes(array(&h[2..6])));
        let seq = u64::from_be_bytes(array(&h[6..14]));
        let payload = &h[HEADER_LEN..h.len() - TAG_LEN];
        if flags & !Flags::KNOWN != 0 {
            return Err(WireError::UnknownFlags(flags));
        }
        let fin = flags & Flags::FIN != 0;
        match flags & !Flags::FIN {
            Flags::DATA => Ok(Fragment::Data(Data {
                stream,
                seq,
                fin,
                payload,
            })),
            Flags::ACK if fin => Err(WireError::FinOnAck),
            Flags::ACK => {
                if payload.len() != ACK_BODY_LEN {
                    return Err(WireError::AckLength(payload.len()));
                }
                Ok(Fragment::Ack(Ack {
                    stream,
                    cumulative: seq,
                    echo: u64::from_be_bytes(array(&payload[..8])),
                    sack: u64::from_be_bytes(array(&payload[8..])),
                }))
            }
            Flags::ERASURE => decode_shard(stream, seq, fin, payload).map(Fragment::Erasure),
            _ => Err(WireError::InvalidKind(flags)),
        }
    }
}

/// Decodes an ERASURE payload.
fn decode_shard(
    stream: StreamId,
    seq: u64,
    fin: bool,
    payload: &[u8],
) -> Result<Shard<'_>, WireError> {
    if payload.len() < ERASURE_HEADER_LEN + 2 {
        return Err(WireError::ErasureTooShort(payload.len()));
    }
    let (k, n, index) = (payload[0], payload[1], payload[2]);
    if k == 0 || k >= n || index >= n {
        return Err(WireError::ErasureParams { k, n, index });
    }
    if payload[3] != 0 {
        return Err(WireError::ErasureReserved(payload[3]));
    }
    let message_len = u32::from_be_bytes(array(&payload[4..8]));
    let shard = &payload[ERASURE_HEADER_LEN..];
    if !shard.len().is_multiple_of(2) {
        return Err(WireError::OddShard(shard.len()));
    }
    let capacity = shard.len() * usize::from(k);
    if message_len as usize > capacity {
        return Err(WireError::MessageLength {
            message_len,
            capacity,
        });
    }
    if seq < u64::from(index) {
        return Err(WireError::ErasureBase { seq, index });
    }
    Ok(Shard {
        stream,
        seq,
        fin,
        k,
        n,
        index,
        message_len,
        shard,
    })
}

/// The first `N` bytes of `bytes` as an array; callers pass slices of exactly `N` bytes cut
/// from ranges already bounds-checked, so the zero padding is never used.
fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// An authenticated, decoded fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment<'a> {
    /// Stream bytes (sent by the data sender; the receiver buffers and delivers them in order).
    Data(Data<'a>),
    /// An acknowledgement (sent by the receiver on the strand the data came in on; the sender
    /// stops resending what it covers).
    Ack(Ack),
    /// One shard of an erasure-coded message (the receiver rebuilds the message from any k).
    Erasure(Shard<'a>),
}

/// A DATA fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// The stream.
    pub stream: StreamId,
    /// Position in the stream's fragment sequence (0, 1, 2, ...).
    pub seq: u64,
    /// Whether the stream ends after this fragment.
    pub fin: bool,
    /// The stream bytes.
    pub payload: &'a [u8],
}

/// An ACK fragment. On the wire its header `seq` field holds `cumulative`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// The stream.
    pub stream: StreamId,
    /// Every fragment below this sequence number was received.
    pub cumulative: u64,
    /// The sequence number of the fragment that triggered this ack (for the RTT sample of the
    /// strand it arrived on).
    pub echo: u64,
    /// Bit `i` set: fragment `cumulative + 1 + i` was received too.
    pub sack: u64,
}

/// An ERASURE fragment: shard `index` of an n-shard message starting at `seq - index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard<'a> {
    /// The stream.
    pub stream: StreamId,
    /// Sequence number of this shard; the message occupies `seq - index .. seq - index + n`.
    pub seq: u64,
    /// Whether the stream ends after the message (set on every shard).
    pub fin: bool,
    /// Shards needed to rebuild.
    pub k: u8,
    /// Shards in total.
    pub n: u8,
    /// This shard's index (`< k`: original data, else recovery).
    pub index: u8,
    /// Length of the message before padding.
    pub message_len: u32,
    /// The shard bytes (even length).
    pub shard: &'a [u8],
}

impl Fragment<'_> {
    /// Appends the tagged wire form to `out` and returns its length.
    pub fn encode(&self, key: &FragmentKey, out: &mut Vec<u8>) -> Result<usize, Error> {
        let start = out.len();
        match *self {
            Fragment::Data(d) => {
                let flags = Flags::DATA | if d.fin { Flags::FIN } else { 0 };
                put_header(out, flags, d.stream, d.seq, d.payload.len())?;
                out.extend_from_slice(d.payload);
            }
            Fragment::Ack(a) => out.extend_from_slice(&a.encode(key)),
            Fragment::Erasure(s) => {
                let flags = Flags::ERASURE | if s.fin { Flags::FIN } else { 0 };
                put_header(
                    out,
                    flags,
                    s.stream,
                    s.seq,
                    ERASURE_HEADER_LEN + s.shard.len(),
                )?;
                out.extend_from_slice(&[s.k, s.n, s.index, 0]);
                out.extend_from_slice(&s.message_len.to_be_bytes());
                out.extend_from_slice(s.shard);
            }
        }
        if !matches!(self, Fragment::Ack(_)) {
            let tag = key.tag(&out[start..]);
            out.extend_from_slice(&tag);
        }
        Ok(out.len() - start)
    }
}

impl Ack {
    /// The tagged wire form (fixed size, no allocation).
    pub fn encode(&self, key: &FragmentKey) -> [u8; ACK_FRAGMENT_LEN] {
        let mut out = [0; ACK_FRAGMENT_LEN];
        out[0] = VERSION;
        out[1] = Flags::ACK;
        out[2..6].copy_from_slice(&self.stream.0.to_be_bytes());
        out[6..14].copy_from_slice(&self.cumulative.to_be_bytes());
        out[14..16].copy_from_slice(&(ACK_BODY_LEN as u16).to_be_bytes());
        out[16..24].copy_from_slice(&self.echo.to_be_bytes());
        out[24..32].copy_from_slice(&self.sack.to_be_bytes());
        let tag = key.tag(&out[..HEADER_LEN + ACK_BODY_LEN]);
        out[HEADER_LEN + ACK_BODY_LEN..].copy_from_slice(&tag);
        out
    }
}

/// Appends a header.
fn put_header(
    out: &mut Vec<u8>,
    flags: u8,
    stream: StreamId,
    seq: u64,
    len: usize,
) -> Result<(), Error> {
    let len = u16::try_from(len).map_err(|_| Error::FragmentTooLong { len })?;
    out.reserve(HEADER_LEN + usize::from(len) + TAG_LEN);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&stream.0.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    Ok(())
}

/// Reads, verifies and decodes exactly one fragment.
pub fn open<'a>(key: &FragmentKey, bytes: &'a [u8]) -> Result<Fragment<'a>, WireError> {
    RawFragment::parse_exact(bytes)?.verify(key)?.decode()
}
