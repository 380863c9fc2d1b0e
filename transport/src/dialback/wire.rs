//! The `/braid/dialback/1` wire format: one frame each way on a fresh stream. Sans-IO (no
//! tokio, no libp2p swarm): plain bytes in, typed values or a specific `WireError` out. It is
//! not the probe or the server; those are in the parent module.
//!
//! Every frame is a 4-byte header and a body:
//!
//! ```text
//! version u8 (= 1) | kind u8 | body length u16 big-endian (<= MAX_BODY_LEN) | body
//! ```
//!
//! | kind | name | sender | body |
//! |---|---|---|---|
//! | 1 | Request | requester | count u8 (1..=8), then per address: length u16 (1..=256), multiaddr bytes |
//! | 2 | Response | server | count u8 (0..=8, the request's count), then per address: verdict u8, reason length u16 (<= 256), reason UTF-8 |
//! | 3 | Error | server | reason length u16 (<= 256), reason UTF-8: the request as a whole was rejected |
//!
//! Verdicts: 0 Reachable (empty reason), 1 Unreachable, 2 Refused; other codes are kept as
//! `Verdict::Unknown`. Other frame kinds are kept as `Frame::Unknown`. A body must be used up
//! exactly; a frame shorter than its header says is `Incomplete`, so every strict prefix of a
//! valid frame is `Incomplete`.

use std::fmt;

use braid_codec::{Problem, Reader, Writer};
use multiaddr::Multiaddr;

/// The version byte this implementation speaks.
pub const VERSION: u8 = 1;
/// Bytes in a frame header: version, kind, body length.
pub const HEADER_LEN: usize = 4;
/// Most addresses one request may claim (a descriptor lists at most 8).
pub const MAX_ADDRESSES: usize = 8;
/// Longest address, in multiaddr bytes.
pub const MAX_ADDRESS_LEN: usize = 256;
/// Longest reason text, in UTF-8 bytes (longer text is cut at a character boundary).
pub const MAX_REASON_LEN: usize = 256;
/// Longest frame body: a full response (one count byte; per address a verdict byte, a 2-byte
/// length and a reason), which is longer than a full request.
pub const MAX_BODY_LEN: usize = 1 + MAX_ADDRESSES * (3 + MAX_REASON_LEN);

const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;
const KIND_ERROR: u8 = 3;

const VERDICT_REACHABLE: u8 = 0;
const VERDICT_UNREACHABLE: u8 = 1;
const VERDICT_REFUSED: u8 = 2;

/// Why a frame could not be read or built.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// More bytes are needed (a strict prefix of a frame).
    #[error("incomplete dial-back frame: {needed} more bytes needed")]
    Incomplete {
        /// How many more bytes are needed at least.
        needed: usize,
    },
    /// The version byte is not one this implementation speaks.
    #[error("unsupported dial-back version {0} (this node speaks version {VERSION})")]
    BadVersion(u8),
    /// The header announces a body longer than any valid frame.
    #[error("dial-back frame body of {len} bytes is over the limit of {max}")]
    Oversized {
        /// The announced body length.
        len: usize,
        /// `MAX_BODY_LEN`.
        max: usize,
    },
    /// A request claims no addresses or too many, or a response has too many verdicts.
    #[error("dial-back {what}: {count} given, {min}..={max} allowed")]
    Count {
        /// What was counted.
        what: &'static str,
        /// How many there were.
        count: usize,
        /// Fewest allowed.
        min: usize,
        /// Most allowed.
        max: usize,
    },
    /// An address is empty or longer than `MAX_ADDRESS_LEN` bytes.
    #[error("dial-back address {index}: {len} bytes, 1..={max} allowed")]
    AddressLength {
        /// Its position in the request (0-based).
        index: usize,
        /// Its length.
        len: usize,
        /// `MAX_ADDRESS_LEN`.
        max: usize,
    },
    /// An address's bytes are not a multiaddr.
    #[error("dial-back address {index} is not a valid multiaddr: {reason}")]
    BadAddress {
        /// Its position in the request (0-based).
        index: usize,
        /// What the multiaddr parser said.
        reason: String,
    },
    /// A field or the structure is malformed.
    #[error("malformed dial-back frame: {what}")]
    Malformed {
        /// Which field or rule.
        what: &'static str,
    },
}

/// A human-readable reason, at most `MAX_REASON_LEN` bytes of UTF-8. Reasons name the
/// requester's own claimed address and what happened to it; they never carry keys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason(String);

