//! The `/braid/raft/1` frame codec, sans-IO: one length-prefixed frame each way per stream.
//!
//! ```text
//! frame = version u8 (1) | kind u8 | body length u32 BE (<= the reader's limit) | body
//! kind  = 1 Request (body: postcard of `wire::RpcRequest`, sender -> receiver)
//!       | 2 Response (body: postcard of `wire::RpcResponse`, receiver -> sender)
//!       | 3 Error (body: UTF-8 reason, at most 1024 bytes; the request as a whole was refused)
//!       | other: kept as `Frame::Unknown`
//! ```
//!
//! The header is checked before the body is read, so an oversized or foreign frame costs six
//! bytes of buffer. Every strict prefix of a frame is [`FrameError::Incomplete`]. The body is
//! not interpreted here (that is `wire`); this module knows nothing about Raft. Bytes are read
//! and written with `braid_codec`.

use braid_codec::{Reader, Writer};

/// The frame format this build speaks (first byte of every frame).
pub const FRAME_VERSION: u8 = 1;

/// Version, kind and the u32 body length.
pub const HEADER_LEN: usize = 6;

/// The largest body any reader accepts, whatever its configuration (64 MiB).
pub const HARD_MAX_BODY: usize = 64 * 1024 * 1024;

/// The longest reason an `Error` frame carries, in bytes.
pub const MAX_REASON_LEN: usize = 1024;

const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;
const KIND_ERROR: u8 = 3;

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A request (an encoded `RpcRequest`): the receiver answers with one `Response` or `Error`.
    Request(Vec<u8>),
    /// The answer to a request (an encoded `RpcResponse`).
    Response(Vec<u8>),
    /// The request was refused as a whole (not a member, malformed, busy ...); the reason is for
    /// logs. The receiver must not retry the same bytes.
    Error(String),
    /// A kind this build does not know, kept as a value.
    Unknown {
        /// The kind byte.
        kind: u8,
        /// The body.
        body: Vec<u8>,
    },
}

/// Why bytes are not a frame.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The input ended early; more bytes could complete the frame.
    #[error("raft frame is incomplete")]
    Incomplete,
    /// The version byte names a frame format this build does not speak.
    #[error("unsupported raft frame version {0} (this build speaks {FRAME_VERSION})")]
    BadVersion(u8),
    /// The header announces a body over the reader's limit.
    #[error("raft frame body of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// The announced body length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The bytes cannot be a frame whatever follows.
    #[error("malformed raft frame: {what}")]
    Malformed {
        /// What is wrong.
        what: &'static str,
    },
}

impl FrameError {
    /// A codec read error as a frame error: running out of input is
    /// [`FrameError::Incomplete`], anything else [`FrameError::Malformed`] naming the field.
    fn from_codec(e: braid_codec::Error) -> Self {
        if e.is_incomplete() {
            FrameError::Incomplete
        } else {
            FrameError::Malformed { what: e.what() }
        }
    }
}

impl Frame {
    /// Header then body. An `Error` reason is cut to [`MAX_REASON_LEN`] bytes (at a character
    /// boundary).
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body): (u8, &[u8]) = match self {
            Frame::Request(b) => (KIND_REQUEST, b),
            Frame::Response(b) => (KIND_RESPONSE, b),
            Frame::Error(reason) => (KIND_ERROR, cut_reason(reason).as_bytes()),
            Frame::Unknown { kind, body } => (*kind, body),
        };
        let mut w = Writer::with_capacity(HEADER_LEN + body.len());
        w.u8(FRAME_VERSION);
        w.u8(kind);
        // Bodies this crate builds are bounded by the writer's `max_rpc_bytes` (at most
        // HARD_MAX_BODY), far under u32::MAX; saturate rather than wrap if a caller passes more.
        w.u32(u32::try_from(body.len()).unwrap_or(u32::MAX));
        w.bytes(body);
        w.finish()
    }

    /// Parses one frame at the start of `bytes` with bodies up to `max_body` (capped at
    /// [`HARD_MAX_BODY`]); returns it and how many bytes it used (bytes after it are left).
    pub fn decode(bytes: &[u8], max_body: usize) -> Result<(Frame, usize), FrameError> {
        // A wrong version is known from the first byte, before the header is complete.
        if let Some(&v) = bytes.first()
            && v != FRAME_VERSION
        {
            return Err(FrameError::BadVersion(v));
        }
        let mut r = Reader::new(bytes);
        let header = r
            .array::<HEADER_LEN>("raft frame header")
            .map_err(FrameError::from_codec)?;
        let (kind, len) = parse_header(&header, max_body)?;
        let body = r
            .take(len, "raft frame body")
            .map_err(FrameError::from_codec)?;
        Ok((Self::from_parts(kind, body.to_vec())?, r.position()))
    }

    /// Builds a frame from a checked header's kind and its whole body.
    pub fn from_parts(kind: u8, body: Vec<u8>) -> Result<Frame, FrameError> {
        Ok(match kind {
            KIND_REQUEST => Frame::Request(body),
            KIND_RESPONSE => Frame::Response(body),
            KIND_ERROR => {
                if body.len() > MAX_REASON_LEN {
                    return Err(FrameError::Malformed {
                        what: "error reason over 1024 bytes",
                    });
                }
                Frame::Error(String::from_utf8(body).map_err(|_| FrameError::Malformed {
                    what: "error reason is not UTF-8",
                })?)
            }
            kind => Frame::Unknown { kind, body },
        })
    }
}

