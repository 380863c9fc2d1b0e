//! The answers of `/braid/registry/1`: [`Response`] and the [`Refusal`] codes. The frame
//! layout and the request side are in the parent module.

use braid_codec::{Problem, Reader, Writer};
use braid_directory::descriptor::SIGNATURE_LEN;
use braid_directory::snapshot::{RegistrySignature, SignedSnapshot};

use super::{
    Header, MAX_REFUSAL_TEXT_LEN, ProtocolError, UnknownMessage, check_body_len, decode_snapshot,
    frame, kind, split_frame,
};

/// Why a server did not do what it was asked; the text is for the operator's log.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseCode {
    /// The request does not decode or is not one this server takes (1).
    BadRequest,
    /// The descriptor is invalid: bad signature, bad field, an address that is not a
    /// multiaddr (2).
    BadDescriptor,
    /// The descriptor's identity is not the peer that sent it (3).
    WrongPeer,
    /// The descriptor is expired or not yet valid by the registry's clock (4).
    NotFresh,
    /// A claimed address did not answer a dial-back (5).
    Unreachable,
    /// The replicated state refused the command (not newer than the listed one, full ...) (6).
    Rejected,
    /// The request kind is only for registries, and the sender is not one (7).
    NotARegistry,
    /// This server does not serve this request (a relay cache asked to take a descriptor) (8).
    NotServed,
    /// Too many requests from this peer, or in total, right now; try later or elsewhere (9).
    Busy,
    /// The snapshot is refused: does not verify, not newer, not what this registry would
    /// sign (10).
    BadSnapshot,
    /// The server could not do it now: no Raft leader, storage error, timeout (11).
    Unavailable,
    /// A code this build does not know.
    Unknown(u8),
}

impl RefuseCode {
    /// The wire byte.
    pub fn code(self) -> u8 {
        match self {
            RefuseCode::BadRequest => 1,
            RefuseCode::BadDescriptor => 2,
            RefuseCode::WrongPeer => 3,
            RefuseCode::NotFresh => 4,
            RefuseCode::Unreachable => 5,
            RefuseCode::Rejected => 6,
            RefuseCode::NotARegistry => 7,
            RefuseCode::NotServed => 8,
            RefuseCode::Busy => 9,
            RefuseCode::BadSnapshot => 10,
            RefuseCode::Unavailable => 11,
            RefuseCode::Unknown(code) => code,
        }
    }

    /// The code of a wire byte (unknown ones kept).
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => RefuseCode::BadRequest,
            2 => RefuseCode::BadDescriptor,
            3 => RefuseCode::WrongPeer,
            4 => RefuseCode::NotFresh,
            5 => RefuseCode::Unreachable,
            6 => RefuseCode::Rejected,
            7 => RefuseCode::NotARegistry,
            8 => RefuseCode::NotServed,
            9 => RefuseCode::Busy,
            10 => RefuseCode::BadSnapshot,
            11 => RefuseCode::Unavailable,
            other => RefuseCode::Unknown(other),
        }
    }
}

/// A refusal: a code and a short text (at most [`MAX_REFUSAL_TEXT_LEN`] bytes; it names no key
/// and no client address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    code: RefuseCode,
    text: String,
}

impl Refusal {
    /// A refusal; `text` is cut at a character boundary to [`MAX_REFUSAL_TEXT_LEN`] bytes.
    pub fn new(code: RefuseCode, text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.len() > MAX_REFUSAL_TEXT_LEN {
            let mut end = MAX_REFUSAL_TEXT_LEN;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Self { code, text }
    }

    /// The code.
    pub fn code(&self) -> RefuseCode {
        self.code
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: {}", self.code, self.text)
    }
}

/// A server's one answer to a [`Request`](super::Request). The client closes the stream after reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The descriptor is in the replicated state (listed, or already listed unchanged).
    Published,
    /// The request was not done; see the code. Nothing was changed.
    Refused(Refusal),
    /// The newest majority-signed snapshot the server holds. The client verifies it against
    /// its own registry set before using it.
    Snapshot(SignedSnapshot),
    /// The server's snapshot was not issued after the client's `newer_than`.
    NotModified,
    /// The server holds no valid snapshot yet.
    Unavailable,
    /// The co-signer's signature over the snapshot it was asked to sign.
    Signature(RegistrySignature),
    /// The offered snapshot is now served by this registry (or an equal one already was).
    Accepted,
    /// A kind this build does not know; clients treat it as a failure of this server.
    Unknown(UnknownMessage),
}

