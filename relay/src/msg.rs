//! End-to-end relay messages between the client and the exit, carried inside onion layers.
//!
//! A message fills the innermost [`crate::layer::message_len`] bytes of a relay cell:
//! `[version u8][command u8][stream id u16 BE][length u16 BE][data ...][zero padding]`.
//! Middle relays never see these bytes in the clear; only the exit and the client do.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use braid_codec::{Reader, Writer};
use bytes::Bytes;

use crate::error::CellError;

/// Version byte of the relay message format.
pub const MSG_VERSION: u8 = 1;
/// Header bytes before a message's data.
pub const MSG_HEADER_LEN: usize = 6;
/// The longest domain name a `Begin` may carry.
pub const MAX_DOMAIN_LEN: usize = 255;

/// Identifies one app stream within a circuit. Chosen by the client; 0 is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u16);

/// Where the client wants the exit to connect. Hostnames travel as names: the exit resolves them.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// An IPv4 or IPv6 address and port.
    Ip(SocketAddr),
    /// A hostname and port, resolved at the exit.
    Domain(String, u16),
}

impl Target {
    /// The target's port.
    pub fn port(&self) -> u16 {
        match self {
            Target::Ip(sa) => sa.port(),
            Target::Domain(_, p) => *p,
        }
    }

    /// A form safe to log at info level and above: the host is redacted.
    pub fn redacted(&self) -> String {
        format!("[redacted]:{}", self.port())
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Debug output is for debug-level logs only; see `redacted` for info level.
        match self {
            Target::Ip(sa) => write!(f, "{sa}"),
            Target::Domain(h, p) => write!(f, "{h}:{p}"),
        }
    }
}

/// Why a stream ended. Carried in `End` messages and mapped to SOCKS reply codes by the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Closed normally.
    Done,
    /// Some other failure.
    Misc,
    /// The exit's policy does not allow this target.
    ExitPolicy,
    /// The target refused the connection.
    Refused,
    /// The target's host or network is unreachable.
    Unreachable,
    /// Connecting timed out.
    Timeout,
    /// The hostname did not resolve.
    ResolveFailed,
    /// Too many streams on this circuit.
    Limit,
    /// A reason this version does not know.
    Unknown(u8),
}

impl EndReason {
    /// The wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            EndReason::Done => 0,
            EndReason::Misc => 1,
            EndReason::ExitPolicy => 2,
            EndReason::Refused => 3,
            EndReason::Unreachable => 4,
            EndReason::Timeout => 5,
            EndReason::ResolveFailed => 6,
            EndReason::Limit => 7,
            EndReason::Unknown(b) => b,
        }
    }

    /// The reason for a wire byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => EndReason::Done,
            1 => EndReason::Misc,
            2 => EndReason::ExitPolicy,
            3 => EndReason::Refused,
            4 => EndReason::Unreachable,
            5 => EndReason::Timeout,
            6 => EndReason::ResolveFailed,
            7 => EndReason::Limit,
            other => EndReason::Unknown(other),
        }
    }
}

