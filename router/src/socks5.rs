//! The server side of the SOCKS5 handshake (RFC 1928, with RFC 1929 username/password), as an
//! I/O-free state machine in the manner of arti's `tor-socksproto`.
//!
//! [`Handshake`] consumes bytes received from an application and returns one [`Action`] at a
//! time: wait for more bytes, send a message, hand over a parsed CONNECT request, or fail (with
//! the reply to write, if the client can understand one). [`driver`] runs it over a tokio
//! stream. This module is not the proxy: it opens no connection, builds no circuit, applies no
//! timeout, and it never resolves a host name. A domain target stays a name
//! ([`TargetAddr::Domain`]) so that the exit resolves it (what curl calls `socks5h`).
//!
//! The SOCKS port also speaks SOCKS4 and SOCKS4a, and answers a browser that mistakes it for an
//! HTTP proxy: the first byte decides. 5 is SOCKS5 (below), 4 is SOCKS4/4a (its policy is in
//! `socks5/v4.rs`), and the first letter of an HTTP method (`G`, `P`, `H`, `C`, `O`, `D`) reads
//! the request head (at most [`HTTP_HEAD_READ_LIMIT`] bytes) and fails with a short `501` page
//! saying that this is a SOCKS proxy and how to configure the browser or the proxy's HTTP
//! CONNECT port ([`crate::http_connect::NOT_AN_HTTP_PROXY`]). Any other first byte is
//! [`SocksError::BadVersion`], closed without a reply. [`SocksRequest::reply`] answers in the
//! protocol the client spoke.
//!
//! SOCKS5 policy, in one place:
//! - Methods: USERNAME/PASSWORD (0x02) when offered, else NO AUTH (0x00), else `05 FF` and
//!   close. Any credentials are accepted: they only select an [`IsolationKey`], like Tor's
//!   `IsolateSOCKSAuth`.
//! - Commands: CONNECT only. BIND, UDP ASSOCIATE and unknown commands get reply 0x07.
//! - A domain must be 1..=255 bytes of ASCII letters, digits, `-`, `.` and `_`; anything else
//!   (including an empty name) gets reply 0x01 (general failure): no reply code says "bad
//!   name", and 0x04 (host unreachable) would claim we tried. A name that is an IPv4 literal
//!   becomes [`TargetAddr::Ip`], so exit policies can judge it.
//! - A non-zero RSV byte gets reply 0x01. An unknown address type gets 0x08.
//! - A wrong version byte in the request gets no reply: the peer does not speak SOCKS5, so no
//!   reply would mean anything to it. A wrong sub-negotiation version gets the RFC
//!   1929 failure status `01 01`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[cfg(feature = "driver")]
pub mod driver;
mod v4;
mod wire;

pub use v4::{MAX_HOSTNAME_LEN, MAX_REQUEST_LEN as MAX_SOCKS4_REQUEST_LEN, MAX_USERID_LEN};

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests;

use wire::{ParseError, RawAddr};

/// The largest well-formed handshake in bytes: a greeting with 255 methods (257), a
/// username/password request with two 255-byte fields (513) and a request with a 255-byte name
/// (262). A driver's byte limit at or above this never rejects a valid client: a SOCKS4a
/// request ([`MAX_SOCKS4_REQUEST_LEN`]) and the HTTP head read on the SOCKS port
/// ([`HTTP_HEAD_READ_LIMIT`]) are shorter.
pub const MAX_HANDSHAKE_LEN: usize = 257 + 513 + 262;

/// How much of an HTTP request head the SOCKS port reads before it answers with the "not an
/// HTTP proxy" page: the head up to its blank line, or this many bytes of a longer one (the
/// page is sent either way; reading first keeps the kernel from resetting the connection over
/// unread bytes before the browser has read the page).
pub const HTTP_HEAD_READ_LIMIT: usize = 1024;