impl Response {
    /// The kind byte.
    pub fn kind(&self) -> u8 {
        match self {
            Response::Published => kind::PUBLISHED,
            Response::Refused(_) => kind::REFUSED,
            Response::Snapshot(_) => kind::SNAPSHOT,
            Response::NotModified => kind::NOT_MODIFIED,
            Response::Unavailable => kind::UNAVAILABLE,
            Response::Signature(_) => kind::SIGNATURE,
            Response::Accepted => kind::ACCEPTED,
            Response::Unknown(u) => u.kind,
        }
    }

    /// The whole frame.
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            Response::Published
            | Response::NotModified
            | Response::Unavailable
            | Response::Accepted => Vec::new(),
            Response::Refused(r) => {
                let mut w = Writer::default();
                w.u8(r.code.code());
                // Refusal::new caps the text at MAX_REFUSAL_TEXT_LEN (256) bytes, so the write
                // cannot be refused.
                let _ = w.u16_prefixed(r.text.as_bytes(), MAX_REFUSAL_TEXT_LEN, "refusal text");
                w.finish()
            }
            Response::Snapshot(s) => s.encode(),
            Response::Signature(s) => [&[s.signer][..], &s.signature].concat(),
            Response::Unknown(u) => u.body.clone(),
        };
        frame(self.kind(), &body)
    }

    /// Decodes exactly one whole frame (see the module doc for the errors).
    pub fn decode(frame: &[u8]) -> Result<Self, ProtocolError> {
        let (header, body) = split_frame(frame)?;
        Self::decode_body(header, body)
    }

    /// Decodes the body of a frame whose header was read with [`decode_header`](super::decode_header). `body` must be
    /// exactly `header.body_len` bytes.
    pub fn decode_body(header: Header, body: &[u8]) -> Result<Self, ProtocolError> {
        check_body_len(header, body)?;
        if !header.is_response() {
            return Err(ProtocolError::Malformed {
                what: "a request kind where a response was expected",
            });
        }
        match header.kind {
            kind::PUBLISHED => Ok(Response::Published),
            kind::NOT_MODIFIED => Ok(Response::NotModified),
            kind::UNAVAILABLE => Ok(Response::Unavailable),
            kind::ACCEPTED => Ok(Response::Accepted),
            kind::REFUSED => decode_refusal(body).map(Response::Refused),
            kind::SNAPSHOT => decode_snapshot(body).map(Response::Snapshot),
            kind::SIGNATURE => {
                let what = "Signature body is not 65 bytes";
                let codec = ProtocolError::from_codec;
                let mut r = Reader::complete(body);
                let signer = r.u8(what).map_err(codec)?;
                let signature: [u8; SIGNATURE_LEN] = r.array(what).map_err(codec)?;
                r.finish(what).map_err(codec)?;
                Ok(Response::Signature(RegistrySignature { signer, signature }))
            }
            other => Ok(Response::Unknown(UnknownMessage {
                kind: other,
                body: body.to_vec(),
            })),
        }
    }
}

fn decode_refusal(body: &[u8]) -> Result<Refusal, ProtocolError> {
    let short = |_| ProtocolError::Malformed {
        what: "Refused body shorter than its fields",
    };
    let mut r = Reader::complete(body);
    let code = RefuseCode::from_code(r.u8("refusal code").map_err(short)?);
    let text = r
        .u16_prefixed(MAX_REFUSAL_TEXT_LEN, "refusal text")
        .map_err(|e| match e {
            braid_codec::Error::Malformed {
                problem: Problem::TooLong { .. },
                ..
            } => ProtocolError::Malformed {
                what: "refusal text over 256 bytes",
            },
            e => short(e),
        })?;
    let text = std::str::from_utf8(text).map_err(|_| ProtocolError::Malformed {
        what: "refusal text is not UTF-8",
    })?;
    r.finish("trailing bytes in the Refused body")
        .map_err(|_| ProtocolError::Malformed {
            what: "trailing bytes in the Refused body",
        })?;
    Ok(Refusal {
        code,
        text: text.to_owned(),
    })
}