/// One end-to-end message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayMsg {
    /// Client → exit: open a TCP connection to `target` for `stream`.
    /// The exit answers `Connected` or `End`.
    Begin {
        /// The new stream.
        stream: StreamId,
        /// Where to connect.
        target: Target,
    },
    /// Exit → client: the connection for `stream` is open.
    Connected {
        /// The stream.
        stream: StreamId,
    },
    /// Either way: bytes of `stream`. Never empty.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes (shared: a braided stream's window keeps them for resends meanwhile).
        data: Bytes,
    },
    /// Either way: the sender will send no more data on `stream` (TCP half-close).
    Eof {
        /// The stream.
        stream: StreamId,
    },
    /// Either way: `stream` is gone; the receiver drops it at once.
    End {
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: EndReason,
    },
    /// Client → exit, on the first strand of a braided stream: open a TCP connection to
    /// `target` whose bytes travel as splitter fragments over several circuits. `secret` is the
    /// stream's end-to-end secret: the fragment keys and the link id of the other strands are
    /// derived from it (see `braid` in PROTOCOL.md). The exit answers `Connected` or `End`.
    BeginBraid {
        /// The stream on this circuit.
        stream: StreamId,
        /// The stream's secret (32 random bytes).
        secret: [u8; 32],
        /// Where to connect.
        target: Target,
    },
    /// Client → exit, on another strand: attach `stream` of this circuit to the braided stream
    /// whose link id is `link`. The exit answers `Linked` or `End`; with `quiet` (the client
    /// uses the strand at once) only a refusal, `End`.
    Link {
        /// The stream on this circuit.
        stream: StreamId,
        /// The link id derived from the braided stream's secret.
        link: [u8; 32],
        /// Answer only a refusal (encoded as one more byte, 0x01, after the link id).
        quiet: bool,
    },
    /// Exit → client: `stream` of this circuit now carries fragments of the braided stream.
    Linked {
        /// The stream.
        stream: StreamId,
    },
    /// Registry → last hop of a measurement circuit (and only there): echo every `Data` of
    /// `stream` back, unchanged, up to [`crate::measure::MEASURE_MAX_BYTES`] per circuit. No
    /// answer on success; `End{Limit}` for a second one or past the bound. Anywhere else it
    /// is a protocol violation. See PROTOCOL.md §6.2.
    BeginMeasure {
        /// The measurement stream.
        stream: StreamId,
    },
    /// A command this version does not know; receivers ignore it.
    Unknown {
        /// The command byte.
        command: u8,
        /// The stream it named.
        stream: StreamId,
    },
}

const CMD_BEGIN: u8 = 1;
const CMD_CONNECTED: u8 = 2;
const CMD_DATA: u8 = 3;
const CMD_EOF: u8 = 4;
const CMD_END: u8 = 5;
const CMD_BEGIN_BRAID: u8 = 6;
const CMD_LINK: u8 = 7;
const CMD_LINKED: u8 = 8;
const CMD_BEGIN_MEASURE: u8 = 9;

impl RelayMsg {
    /// The stream this message belongs to.
    pub fn stream(&self) -> StreamId {
        match self {
            RelayMsg::Begin { stream, .. }
            | RelayMsg::Connected { stream }
            | RelayMsg::Data { stream, .. }
            | RelayMsg::Eof { stream }
            | RelayMsg::End { stream, .. }
            | RelayMsg::BeginBraid { stream, .. }
            | RelayMsg::Link { stream, .. }
            | RelayMsg::Linked { stream }
            | RelayMsg::BeginMeasure { stream }
            | RelayMsg::Unknown { stream, .. } => *stream,
        }
    }