impl Reason {
    /// The text, cut at a character boundary to at most `MAX_REASON_LEN` bytes.
    pub fn new(text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.len() > MAX_REASON_LEN {
            let mut end = MAX_REASON_LEN;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Reason(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The server's answer for one claimed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A new connection to exactly this address reached the requester (its handshake proved
    /// the requester's peer id).
    Reachable,
    /// The server tried and failed (dial error, timeout).
    Unreachable(Reason),
    /// The server did not try (the address's IP is not the requester's, the server is busy, the
    /// address is of a kind it does not dial ...).
    Refused(Reason),
    /// A verdict code this implementation does not know; treat it as not confirmed.
    Unknown {
        /// The code.
        code: u8,
        /// Its reason text.
        reason: Reason,
    },
}

impl Verdict {
    /// Whether the address was confirmed.
    pub fn is_reachable(&self) -> bool {
        matches!(self, Verdict::Reachable)
    }

    fn code(&self) -> u8 {
        match self {
            Verdict::Reachable => VERDICT_REACHABLE,
            Verdict::Unreachable(_) => VERDICT_UNREACHABLE,
            Verdict::Refused(_) => VERDICT_REFUSED,
            Verdict::Unknown { code, .. } => *code,
        }
    }

    fn reason(&self) -> &str {
        match self {
            Verdict::Reachable => "",
            Verdict::Unreachable(r) | Verdict::Refused(r) | Verdict::Unknown { reason: r, .. } => {
                r.as_str()
            }
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Reachable => f.write_str("reachable"),
            Verdict::Unreachable(r) => write!(f, "unreachable: {r}"),
            Verdict::Refused(r) => write!(f, "refused: {r}"),
            Verdict::Unknown { code, reason } => write!(f, "unknown verdict {code}: {reason}"),
        }
    }
}

/// Sent by a requester: the addresses it claims, in the order it wants them answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    addresses: Vec<Multiaddr>,
}

impl Request {
    /// A request for 1..=`MAX_ADDRESSES` addresses of at most `MAX_ADDRESS_LEN` bytes each.
    pub fn new(addresses: Vec<Multiaddr>) -> Result<Self, WireError> {
        check_count("request addresses", addresses.len(), 1)?;
        for (index, address) in addresses.iter().enumerate() {
            let len = address.as_ref().len();
            if len == 0 || len > MAX_ADDRESS_LEN {
                return Err(WireError::AddressLength {
                    index,
                    len,
                    max: MAX_ADDRESS_LEN,
                });
            }
        }
        Ok(Request { addresses })
    }

    /// The claimed addresses.
    pub fn addresses(&self) -> &[Multiaddr] {
        &self.addresses
    }
}

/// Sent by the server: one verdict per requested address, in the request's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    verdicts: Vec<Verdict>,
}

impl Response {
    /// A response with at most `MAX_ADDRESSES` verdicts.
    pub fn new(verdicts: Vec<Verdict>) -> Result<Self, WireError> {
        check_count("response verdicts", verdicts.len(), 0)?;
        Ok(Response { verdicts })
    }

    /// The verdicts.
    pub fn verdicts(&self) -> &[Verdict] {
        &self.verdicts
    }

    /// The verdicts, owned.
    pub fn into_verdicts(self) -> Vec<Verdict> {
        self.verdicts
    }
}

/// A frame of a kind this implementation does not know, kept as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFrame {
    kind: u8,
    body: Vec<u8>,
}

impl UnknownFrame {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The body (at most `MAX_BODY_LEN` bytes).
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// One dial-back frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Requester to server: dial these addresses back.
    Request(Request),
    /// Server to requester: one verdict per address.
    Response(Response),
    /// Server to requester: the request was rejected as a whole (malformed, oversized, wrong
    /// kind); the requester should not retry the same bytes.
    Error(Reason),
    /// Any other kind; the server answers it with `Error`.
    Unknown(UnknownFrame),
}

/// Checks a header and returns the body length that follows it.
pub fn body_len(header: &[u8; HEADER_LEN]) -> Result<usize, WireError> {
    let mut r = Reader::complete(header);
    let version = r.u8("dial-back version").map_err(wire_error)?;
    if version != VERSION {
        return Err(WireError::BadVersion(version));
    }
    let _kind = r.u8("dial-back kind").map_err(wire_error)?;
    let len = usize::from(r.u16("dial-back body length").map_err(wire_error)?);
    if len > MAX_BODY_LEN {
        return Err(WireError::Oversized {
            len,
            max: MAX_BODY_LEN,
        });
    }
    Ok(len)
}

impl Frame {
    /// Reads one frame from the front of `buf`; returns it and the bytes it used. Bytes after
    /// the frame are left to the caller.
    pub fn decode(buf: &[u8]) -> Result<(Frame, usize), WireError> {
        // Check the version as soon as it is there, so garbage fails fast.
        if let Some(&v) = buf.first().filter(|&&v| v != VERSION) {
            return Err(WireError::BadVersion(v));
        }
        let mut r = Reader::new(buf);
        let header = r
            .array::<HEADER_LEN>("dial-back frame header")
            .map_err(wire_error)?;
        let len = body_len(&header)?;
        let body = r.take(len, "dial-back frame body").map_err(wire_error)?;
        let mut b = Reader::complete(body);
        let frame = match header[1] {
            KIND_REQUEST => Frame::Request(decode_request(&mut b)?),
            KIND_RESPONSE => Frame::Response(decode_response(&mut b)?),
            KIND_ERROR => Frame::Error(decode_reason(&mut b, "error reason")?),
            kind => Frame::Unknown(UnknownFrame {
                kind,
                body: b.take_rest().to_vec(),
            }),
        };
        b.finish("trailing bytes in the body").map_err(wire_error)?;
        Ok((frame, r.position()))
    }

