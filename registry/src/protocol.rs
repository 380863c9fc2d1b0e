//! The `/braid/registry/1` wire codec, sans-IO: the messages relays, proxies and registries
//! exchange with a registry (or with a relay that caches the directory), as bytes in and typed
//! values out. It does not open streams, keep time or decide anything; `service` does that.
//!
//! One request and one response per stream, each one frame:
//!
//! ```text
//! version u8 (= 1) | kind u8 | body length u32 big-endian | body
//! ```
//!
//! The header is checked before the body is read ([`decode_header`]): the version, and the body
//! length against the limit of its kind ([`max_body_len`]), so a reader allocates nothing for a
//! frame it will refuse. Request kinds are below `0x80`, response kinds from `0x80` up; a kind
//! this build does not know is kept as a value ([`UnknownMessage`]) with a small body limit.
//!
//! | kind | message | sender | body |
//! |---|---|---|---|
//! | `0x01` | [`Request::Publish`] | relay | a `SignedDescriptor` encoding (at most 4237 bytes) |
//! | `0x02` | [`Request::GetSnapshot`] | anyone | `newer_than` u64 (unix seconds; 0 = any) |
//! | `0x03` | [`Request::CoSign`] | the building registry | a `SignedSnapshot` encoding |
//! | `0x04` | [`Request::Offer`] | the building registry | a `SignedSnapshot` encoding |
//! | `0x81` | [`Response::Published`] | registry | empty |
//! | `0x82` | [`Response::Refused`] | any server | code u8, text length u16 (at most 256), UTF-8 text |
//! | `0x83` | [`Response::Snapshot`] | registry, relay | a `SignedSnapshot` encoding |
//! | `0x84` | [`Response::NotModified`] | registry, relay | empty |
//! | `0x85` | [`Response::Unavailable`] | registry, relay | empty |
//! | `0x86` | [`Response::Signature`] | co-signing registry | signer u8, Ed25519 signature (64) |
//! | `0x87` | [`Response::Accepted`] | registry | empty |
//!
//! Decoding a whole frame ([`Request::decode`], [`Response::decode`]) gives
//! [`ProtocolError::Incomplete`] for every strict prefix of a valid frame and refuses trailing
//! bytes. A body is complete by construction (its length is in the header), so a body that is
//! too short for its fields is `Malformed`, not `Incomplete`. Descriptors are decoded with their
//! signature checked ([`SignedDescriptor::decode`]); snapshots only structurally
//! ([`SignedSnapshot::decode`]): verifying one needs a registry set and a clock.

mod error;
mod response;
#[cfg(test)]
mod tests;

use braid_codec::{Reader, Writer};
use braid_directory::descriptor::{MAX_ENCODED_LEN, SIGNATURE_LEN};
use braid_directory::snapshot::MAX_SNAPSHOT_LEN;
use braid_directory::{SignedDescriptor, SignedSnapshot};

pub use error::ProtocolError;
pub use response::{Refusal, RefuseCode, Response};

/// The protocol name on the node's swarm.
pub const PROTOCOL_NAME: &str = "/braid/registry/1";

/// The frame version this build writes and reads (the first byte of every frame).
pub const PROTOCOL_VERSION: u8 = 1;

/// Bytes in a frame header: version, kind, body length (u32).
pub const HEADER_LEN: usize = 6;

/// The longest refusal text, in UTF-8 bytes (longer text is cut at a character boundary).
pub const MAX_REFUSAL_TEXT_LEN: usize = 256;

/// The longest body of a message kind this build does not know.
pub const MAX_UNKNOWN_BODY_LEN: usize = 4096;

/// The longest body of any frame: a snapshot of
/// [`MAX_SNAPSHOT_DESCRIPTORS`](braid_directory::snapshot::MAX_SNAPSHOT_DESCRIPTORS) maximal descriptors
/// and every registry signature ([`MAX_SNAPSHOT_LEN`], about 42 MB; 10 000 typical relays take
/// about 2.5 MB).
pub const MAX_BODY_LEN: usize = MAX_SNAPSHOT_LEN;

/// The longest frame, header included.
pub const MAX_FRAME_LEN: usize = HEADER_LEN + MAX_BODY_LEN;