    /// Writes the message into `out` (the message area of a cell) and zero-fills the rest.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<(), CellError> {
        let (cmd, stream) = match self {
            RelayMsg::Begin { stream, .. } => (CMD_BEGIN, stream),
            RelayMsg::Connected { stream } => (CMD_CONNECTED, stream),
            RelayMsg::Data { stream, .. } => (CMD_DATA, stream),
            RelayMsg::Eof { stream } => (CMD_EOF, stream),
            RelayMsg::End { stream, .. } => (CMD_END, stream),
            RelayMsg::BeginBraid { stream, .. } => (CMD_BEGIN_BRAID, stream),
            RelayMsg::Link { stream, .. } => (CMD_LINK, stream),
            RelayMsg::Linked { stream } => (CMD_LINKED, stream),
            RelayMsg::BeginMeasure { stream } => (CMD_BEGIN_MEASURE, stream),
            RelayMsg::Unknown { command, stream } => (*command, stream),
        };
        if out.len() < MSG_HEADER_LEN {
            return Err(CellError::ContentTooLong {
                len: MSG_HEADER_LEN,
                max: out.len(),
            });
        }
        if stream.0 == 0 {
            return Err(CellError::Malformed {
                what: "stream id 0",
            });
        }
        // The length field is a u16: never claim more room than it can describe.
        let room = (out.len() - MSG_HEADER_LEN).min(u16::MAX as usize);
        let (head, body) = out.split_at_mut(MSG_HEADER_LEN);
        let len = match self {
            RelayMsg::Begin { target, .. } => encode_target(target, body)?,
            RelayMsg::Data { data, .. } => {
                if data.is_empty() || data.len() > room {
                    return Err(CellError::ContentTooLong {
                        len: data.len(),
                        max: room,
                    });
                }
                body[..data.len()].copy_from_slice(data);
                data.len()
            }
            RelayMsg::End { reason, .. } => {
                let slot = body.first_mut().ok_or(CellError::ContentTooLong {
                    len: MSG_HEADER_LEN + 1,
                    max: MSG_HEADER_LEN,
                })?;
                *slot = reason.to_byte();
                1
            }
            RelayMsg::BeginBraid { secret, target, .. } => {
                let (key, rest) = split_room(body, 32)?;
                key.copy_from_slice(secret);
                32 + encode_target(target, rest)?
            }
            RelayMsg::Link { link, quiet, .. } => {
                let len = 32 + usize::from(*quiet);
                let (slot, _) = split_room(body, len)?;
                slot[..32].copy_from_slice(link);
                if *quiet {
                    slot[32] = LINK_QUIET;
                }
                len
            }
            RelayMsg::Connected { .. }
            | RelayMsg::Eof { .. }
            | RelayMsg::Linked { .. }
            | RelayMsg::BeginMeasure { .. }
            | RelayMsg::Unknown { .. } => 0,
        };
        head[0] = MSG_VERSION;
        head[1] = cmd;
        head[2..4].copy_from_slice(&stream.0.to_be_bytes());
        // `len` is at most `room`, which is below a cell body and so fits in u16.
        head[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        body[len..].fill(0);
        Ok(())
    }

    /// Parses a message from a cell's message area. Padding after the data must be zero.
    pub fn decode(input: &[u8]) -> Result<Self, CellError> {
        let mut r = Reader::new(input);
        let header = r
            .take(MSG_HEADER_LEN, "message header")
            .map_err(CellError::read)?;
        let mut h = Reader::complete(header);
        let version = h.u8("message version").map_err(CellError::read)?;
        if version != MSG_VERSION {
            return Err(CellError::BadVersion(version));
        }
        let cmd = h.u8("message command").map_err(CellError::read)?;
        let stream = StreamId(h.u16("stream id").map_err(CellError::read)?);
        let len = usize::from(h.u16("message length").map_err(CellError::read)?);
        // The message area is whole: a length running past it is malformed, not incomplete.
        let mut area = Reader::complete(r.rest());
        let data = area.take(len, "message length").map_err(CellError::read)?;
        area.zero_padding("message padding")
            .map_err(CellError::read)?;
        if stream.0 == 0 {
            return Err(CellError::Malformed {
                what: "stream id 0",
            });
        }
        let mut d = Reader::complete(data);
        let msg = match cmd {
            CMD_BEGIN => RelayMsg::Begin {
                stream,
                target: decode_target(data)?,
            },
            CMD_CONNECTED => {
                d.finish("connected").map_err(CellError::read)?;
                RelayMsg::Connected { stream }
            }
            CMD_DATA => {
                if data.is_empty() {
                    return Err(CellError::Malformed { what: "empty data" });
                }
                RelayMsg::Data {
                    stream,
                    data: Bytes::copy_from_slice(data),
                }
            }
            CMD_EOF => {
                d.finish("eof").map_err(CellError::read)?;
                RelayMsg::Eof { stream }
            }
            CMD_END => {
                let reason = EndReason::from_byte(d.u8("end").map_err(CellError::read)?);
                d.finish("end").map_err(CellError::read)?;
                RelayMsg::End { stream, reason }
            }
            CMD_BEGIN_BRAID => {
                let secret = d.array("begin_braid secret").map_err(CellError::read)?;
                RelayMsg::BeginBraid {
                    stream,
                    secret,
                    target: decode_target(d.take_rest())?,
                }
            }
            CMD_LINK => {
                let link = d.array("link id").map_err(CellError::read)?;
                let quiet = match d.take_rest() {
                    [] => false,
                    [LINK_QUIET] => true,
                    _ => return Err(CellError::Malformed { what: "link flags" }),
                };
                RelayMsg::Link {
                    stream,
                    link,
                    quiet,
                }
            }
            CMD_LINKED => {
                d.finish("linked").map_err(CellError::read)?;
                RelayMsg::Linked { stream }
            }
            CMD_BEGIN_MEASURE => {
                d.finish("begin_measure").map_err(CellError::read)?;
                RelayMsg::BeginMeasure { stream }
            }
            command => RelayMsg::Unknown { command, stream },
        };
        Ok(msg)
    }
}