const _: () = assert!(HTTP_HEAD_READ_LIMIT < MAX_HANDSHAKE_LEN);
const _: () = assert!(v4::MAX_REQUEST_LEN < MAX_HANDSHAKE_LEN);

/// Where the client asks to connect.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TargetAddr {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A host name (checked to be hostname characters, 1..=255 bytes) and port, to be resolved
    /// at the exit, never locally.
    Domain(String, u16),
}

impl TargetAddr {
    /// The destination port.
    pub fn port(&self) -> u16 {
        match self {
            Self::Ip(addr) => addr.port(),
            Self::Domain(_, port) => *port,
        }
    }

    /// A form safe for logs at info level and above: the port only, e.g. `[redacted]:443`.
    /// The plain `Display` form shows the host and is for debug logs only.
    pub fn redacted(&self) -> impl fmt::Display + '_ {
        Redacted(self)
    }
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ip(addr) => write!(f, "{addr}"),
            Self::Domain(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// The display adapter returned by [`TargetAddr::redacted`].
struct Redacted<'a>(&'a TargetAddr);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[redacted]:{}", self.0.port())
    }
}

/// Which streams may share a circuit: streams whose keys differ never do.
///
/// For USERNAME/PASSWORD it is `ulen ‖ username ‖ plen ‖ password` (length-prefixed, so
/// `("ab", "c")` and `("a", "bc")` differ); for NO AUTH it is empty. `Debug` shows only the
/// length, since users sometimes type real passwords.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct IsolationKey(pub Vec<u8>);

impl IsolationKey {
    /// The key of an HTTP CONNECT client: `00 00 'H'` followed by its `Proxy-Authorization`
    /// value, if any. No SOCKS key starts with `00 00` and is longer than two bytes, so HTTP
    /// CONNECT streams never share a circuit with SOCKS streams (as Tor isolates by port).
    pub fn http_connect(proxy_authorization: Option<&[u8]>) -> Self {
        let auth = proxy_authorization.unwrap_or_default();
        let mut key = Vec::with_capacity(3 + auth.len());
        key.extend_from_slice(&[0, 0, b'H']);
        key.extend_from_slice(auth);
        Self(key)
    }

    /// The key for a username/password pair.
    fn from_credentials(username: &[u8], password: &[u8]) -> Self {
        let mut key = Vec::with_capacity(2 + username.len() + password.len());
        for field in [username, password] {
            // The wire format caps each field at 255 bytes, so the length always fits.
            key.push(u8::try_from(field.len()).unwrap_or(u8::MAX));
            key.extend_from_slice(field);
        }
        Self(key)
    }
}

impl fmt::Debug for IsolationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IsolationKey(<{} bytes>)", self.0.len())
    }
}

/// A SOCKS5 command byte. Unknown values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// 0x01: open a TCP stream to the target. The only command served.
    Connect,
    /// 0x02: accept one inbound connection. Refused with 0x07.
    Bind,
    /// 0x03: relay UDP datagrams. Refused with 0x07.
    UdpAssociate,
    /// Any other value. Refused with 0x07.
    Other(u8),
}

impl From<u8> for Command {
    fn from(byte: u8) -> Self {
        match byte {
            0x01 => Self::Connect,
            0x02 => Self::Bind,
            0x03 => Self::UdpAssociate,
            other => Self::Other(other),
        }
    }
}

impl From<Command> for u8 {
    fn from(command: Command) -> Self {
        match command {
            Command::Connect => 0x01,
            Command::Bind => 0x02,
            Command::UdpAssociate => 0x03,
            Command::Other(other) => other,
        }
    }
}

/// The protocol an app spoke to ask for its stream, and so the one its answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// SOCKS4 or SOCKS4a, on the SOCKS port.
    Socks4,
    /// SOCKS5, on the SOCKS port.
    Socks5,
    /// HTTP CONNECT, on the HTTP CONNECT port ([`crate::http_connect`]).
    HttpConnect,
}