/// Checks a header: the version, and the body length against `max_body` (capped at
/// [`HARD_MAX_BODY`]). Returns the kind and the body length.
pub fn parse_header(header: &[u8; HEADER_LEN], max_body: usize) -> Result<(u8, usize), FrameError> {
    let mut h = Reader::complete(header);
    let version = h.u8("raft frame version").map_err(FrameError::from_codec)?;
    let kind = h.u8("raft frame kind").map_err(FrameError::from_codec)?;
    let len = h
        .u32("raft frame body length")
        .map_err(FrameError::from_codec)?;
    if version != FRAME_VERSION {
        return Err(FrameError::BadVersion(version));
    }
    let max = max_body.min(HARD_MAX_BODY);
    match usize::try_from(len) {
        Ok(len) if len <= max => Ok((kind, len)),
        _ => Err(FrameError::TooLarge {
            len: u64::from(len),
            max,
        }),
    }
}

fn cut_reason(reason: &str) -> &str {
    if reason.len() <= MAX_REASON_LEN {
        return reason;
    }
    let mut end = MAX_REASON_LEN;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1 << 20;

    fn samples() -> Vec<Frame> {
        vec![
            Frame::Request(vec![1, 2, 3]),
            Frame::Request(Vec::new()),
            Frame::Response(vec![0xff; 300]),
            Frame::Error("not a member of this Raft group".into()),
            Frame::Unknown {
                kind: 9,
                body: vec![7; 5],
            },
        ]
    }

    #[test]
    fn hex_vectors() {
        assert_eq!(
            hex::encode(Frame::Request(vec![0xaa, 0xbb]).encode()),
            "010100000002aabb"
        );
        assert_eq!(
            hex::encode(Frame::Error("no".into()).encode()),
            "0103000000026e6f"
        );
        assert_eq!(
            hex::encode(Frame::Response(vec![]).encode()),
            "010200000000"
        );
    }

    #[test]
    fn round_trip_and_trailing_bytes_left() {
        for frame in samples() {
            let mut bytes = frame.encode();
            let len = bytes.len();
            assert_eq!(Frame::decode(&bytes, MAX), Ok((frame.clone(), len)));
            bytes.extend_from_slice(b"next");
            assert_eq!(Frame::decode(&bytes, MAX), Ok((frame, len)));
        }
    }

    #[test]
    fn strict_prefixes_are_incomplete() {
        for frame in samples() {
            let bytes = frame.encode();
            for cut in 0..bytes.len() {
                assert_eq!(
                    Frame::decode(&bytes[..cut], MAX),
                    Err(FrameError::Incomplete),
                    "{frame:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn oversize_is_rejected_from_the_header() {
        let header = [1, 1, 0, 0x10, 0, 1];
        assert_eq!(
            Frame::decode(&header, MAX),
            Err(FrameError::TooLarge {
                len: 0x0010_0001,
                max: MAX
            })
        );
        // The hard cap applies whatever the caller's limit.
        let header = [1, 2, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Frame::decode(&header, usize::MAX),
            Err(FrameError::TooLarge {
                len: u64::from(u32::MAX),
                max: HARD_MAX_BODY
            })
        );
        // Exactly the limit is fine.
        let body = vec![0u8; 16];
        assert!(Frame::decode(&Frame::Request(body).encode(), 16).is_ok());
        assert!(matches!(
            Frame::decode(&Frame::Request(vec![0u8; 17]).encode(), 16),
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
    }

    #[test]
    fn reject_paths() {
        assert_eq!(Frame::decode(&[2], MAX), Err(FrameError::BadVersion(2)));
        assert_eq!(
            Frame::decode(&[0, 1, 0, 0, 0, 0], MAX),
            Err(FrameError::BadVersion(0))
        );
        assert_eq!(
            Frame::decode(&[1, 3, 0, 0, 0, 2, 0xff, 0xfe], MAX),
            Err(FrameError::Malformed {
                what: "error reason is not UTF-8"
            })
        );
        let mut long = vec![1, 3];
        long.extend_from_slice(&1025u32.to_be_bytes());
        long.extend(std::iter::repeat_n(b'a', 1025));
        assert_eq!(
            Frame::decode(&long, MAX),
            Err(FrameError::Malformed {
                what: "error reason over 1024 bytes"
            })
        );
    }

    #[test]
    fn long_reasons_are_cut_on_encode() {
        let reason = "é".repeat(600); // 1200 bytes
        let bytes = Frame::Error(reason).encode();
        let (frame, _) = Frame::decode(&bytes, MAX).unwrap();
        let Frame::Error(cut) = frame else {
            panic!("not an error frame")
        };
        assert_eq!(cut.len(), 1024);
    }
}