/// Splits `n` bytes off the front of a message body, or says the body is too small.
fn split_room(body: &mut [u8], n: usize) -> Result<(&mut [u8], &mut [u8]), CellError> {
    if body.len() < n {
        return Err(CellError::ContentTooLong {
            len: n,
            max: body.len(),
        });
    }
    Ok(body.split_at_mut(n))
}

/// The one `Link` flag: answer only a refusal.
const LINK_QUIET: u8 = 0x01;

const ATYP_V4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_V6: u8 = 4;

/// Encodes a target as `[atyp][address][port BE]` (SOCKS5 style); returns the length written.
pub fn encode_target(target: &Target, out: &mut [u8]) -> Result<usize, CellError> {
    let mut w = Writer::with_capacity(32);
    match target {
        Target::Ip(SocketAddr::V4(a)) => {
            w.u8(ATYP_V4);
            w.bytes(&a.ip().octets());
        }
        Target::Ip(SocketAddr::V6(a)) => {
            w.u8(ATYP_V6);
            w.bytes(&a.ip().octets());
        }
        Target::Domain(host, _) => {
            validate_domain(host.as_bytes())?;
            w.u8(ATYP_DOMAIN);
            w.u8_prefixed(host.as_bytes(), MAX_DOMAIN_LEN, "domain")
                .map_err(CellError::write)?;
        }
    }
    w.u16(target.port());
    let v = w.finish();
    let max = out.len();
    let slot = out
        .get_mut(..v.len())
        .ok_or(CellError::ContentTooLong { len: v.len(), max })?;
    slot.copy_from_slice(&v);
    Ok(v.len())
}

/// Decodes a target written by [`encode_target`]; the whole input must be used.
pub fn decode_target(data: &[u8]) -> Result<Target, CellError> {
    let mut r = Reader::complete(data);
    let atyp = r.u8("empty target").map_err(CellError::read)?;
    // Every length mismatch of an address or port is "target length", as the whole target's
    // length is what is wrong.
    let target = match atyp {
        ATYP_V4 => {
            let ip = Ipv4Addr::from(r.array("target length").map_err(CellError::read)?);
            let port = r.u16("target length").map_err(CellError::read)?;
            Target::Ip(SocketAddr::new(IpAddr::V4(ip), port))
        }
        ATYP_V6 => {
            let ip = Ipv6Addr::from(r.array("target length").map_err(CellError::read)?);
            let port = r.u16("target length").map_err(CellError::read)?;
            Target::Ip(SocketAddr::new(IpAddr::V6(ip), port))
        }
        ATYP_DOMAIN => {
            let n = usize::from(r.u8("domain length").map_err(CellError::read)?);
            let host = r.take(n, "domain").map_err(CellError::read)?;
            let port = r.u16("target length").map_err(CellError::read)?;
            r.expect_end("target length").map_err(CellError::read)?;
            validate_domain(host)?;
            // validate_domain allows only ASCII, so this is valid UTF-8.
            Target::Domain(String::from_utf8_lossy(host).into_owned(), port)
        }
        _ => {
            return Err(CellError::Malformed {
                what: "target address type",
            });
        }
    };
    r.finish("target length").map_err(CellError::read)?;
    Ok(target)
}

/// A hostname must be 1..=255 bytes of ASCII letters, digits, '-', '.' and '_'.
pub fn validate_domain(h: &[u8]) -> Result<(), CellError> {
    if h.is_empty() || h.len() > MAX_DOMAIN_LEN {
        return Err(CellError::Malformed {
            what: "domain length",
        });
    }
    if !h
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.' || c == b'_')
    {
        return Err(CellError::Malformed {
            what: "domain characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