/// Request kinds (below `0x80`).
pub mod kind {
    /// [`super::Request::Publish`].
    pub const PUBLISH: u8 = 0x01;
    /// [`super::Request::GetSnapshot`].
    pub const GET_SNAPSHOT: u8 = 0x02;
    /// [`super::Request::CoSign`].
    pub const CO_SIGN: u8 = 0x03;
    /// [`super::Request::Offer`].
    pub const OFFER: u8 = 0x04;
    /// [`super::Response::Published`].
    pub const PUBLISHED: u8 = 0x81;
    /// [`super::Response::Refused`].
    pub const REFUSED: u8 = 0x82;
    /// [`super::Response::Snapshot`].
    pub const SNAPSHOT: u8 = 0x83;
    /// [`super::Response::NotModified`].
    pub const NOT_MODIFIED: u8 = 0x84;
    /// [`super::Response::Unavailable`].
    pub const UNAVAILABLE: u8 = 0x85;
    /// [`super::Response::Signature`].
    pub const SIGNATURE: u8 = 0x86;
    /// [`super::Response::Accepted`].
    pub const ACCEPTED: u8 = 0x87;
    /// Kinds from this value up are responses.
    pub const FIRST_RESPONSE: u8 = 0x80;
}

/// The longest body a frame of `kind` may have. Fixed-size bodies (`GetSnapshot`, `Signature`,
/// the empty ones) must have exactly this length.
pub fn max_body_len(kind: u8) -> usize {
    match kind {
        kind::PUBLISH => MAX_ENCODED_LEN,
        kind::GET_SNAPSHOT => 8,
        kind::CO_SIGN | kind::OFFER | kind::SNAPSHOT => MAX_SNAPSHOT_LEN,
        kind::PUBLISHED | kind::NOT_MODIFIED | kind::UNAVAILABLE | kind::ACCEPTED => 0,
        kind::REFUSED => 1 + 2 + MAX_REFUSAL_TEXT_LEN,
        kind::SIGNATURE => 1 + SIGNATURE_LEN,
        _ => MAX_UNKNOWN_BODY_LEN,
    }
}

/// A checked frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The message kind.
    pub kind: u8,
    /// The body length, at most [`max_body_len`] of the kind.
    pub body_len: usize,
}

impl Header {
    /// Whether the kind is a response kind (`0x80` and up).
    pub fn is_response(&self) -> bool {
        self.kind >= kind::FIRST_RESPONSE
    }
}

/// Reads and checks the header at the start of `bytes` (more bytes may follow):
/// [`ProtocolError::Incomplete`] if fewer than [`HEADER_LEN`] bytes,
/// [`ProtocolError::BadVersion`], [`ProtocolError::Oversized`] for a body longer than its
/// kind allows.
pub fn decode_header(bytes: &[u8]) -> Result<Header, ProtocolError> {
    let codec = ProtocolError::from_codec;
    let header = Reader::new(bytes)
        .array::<HEADER_LEN>("registry frame header")
        .map_err(codec)?;
    let mut h = Reader::complete(&header);
    let version = h.u8("registry frame version").map_err(codec)?;
    let kind = h.u8("registry frame kind").map_err(codec)?;
    let len = h.u32("registry frame body length").map_err(codec)?;
    if version != PROTOCOL_VERSION {
        return Err(ProtocolError::BadVersion(version));
    }
    let body_len = usize::try_from(len).unwrap_or(usize::MAX);
    let max = max_body_len(kind);
    if body_len > max {
        return Err(ProtocolError::Oversized {
            kind,
            len: body_len,
            max,
        });
    }
    Ok(Header { kind, body_len })
}

/// Splits a whole frame into its checked header and its body: [`ProtocolError::Incomplete`]
/// for a strict prefix, [`ProtocolError::Malformed`] for trailing bytes.
fn split_frame(frame: &[u8]) -> Result<(Header, &[u8]), ProtocolError> {
    let header = decode_header(frame)?;
    let codec = ProtocolError::from_codec;
    let mut r = Reader::new(frame);
    r.take(HEADER_LEN, "registry frame header").map_err(codec)?;
    let body = r
        .take(header.body_len, "registry frame body")
        .map_err(codec)?;
    r.finish("trailing bytes after the frame").map_err(codec)?;
    Ok((header, body))
}

/// Writes a frame. `body` must be within [`max_body_len`] of `kind` (every message this module
/// builds is).
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut w = Writer::with_capacity(HEADER_LEN + body.len());
    w.u8(PROTOCOL_VERSION);
    w.u8(kind);
    // Every body is at most MAX_BODY_LEN (about 42 MB), which fits a u32.
    w.u32(body.len() as u32);
    w.bytes(body);
    w.finish()
}

/// A message kind this build does not know, kept with its body (at most
/// [`MAX_UNKNOWN_BODY_LEN`] bytes). Only decoding makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownMessage {
    kind: u8,
    body: Vec<u8>,
}

