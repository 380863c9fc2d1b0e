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

use braid_codec::{Reader, Writer};

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
    /// A field could not be read (`what` names it). The framing checks before each read make
    /// this unreachable today; it keeps a codec error's context should that change.
    #[error("malformed fragment {what}")]
    Malformed {
        /// The field.
        what: &'static str,
    },
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

impl WireError {
    /// A codec error from reading `input`: running out is `Incomplete` with the total length
    /// needed (`input` plus the codec's shortfall), anything else `Malformed` naming the field.
    fn read(input: &[u8]) -> impl Fn(braid_codec::Error) -> WireError {
        move |e| match e.needed() {
            Some(more) => WireError::Incomplete {
                needed: input.len() + more,
            },
            None => WireError::Malformed { what: e.what() },
        }
    }
}

/// The fixed header's fields, read once when a frame is framed. Unauthenticated until the frame
/// is [`Verified`].
#[derive(Debug, Clone, Copy)]
struct Header {
    flags: u8,
    stream: StreamId,
    seq: u64,
    payload_len: usize,
}

/// A complete frame whose version and length are checked and whose tag is not (yet).
#[derive(Debug, Clone, Copy)]
pub struct RawFragment<'a> {
    frame: &'a [u8],
    header: Header,
}

impl<'a> RawFragment<'a> {
    /// Reads one fragment from the front of `buf`, returning it and the bytes after it.
    pub fn read(buf: &'a [u8]) -> Result<(Self, &'a [u8]), WireError> {
        // The version is judged as soon as it is there, so garbage fails fast.
        if let Some(&v) = buf.first()
            && v != VERSION
        {
            return Err(WireError::UnsupportedVersion(v));
        }
        let mut r = Reader::new(buf);
        let head = r
            .array::<HEADER_LEN>("fragment header")
            .map_err(WireError::read(buf))?;
        let mut h = Reader::complete(&head);
        let _version = h.u8("fragment version").map_err(WireError::read(&head))?;
        let flags = h.u8("fragment flags").map_err(WireError::read(&head))?;
        let stream = StreamId(
            h.u32("fragment stream id")
                .map_err(WireError::read(&head))?,
        );
        let seq = h.u64("fragment seq").map_err(WireError::read(&head))?;
        let payload_len = usize::from(h.u16("fragment length").map_err(WireError::read(&head))?);
        h.finish("fragment header")
            .map_err(WireError::read(&head))?;
        r.take(payload_len + TAG_LEN, "fragment payload and tag")
            .map_err(WireError::read(buf))?;
        let header = Header {
            flags,
            stream,
            seq,
            payload_len,
        };
        let frame = r.consumed_since(0);
        Ok((Self { frame, header }, r.rest()))
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
        self.header.stream
    }

    /// The sequence number the fragment claims. Unauthenticated.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// The flags the fragment claims, for routing ACKs to the sender and the rest to the
    /// receiver. Unauthenticated.
    pub fn flags(&self) -> Flags {
        Flags(self.header.flags)
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.frame
    }

    /// Checks the tag with `key` in constant time.
    pub fn verify(self, key: &FragmentKey) -> Result<Verified<'a>, WireError> {
        let mut r = Reader::complete(self.frame);
        let authenticated = r
            .take(
                HEADER_LEN + self.header.payload_len,
                "fragment header and payload",
            )
            .map_err(WireError::read(self.frame))?;
        let tag = r
            .array::<TAG_LEN>("fragment tag")
            .map_err(WireError::read(self.frame))?;
        r.finish("fragment").map_err(WireError::read(self.frame))?;
        if key.verify(authenticated, &tag) {
            Ok(Verified {
                frame: self.frame,
                header: self.header,
            })
        } else {
            Err(WireError::TagMismatch)
        }
    }
}

/// A frame whose tag verified: proof that [`Verified::decode`] only interprets authentic bytes.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'a> {
    frame: &'a [u8],
    header: Header,
}

impl<'a> Verified<'a> {
    /// Interprets flags and payload.
    pub fn decode(self) -> Result<Fragment<'a>, WireError> {
        let Header {
            flags,
            stream,
            seq,
            payload_len,
        } = self.header;
        let mut r = Reader::complete(self.frame);
        r.take(HEADER_LEN, "fragment header")
            .map_err(WireError::read(self.frame))?;
        let payload = r
            .take(payload_len, "fragment payload")
            .map_err(WireError::read(self.frame))?;
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
                let mut p = Reader::complete(payload);
                let echo = p.u64("ack echo").map_err(WireError::read(payload))?;
                let sack = p.u64("ack bitmap").map_err(WireError::read(payload))?;
                Ok(Fragment::Ack(Ack {
                    stream,
                    cumulative: seq,
                    echo,
                    sack,
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
    let mut r = Reader::complete(payload);
    let [k, n, index, reserved] = r
        .array("erasure header")
        .map_err(WireError::read(payload))?;
    if k == 0 || k >= n || index >= n {
        return Err(WireError::ErasureParams { k, n, index });
    }
    if reserved != 0 {
        return Err(WireError::ErasureReserved(reserved));
    }
    let message_len = r
        .u32("erasure message length")
        .map_err(WireError::read(payload))?;
    let shard = r.take_rest();
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
        let mut w = Writer::from_vec(std::mem::take(out));
        let written = self.write(key, &mut w);
        *out = w.finish();
        written?;
        Ok(out.len() - start)
    }

    /// Writes the tagged wire form after what `w` holds.
    fn write(&self, key: &FragmentKey, w: &mut Writer) -> Result<(), Error> {
        let start = w.len();
        match *self {
            Fragment::Data(d) => {
                let flags = Flags::DATA | if d.fin { Flags::FIN } else { 0 };
                put_header(w, flags, d.stream, d.seq, d.payload.len())?;
                w.bytes(d.payload);
            }
            Fragment::Ack(a) => w.bytes(&a.encode(key)),
            Fragment::Erasure(s) => {
                let flags = Flags::ERASURE | if s.fin { Flags::FIN } else { 0 };
                put_header(
                    w,
                    flags,
                    s.stream,
                    s.seq,
                    ERASURE_HEADER_LEN + s.shard.len(),
                )?;
                w.bytes(&[s.k, s.n, s.index, 0]);
                w.u32(s.message_len);
                w.bytes(s.shard);
            }
        }
        if !matches!(self, Fragment::Ack(_)) {
            let tag = key.tag(w.as_bytes().get(start..).unwrap_or_default());
            w.bytes(&tag);
        }
        Ok(())
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
    w: &mut Writer,
    flags: u8,
    stream: StreamId,
    seq: u64,
    len: usize,
) -> Result<(), Error> {
    let len = u16::try_from(len).map_err(|_| Error::FragmentTooLong { len })?;
    w.reserve(HEADER_LEN + usize::from(len) + TAG_LEN);
    w.u8(VERSION);
    w.u8(flags);
    w.u32(stream.0);
    w.u64(seq);
    w.u16(len);
    Ok(())
}

/// Reads, verifies and decodes exactly one fragment.
pub fn open<'a>(key: &FragmentKey, bytes: &'a [u8]) -> Result<Fragment<'a>, WireError> {
    RawFragment::parse_exact(bytes)?.verify(key)?.decode()
}