/// A parsed request the proxy should serve. Sent by the client; the receiver builds a stream to
/// `target` on a circuit chosen by `isolation`, then answers with [`SocksRequest::reply`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocksRequest {
    /// The protocol the client spoke; the reply must be in it.
    pub protocol: Protocol,
    /// The command; always [`Command::Connect`] today, since the others are refused.
    pub command: Command,
    /// Where to connect.
    pub target: TargetAddr,
    /// The stream-isolation key from the credentials.
    pub isolation: IsolationKey,
}

impl SocksRequest {
    /// The answer to this request, in the client's protocol: a SOCKS5 reply bound to
    /// `0.0.0.0:0` (a circuit stream has no local address to tell), a SOCKS4 reply (granted for
    /// [`ReplyCode::Succeeded`], rejected otherwise), or an HTTP status line
    /// ([`crate::http_connect::response`]). After a failure the server closes.
    pub fn reply(&self, code: ReplyCode) -> Vec<u8> {
        match self.protocol {
            Protocol::Socks5 => encode_reply(code, UNSPECIFIED),
            Protocol::Socks4 => v4::encode_reply(code),
            Protocol::HttpConnect => crate::http_connect::response(code),
        }
    }
}

/// The REP field of a reply (RFC 1928 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReplyCode {
    /// The stream is open.
    Succeeded = 0,
    /// Any other failure.
    GeneralFailure = 1,
    /// The connection is not allowed by the ruleset (e.g. exit policy).
    NotAllowed = 2,
    /// The network is unreachable.
    NetworkUnreachable = 3,
    /// The host is unreachable (e.g. the name did not resolve at the exit).
    HostUnreachable = 4,
    /// The target refused the connection.
    ConnectionRefused = 5,
    /// TTL expired (used for timeouts).
    TtlExpired = 6,
    /// The command is not supported.
    CommandNotSupported = 7,
    /// The address type is not supported.
    AddressTypeNotSupported = 8,
}

/// Encodes the server's reply to a request, `05 REP 00 ATYP BND.ADDR BND.PORT`. After a failure
/// code the server closes the connection; `bound` is then conventionally `0.0.0.0:0`.
pub fn encode_reply(code: ReplyCode, bound: SocketAddr) -> Vec<u8> {
    wire::encode_reply(code, bound)
}