impl UnknownMessage {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

/// What a client asks a registry (or a relay's directory cache). The server answers each with
/// exactly one [`Response`] and closes the stream.
// A request is decoded, handled and dropped one at a time: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Sent by a relay, signed by itself: list me. The registry checks that the descriptor's
    /// identity is the requesting peer, that it is fresh, and that every address answers a
    /// dial-back, then proposes it to the replicated state. Answered with
    /// [`Response::Published`] or [`Response::Refused`].
    Publish(SignedDescriptor),
    /// Sent by anyone: the newest majority-signed snapshot, unless it was not issued after
    /// `newer_than` (then [`Response::NotModified`]). [`Response::Unavailable`] if the server
    /// holds none.
    GetSnapshot {
        /// `issued_at` of the snapshot the client holds (unix seconds), 0 for none.
        newer_than: u64,
    },
    /// Sent by the registry that built a snapshot to each other registry: sign this. The
    /// receiver signs only if it would have built the same snapshot (every listed descriptor is
    /// in its own state, valid and fresh; the lifetime is sane by its clock). Signatures carried
    /// along are ignored. Answered with [`Response::Signature`] or [`Response::Refused`].
    CoSign(SignedSnapshot),
    /// Sent by the registry that built a snapshot, once a majority signed it, to every other
    /// registry: serve this. The receiver verifies it and keeps it if it is newer than the one
    /// it serves. Answered with [`Response::Accepted`] or [`Response::Refused`].
    Offer(SignedSnapshot),
    /// A kind this build does not know; servers answer it with a refusal.
    Unknown(UnknownMessage),
}

impl Request {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Request::Publish(_) => kind::PUBLISH,
            Request::GetSnapshot { .. } => kind::GET_SNAPSHOT,
            Request::CoSign(_) => kind::CO_SIGN,
            Request::Offer(_) => kind::OFFER,
            Request::Unknown(u) => u.kind,
        }
    }

    /// The whole frame.
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            Request::Publish(d) => d.encode(),
            Request::GetSnapshot { newer_than } => newer_than.to_be_bytes().to_vec(),
            Request::CoSign(s) | Request::Offer(s) => s.encode(),
            Request::Unknown(u) => u.body.clone(),
        };
        frame(self.kind(), &body)
    }

    /// Decodes exactly one whole frame (see the module doc for the errors).
    pub fn decode(frame: &[u8]) -> Result<Self, ProtocolError> {
        let (header, body) = split_frame(frame)?;
        Self::decode_body(header, body)
    }

    /// Decodes the body of a frame whose header was read with [`decode_header`] (a driver
    /// reading from a stream does this). `body` must be exactly `header.body_len` bytes.
    pub fn decode_body(header: Header, body: &[u8]) -> Result<Self, ProtocolError> {
        check_body_len(header, body)?;
        if header.is_response() {
            return Err(ProtocolError::Malformed {
                what: "a response kind where a request was expected",
            });
        }
        match header.kind {
            kind::PUBLISH => SignedDescriptor::decode(body)
                .map(Request::Publish)
                .map_err(ProtocolError::BadDescriptor),
            kind::GET_SNAPSHOT => Ok(Request::GetSnapshot {
                newer_than: u64::from_be_bytes(fixed(body, "GetSnapshot body is not 8 bytes")?),
            }),
            kind::CO_SIGN => decode_snapshot(body).map(Request::CoSign),
            kind::OFFER => decode_snapshot(body).map(Request::Offer),
            other => Ok(Request::Unknown(UnknownMessage {
                kind: other,
                body: body.to_vec(),
            })),
        }
    }
}

/// `Malformed` unless `body` is exactly the header's length (a caller passing a wrong slice),
/// and `Oversized` for a hand-made header over its kind's limit.
fn check_body_len(header: Header, body: &[u8]) -> Result<(), ProtocolError> {
    let max = max_body_len(header.kind);
    if header.body_len > max {
        return Err(ProtocolError::Oversized {
            kind: header.kind,
            len: header.body_len,
            max,
        });
    }
    if body.len() != header.body_len {
        return Err(ProtocolError::Malformed {
            what: "body length differs from the header",
        });
    }
    Ok(())
}

/// A fixed-size body: `Malformed` naming `what` unless it is exactly `N` bytes.
fn fixed<const N: usize>(body: &[u8], what: &'static str) -> Result<[u8; N], ProtocolError> {
    let mut r = Reader::complete(body);
    let bytes = r.array(what).map_err(ProtocolError::from_codec)?;
    r.finish(what).map_err(ProtocolError::from_codec)?;
    Ok(bytes)
}

fn decode_snapshot(body: &[u8]) -> Result<SignedSnapshot, ProtocolError> {
    SignedSnapshot::decode(body).map_err(ProtocolError::BadSnapshot)
}