    /// The frame's bytes. Every value a constructor accepts encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        // The constructors bound every field (at most `MAX_ADDRESSES` entries of at most 256
        // bytes), so no length-prefixed write below can be refused.
        let kind = match self {
            Frame::Request(request) => {
                w.u8(count_byte(request.addresses.len()));
                for address in &request.addresses {
                    let _ = w.u16_prefixed(address.as_ref(), MAX_ADDRESS_LEN, "request address");
                }
                KIND_REQUEST
            }
            Frame::Response(response) => {
                w.u8(count_byte(response.verdicts.len()));
                for verdict in &response.verdicts {
                    w.u8(verdict.code());
                    let _ = w.u16_prefixed(
                        verdict.reason().as_bytes(),
                        MAX_REASON_LEN,
                        "verdict reason",
                    );
                }
                KIND_RESPONSE
            }
            Frame::Error(reason) => {
                let _ = w.u16_prefixed(reason.as_str().as_bytes(), MAX_REASON_LEN, "error reason");
                KIND_ERROR
            }
            Frame::Unknown(unknown) => {
                w.bytes(&unknown.body);
                unknown.kind
            }
        };
        let body = w.finish();
        let mut out = Writer::with_capacity(HEADER_LEN + body.len());
        out.u8(VERSION);
        out.u8(kind);
        // Every body is bounded by the constructors (at most MAX_BODY_LEN < u16::MAX bytes).
        let _ = out.u16_prefixed(&body, MAX_BODY_LEN, "dial-back frame body");
        out.finish()
    }
}

/// A codec error as this format's error, keeping what was being read.
fn wire_error(e: braid_codec::Error) -> WireError {
    match e.needed() {
        Some(needed) => WireError::Incomplete { needed },
        None => WireError::Malformed { what: e.what() },
    }
}

fn check_count(what: &'static str, count: usize, min: usize) -> Result<(), WireError> {
    if count < min || count > MAX_ADDRESSES {
        return Err(WireError::Count {
            what,
            count,
            min,
            max: MAX_ADDRESSES,
        });
    }
    Ok(())
}

/// A count already checked against `MAX_ADDRESSES` (8) fits a byte.
fn count_byte(count: usize) -> u8 {
    u8::try_from(count).unwrap_or(u8::MAX)
}

fn decode_request(r: &mut Reader<'_>) -> Result<Request, WireError> {
    let count = usize::from(r.u8("request address count").map_err(wire_error)?);
    check_count("request addresses", count, 1)?;
    let mut addresses = Vec::with_capacity(count);
    for index in 0..count {
        let bytes = r
            .u16_prefixed(MAX_ADDRESS_LEN, "request address")
            .map_err(|e| match e {
                braid_codec::Error::Malformed {
                    problem: Problem::TooLong { len, max },
                    ..
                } => WireError::AddressLength { index, len, max },
                e => wire_error(e),
            })?;
        if bytes.is_empty() {
            return Err(WireError::AddressLength {
                index,
                len: 0,
                max: MAX_ADDRESS_LEN,
            });
        }
        let address = Multiaddr::try_from(bytes.to_vec()).map_err(|e| WireError::BadAddress {
            index,
            reason: e.to_string(),
        })?;
        addresses.push(address);
    }
    Ok(Request { addresses })
}

fn decode_response(r: &mut Reader<'_>) -> Result<Response, WireError> {
    let count = usize::from(r.u8("response verdict count").map_err(wire_error)?);
    check_count("response verdicts", count, 0)?;
    let mut verdicts = Vec::with_capacity(count);
    for _ in 0..count {
        let code = r.u8("verdict").map_err(wire_error)?;
        let reason = decode_reason(r, "verdict reason")?;
        verdicts.push(match code {
            VERDICT_REACHABLE if !reason.0.is_empty() => {
                return Err(WireError::Malformed {
                    what: "a Reachable verdict with a reason",
                });
            }
            VERDICT_REACHABLE => Verdict::Reachable,
            VERDICT_UNREACHABLE => Verdict::Unreachable(reason),
            VERDICT_REFUSED => Verdict::Refused(reason),
            code => Verdict::Unknown { code, reason },
        });
    }
    Ok(Response { verdicts })
}

fn decode_reason(r: &mut Reader<'_>, what: &'static str) -> Result<Reason, WireError> {
    let bytes = r.u16_prefixed(MAX_REASON_LEN, what).map_err(|e| match e {
        braid_codec::Error::Malformed {
            problem: Problem::TooLong { .. },
            ..
        } => WireError::Malformed {
            what: "reason longer than 256 bytes",
        },
        e => wire_error(e),
    })?;
    let text = std::str::from_utf8(bytes).map_err(|_| WireError::Malformed {
        what: "reason is not UTF-8",
    })?;
    Ok(Reason(text.to_owned()))
}

#[cfg(test)]
mod tests;