/// The bound address sent with failure replies.
const UNSPECIFIED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// Why a handshake on an app port failed: SOCKS4/4a/5 on the SOCKS port, HTTP CONNECT on the
/// HTTP CONNECT port.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SocksError {
    /// The first byte is neither a SOCKS version (4, 5) nor the start of an HTTP method, or a
    /// SOCKS5 request did not start with version 5.
    #[error("SOCKS version byte {0:#04x}, expected 0x04 or 0x05")]
    BadVersion(u8),
    /// An HTTP request arrived on the SOCKS port (a browser set to use it as an HTTP proxy);
    /// it is answered with the "not an HTTP proxy" page.
    #[error("an HTTP request on the SOCKS port")]
    HttpOnSocksPort,
    /// A SOCKS4 request asked for `0.0.0.0` without a SOCKS4a host name.
    #[error("SOCKS4 request for the unspecified address 0.0.0.0")]
    UnspecifiedAddress,
    /// A NUL-terminated SOCKS4 field (user id, host name) ran past its limit.
    #[error("{field} longer than {limit} bytes")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its limit in bytes.
        limit: usize,
    },
    /// An HTTP CONNECT request could not be parsed (`httparse` says why), or its target is not
    /// `host:port`.
    #[error("bad HTTP CONNECT request: {0}")]
    HttpMalformed(&'static str),
    /// The HTTP request's method is not CONNECT (answered `405`).
    #[error("HTTP method other than CONNECT")]
    HttpMethodNotAllowed,
    /// The HTTP request head passed the size or header-count limit (answered `431`).
    #[error("HTTP request head too large: {0}")]
    HttpTooLarge(&'static str),
    /// The client offered neither NO AUTH nor USERNAME/PASSWORD.
    #[error("client offered no acceptable authentication method")]
    NoAcceptableMethod,
    /// The username/password request had a version other than 1.
    #[error("username/password version byte {0:#04x}, expected 0x01")]
    BadAuthVersion(u8),
    /// The request's command is not CONNECT.
    #[error("unsupported SOCKS command {0:#04x}")]
    UnsupportedCommand(u8),
    /// The request's reserved byte was not zero.
    #[error("reserved byte {0:#04x} in request, expected 0x00")]
    BadReserved(u8),
    /// The request's address type is none of IPv4, domain, IPv6.
    #[error("unsupported address type {0:#04x}")]
    UnsupportedAddressType(u8),
    /// The request's domain name is empty or has a byte that is not a hostname character.
    #[error("invalid domain name in request: {reason}")]
    BadDomain {
        /// What is wrong with it (the name itself is not logged).
        reason: &'static str,
    },
    /// A message field could not be read; the codec error names the field. (With SOCKS5's
    /// one-byte lengths, read up to their full 255, only running out of input can stop a read,
    /// and that is `Action::NeedMore`, so this is kept for completeness.)
    #[error("malformed SOCKS5 message: {0}")]
    Malformed(braid_codec::Error),
    /// `handle` was called after the handshake had finished or failed.
    #[error("handshake already finished")]
    Finished,
    /// The client sent more handshake bytes than the driver allows.
    #[error("handshake exceeds the limit of {limit} bytes")]
    TooLong {
        /// The configured limit.
        limit: usize,
    },
    /// The client closed the connection before the handshake finished.
    #[error("client closed the connection after {received} handshake bytes")]
    Closed {
        /// How many bytes had been received.
        received: usize,
    },
    /// Reading from or writing to the client failed.
    #[error("I/O error while {during}")]
    Io {
        /// What the driver was doing.
        during: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl SocksError {
    /// The bytes to send the client before closing, if any: the reply a client of `protocol`
    /// expects at the stage where this error is detected. (The HTTP CONNECT parser writes its
    /// own responses; its errors carry none here.)
    fn reply(&self, protocol: Protocol) -> Option<Vec<u8>> {
        let code = match self {
            Self::HttpOnSocksPort => {
                return Some(crate::http_connect::NOT_AN_HTTP_PROXY.to_vec());
            }
            Self::NoAcceptableMethod => {
                return Some(vec![wire::SOCKS_VERSION, wire::METHOD_NONE_ACCEPTABLE]);
            }
            Self::BadAuthVersion(_) => return Some(vec![wire::AUTH_VERSION, 0x01]),
            Self::UnsupportedCommand(_) => ReplyCode::CommandNotSupported,
            Self::UnsupportedAddressType(_) => ReplyCode::AddressTypeNotSupported,
            Self::BadReserved(_)
            | Self::BadDomain { .. }
            | Self::UnspecifiedAddress
            | Self::FieldTooLong { .. } => ReplyCode::GeneralFailure,
            Self::BadVersion(_)
            | Self::Malformed(_)
            | Self::Finished
            | Self::TooLong { .. }
            | Self::Closed { .. }
            | Self::Io { .. }
            | Self::HttpMalformed(_)
            | Self::HttpMethodNotAllowed
            | Self::HttpTooLarge(_) => return None,
        };
        Some(match protocol {
            Protocol::Socks4 => v4::encode_reply(code),
            Protocol::Socks5 | Protocol::HttpConnect => encode_reply(code, UNSPECIFIED),
        })
    }
}

/// A server handshake run by [`driver::accept_with`]: the SOCKS port's [`Handshake`], or the
/// HTTP CONNECT port's [`crate::http_connect::Handshake`].
pub trait ServerHandshake {
    /// Feeds bytes received from the client, starting at the first byte not yet consumed.
    /// Returns how many bytes of `input` were consumed and what to do next.
    fn handle(&mut self, input: &[u8]) -> (usize, Action);
}

/// What the caller of [`Handshake::handle`] must do next.
#[must_use]
#[derive(Debug)]
pub enum Action {
    /// Receive at least `at_least` more bytes, append them to the unconsumed input and call
    /// `handle` again. Nothing was consumed. Reading exactly `at_least` bytes never reads past
    /// the handshake, so application data behind it stays in the stream.
    NeedMore {
        /// The minimum number of further bytes needed to make progress (at least 1).
        at_least: usize,
    },
    /// Write these bytes to the client, then call `handle` again with the unconsumed input.
    Send(Vec<u8>),
    /// A CONNECT request was parsed. The caller builds the stream, then sends
    /// [`encode_reply`]. Unconsumed input is application data.
    Done(SocksRequest),
    /// The handshake failed: write `reply` if present, then close.
    Fail {
        /// The reply to write before closing, if the client can understand one.
        reply: Option<Vec<u8>>,
        /// What went wrong.
        error: SocksError,
    },
}

/// Where the handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the first byte, then the SOCKS5 method greeting or the SOCKS4 request.
    Greeting,
    /// An HTTP request on the SOCKS port: reading its head before the "not an HTTP proxy" page.
    HttpHead,
    /// USERNAME/PASSWORD was chosen; waiting for the credentials.
    Credentials,
    /// Waiting for the request; the isolation key is known.
    Request,
    /// Done or failed; nothing more to parse.
    Finished,
}

/// The I/O-free server handshake. Create one per accepted connection and feed it bytes.
#[derive(Debug)]
pub struct Handshake {
    stage: Stage,
    protocol: Protocol,
    isolation: IsolationKey,
}

impl Default for Handshake {
    fn default() -> Self {
        Self::new()
    }
}

impl Handshake {
    /// A handshake waiting for the client's greeting.
    pub fn new() -> Self {
        Self {
            stage: Stage::Greeting,
            protocol: Protocol::Socks5,
            isolation: IsolationKey::default(),
        }
    }

    /// Feeds bytes received from the client, starting at the first byte not yet consumed.
    /// Returns how many bytes of `input` were consumed (never more than `input.len()`) and what
    /// to do next.
    pub fn handle(&mut self, input: &[u8]) -> (usize, Action) {
        let step = match self.stage {
            Stage::Greeting => self.on_first_message(input),
            Stage::HttpHead => on_http_head(input),
            Stage::Credentials => self.on_credentials(input),
            Stage::Request => self.on_request(input),
            Stage::Finished => Err(ParseError::Malformed(SocksError::Finished)),
        };
        match step {
            Ok(done) => done,
            Err(ParseError::Incomplete { at_least }) => (0, Action::NeedMore { at_least }),
            Err(ParseError::Malformed(error)) => {
                self.stage = Stage::Finished;
                let reply = error.reply(self.protocol);
                (0, Action::Fail { reply, error })
            }
        }
    }

    /// The first byte says which protocol the client speaks.
    fn on_first_message(&mut self, input: &[u8]) -> Result<(usize, Action), ParseError> {
        match input.first() {
            None => Err(ParseError::Incomplete { at_least: 1 }),
            Some(&v4::VERSION) => {
                self.protocol = Protocol::Socks4;
                let (request, len) = v4::parse_request(input)?;
                self.stage = Stage::Finished;
                Ok((len, Action::Done(request)))
            }
            Some(&first) if crate::http_connect::is_method_start(first) => {
                self.stage = Stage::HttpHead;
                on_http_head(input)
            }
            Some(_) => self.on_greeting(input),
        }
    }

    fn on_greeting(&mut self, input: &[u8]) -> Result<(usize, Action), ParseError> {
        let (greeting, len) = wire::parse_greeting(input)?;
        let method = if greeting.methods.contains(&wire::METHOD_USERNAME_PASSWORD) {
            self.stage = Stage::Credentials;
            wire::METHOD_USERNAME_PASSWORD
        } else if greeting.methods.contains(&wire::METHOD_NO_AUTH) {
            self.stage = Stage::Request;
            wire::METHOD_NO_AUTH
        } else {
            return Err(ParseError::Malformed(SocksError::NoAcceptableMethod));
        };
        Ok((len, Action::Send(vec![wire::SOCKS_VERSION, method])))
    }

    fn on_credentials(&mut self, input: &[u8]) -> Result<(usize, Action), ParseError> {
        let (credentials, len) = wire::parse_credentials(input)?;
        self.isolation = IsolationKey::from_credentials(credentials.username, credentials.password);
        self.stage = Stage::Request;
        Ok((len, Action::Send(vec![wire::AUTH_VERSION, 0x00])))
    }

    fn on_request(&mut self, input: &[u8]) -> Result<(usize, Action), ParseError> {
        let (raw, len) = wire::parse_request(input)?;
        let command = Command::from(raw.command);
        if command != Command::Connect {
            return Err(ParseError::Malformed(SocksError::UnsupportedCommand(
                raw.command,
            )));
        }
        if raw.reserved != 0 {
            return Err(ParseError::Malformed(SocksError::BadReserved(raw.reserved)));
        }
        let target = match raw.addr {
            RawAddr::V4(ip) => TargetAddr::Ip(SocketAddr::new(IpAddr::V4(ip), raw.port)),
            RawAddr::V6(ip) => TargetAddr::Ip(SocketAddr::new(IpAddr::V6(ip), raw.port)),
            RawAddr::Domain(name) => {
                domain_target(name, raw.port).map_err(ParseError::Malformed)?
            }
        };
        self.stage = Stage::Finished;
        let request = SocksRequest {
            protocol: Protocol::Socks5,
            command,
            target,
            isolation: std::mem::take(&mut self.isolation),
        };
        Ok((len, Action::Done(request)))
    }
}

impl ServerHandshake for Handshake {
    fn handle(&mut self, input: &[u8]) -> (usize, Action) {
        Handshake::handle(self, input)
    }
}

/// Reads an HTTP request head sent to the SOCKS port up to its end (or
/// [`HTTP_HEAD_READ_LIMIT`]), then fails with [`SocksError::HttpOnSocksPort`], whose reply is
/// the "not an HTTP proxy" page.
fn on_http_head(input: &[u8]) -> Result<(usize, Action), ParseError> {
    if crate::http_connect::head_ended(input) || input.len() >= HTTP_HEAD_READ_LIMIT {
        return Err(ParseError::Malformed(SocksError::HttpOnSocksPort));
    }
    let at_least =
        crate::http_connect::head_read_len(input).min(HTTP_HEAD_READ_LIMIT - input.len());
    Err(ParseError::Incomplete { at_least })
}

/// Checks a requested domain name and turns it into a target; an IPv4 literal becomes an IP
/// target.
pub(crate) fn domain_target(name: &[u8], port: u16) -> Result<TargetAddr, SocksError> {
    if name.is_empty() {
        return Err(SocksError::BadDomain {
            reason: "empty name",
        });
    }
    if !name
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(SocksError::BadDomain {
            reason: "byte outside [A-Za-z0-9._-]",
        });
    }
    // Only ASCII bytes passed the check above, so the conversion cannot fail; the error arm is
    // kept rather than an `expect`.
    let name = String::from_utf8(name.to_vec()).map_err(|_| SocksError::BadDomain {
        reason: "not UTF-8",
    })?;
    Ok(match name.parse::<Ipv4Addr>() {
        Ok(ip) => TargetAddr::Ip(SocketAddr::new(IpAddr::V4(ip), port)),
        Err(_) => TargetAddr::Domain(name, port),
    })
}
