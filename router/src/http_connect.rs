//! The server side of HTTP CONNECT (RFC 9110 §9.3.6) for the proxy's HTTP CONNECT port
//! (`http_listen`), as an I/O-free handshake over the `httparse` crate, plus the "not an HTTP
//! proxy" page the SOCKS port sends to browsers.
//!
//! [`Handshake`] consumes the request head and returns the same [`Action`]s as the SOCKS
//! handshake, so one driver (`socks5::driver::accept_with`, called by [`accept`] with the
//! `driver` feature) runs both. It opens no
//! connection, applies no timeout and never resolves a host name: a name target stays a
//! [`TargetAddr::Domain`] for the exit to resolve.
//!
//! Policy:
//! - Only `CONNECT host:port` (authority form; an IPv6 host in brackets; port 1..=65535) with
//!   HTTP/1.0 or HTTP/1.1. Any other method gets `405` with `Allow: CONNECT`; a request
//!   `httparse` rejects, or a bad target, gets `400`.
//! - The head is at most [`MAX_HEAD_LEN`] bytes and [`MAX_HEADERS`] headers; past either, `431`.
//! - The head is read a few bytes at a time ([`head_read_len`]), never past its blank line, so
//!   bytes a client sends after it stay in the stream for the circuit.
//! - Host names are checked like SOCKS5 domains; an IPv4 literal becomes an IP target.
//! - The `Proxy-Authorization` value, if any, is not checked: it only selects the isolation key
//!   ([`IsolationKey::http_connect`]), as SOCKS credentials do.
//! - Answers ([`response`]): `200 Connection established`, then the stream; on failure a short
//!   plain-text status (`403` policy, `502` refused or unreachable, `504` timeout, `503`
//!   anything else) and close.

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests;

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::socks5::{
    Action, Command, IsolationKey, Protocol, ReplyCode, ServerHandshake, SocksError, SocksRequest,
    TargetAddr, domain_target,
};

/// The longest request head read, in bytes; a longer one is answered `431`.
pub const MAX_HEAD_LEN: usize = 8192;
/// The most header fields in a request head; more is answered `431`.
pub const MAX_HEADERS: usize = 32;

/// The answer to a plain HTTP request sent to the SOCKS port (a browser set to use it as an
/// HTTP proxy): a `501` status and a three-line HTML page saying how to configure the browser,
/// then close.
pub const NOT_AN_HTTP_PROXY: &[u8] = b"HTTP/1.0 501 This is a SOCKS proxy, not an HTTP proxy\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Connection: close\r\n\
\r\n\
<html><head><title>This is a SOCKS proxy, not an HTTP proxy</title></head>\n\
<body><h1>This is a SOCKS proxy, not an HTTP proxy</h1><p>You sent an HTTP request to \
braid's SOCKS port. Set this address as a SOCKS v5 proxy in your browser, with DNS through \
the proxy (Firefox: \"Proxy DNS when using SOCKS v5\"), or set <code>http_listen</code> in \
the braid proxy's config and use that address as the HTTP and HTTPS proxy.</p>\n\
</body></html>\n";

/// Whether `byte` can start an HTTP request method this port recognizes: the first letters of
/// GET, POST, PUT, PATCH, HEAD, CONNECT, OPTIONS and DELETE.
pub fn is_method_start(byte: u8) -> bool {
    matches!(byte, b'G' | b'P' | b'H' | b'C' | b'O' | b'D')
}

/// Whether `head` holds the blank line that ends an HTTP request head (`\r\n\r\n`, or the bare
/// `\n\n` (and mixed forms) `httparse` also accepts).
pub fn head_ended(head: &[u8]) -> bool {
    head.windows(2).any(|w| w == b"\n\n") || head.windows(3).any(|w| w == b"\n\r\n")
}

/// How many bytes may be read after `head` (a head not yet ended) without reading past its
/// end: a head ends with a blank line, at least two more bytes (`\n\n`) after anything that is
/// not CR or LF, and possibly the next byte after a CR or LF.
pub fn head_read_len(head: &[u8]) -> usize {
    match head.last() {
        Some(b'\r' | b'\n') => 1,
        _ => 2,
    }
}

/// The response to a CONNECT request: `200 Connection established` for
/// [`ReplyCode::Succeeded`], else an error status with a one-line body, after which the proxy
/// closes.
pub fn response(code: ReplyCode) -> Vec<u8> {
    let status = match code {
        ReplyCode::Succeeded => return b"HTTP/1.1 200 Connection established\r\n\r\n".to_vec(),
        ReplyCode::NotAllowed => "403 Forbidden",
        ReplyCode::HostUnreachable
        | ReplyCode::NetworkUnreachable
        | ReplyCode::ConnectionRefused => "502 Bad Gateway",
        ReplyCode::TtlExpired => "504 Gateway Timeout",
        ReplyCode::GeneralFailure
        | ReplyCode::CommandNotSupported
        | ReplyCode::AddressTypeNotSupported => "503 Service Unavailable",
    };
    let body = match code {
        ReplyCode::NotAllowed => "no exit allows this target\n",
        ReplyCode::HostUnreachable | ReplyCode::NetworkUnreachable => {
            "the exit could not reach the target\n"
        }
        ReplyCode::ConnectionRefused => "the target refused the connection\n",
        ReplyCode::TtlExpired => "timed out\n",
        _ => "braid could not open the stream\n",
    };
    error_response(status, "", body)
}

/// A complete error response: `status`, extra header lines (each ending in CRLF), a plain-text
/// body, `Connection: close`.
fn error_response(status: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{extra_headers}Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The I/O-free HTTP CONNECT server handshake: one request head, then [`Action::Done`] or
/// [`Action::Fail`] with the response to write.
#[derive(Debug, Default)]
pub struct Handshake {
    finished: bool,
}

impl Handshake {
    /// A handshake waiting for the request head.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the bytes received so far (all of them: nothing is consumed until the head is
    /// complete). Returns how many bytes the head took and what to do next.
    pub fn handle(&mut self, input: &[u8]) -> (usize, Action) {
        if self.finished {
            let error = SocksError::Finished;
            return (0, Action::Fail { reply: None, error });
        }
        let action = match parse(input) {
            Parsed::NeedMore(at_least) => return (0, Action::NeedMore { at_least }),
            Parsed::Done(request, len) => {
                self.finished = true;
                return (len, Action::Done(request));
            }
            Parsed::Fail(reply, error) => Action::Fail {
                reply: Some(reply),
                error,
            },
        };
        self.finished = true;
        (0, action)
    }
}

impl ServerHandshake for Handshake {
    fn handle(&mut self, input: &[u8]) -> (usize, Action) {
        Handshake::handle(self, input)
    }
}

/// Runs the HTTP CONNECT handshake on `stream` (tokio), reading at most [`MAX_HEAD_LEN`] bytes
/// and never past the head. On success the caller opens the stream and answers with
/// [`crate::socks5::driver::answer`]; on failure the error response has been written and the
/// write side shut down. No timeout: the caller applies one.
#[cfg(feature = "driver")]
pub async fn accept<S>(stream: &mut S) -> Result<SocksRequest, SocksError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    crate::socks5::driver::accept_with(stream, Handshake::new(), MAX_HEAD_LEN).await
}

/// What [`parse`] found.
enum Parsed {
    /// Read at least this many more bytes (and at most this many, to stay inside the head).
    NeedMore(usize),
    /// A CONNECT request and the length of its head.
    Done(SocksRequest, usize),
    /// Answer this and close.
    Fail(Vec<u8>, SocksError),
}

/// Parses a request head at the start of `input`; only the first [`MAX_HEAD_LEN`] bytes are
/// looked at, so what lies past the limit never changes the outcome.
fn parse(input: &[u8]) -> Parsed {
    let input = &input[..input.len().min(MAX_HEAD_LEN)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let len = match request.parse(input) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            let room = MAX_HEAD_LEN.saturating_sub(input.len());
            if room == 0 {
                return too_large("more than 8192 bytes");
            }
            return Parsed::NeedMore(head_read_len(input).min(room));
        }
        Err(httparse::Error::TooManyHeaders) => return too_large("more than 32 headers"),
        Err(e) => return bad_request(SocksError::HttpMalformed(parse_error_text(e))),
    };
    if request.method != Some("CONNECT") {
        let reply = error_response(
            "405 Method Not Allowed",
            "Allow: CONNECT\r\n",
            "this is an HTTP CONNECT proxy: only CONNECT host:port is served\n",
        );
        return Parsed::Fail(reply, SocksError::HttpMethodNotAllowed);
    }
    let target = match request.path.map(connect_target) {
        Some(Ok(target)) => target,
        Some(Err(e)) => return bad_request(e),
        None => return bad_request(SocksError::HttpMalformed("no request target")),
    };
    let auth = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Proxy-Authorization"))
        .map(|h| h.value);
    let request = SocksRequest {
        protocol: Protocol::HttpConnect,
        command: Command::Connect,
        target,
        isolation: IsolationKey::http_connect(auth),
    };
    Parsed::Done(request, len)
}

fn too_large(what: &'static str) -> Parsed {
    let reply = error_response(
        "431 Request Header Fields Too Large",
        "",
        "request head too large\n",
    );
    Parsed::Fail(reply, SocksError::HttpTooLarge(what))
}

fn bad_request(error: SocksError) -> Parsed {
    let reply = error_response("400 Bad Request", "", "expected CONNECT host:port\n");
    Parsed::Fail(reply, error)
}

/// A fixed description of an `httparse` error (its own `Display` is fixed text as well).
fn parse_error_text(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// Parses a CONNECT target, `host:port` with the host a name, an IPv4 literal or an IPv6
/// literal in brackets.
fn connect_target(authority: &str) -> Result<TargetAddr, SocksError> {
    let bad = SocksError::HttpMalformed;
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or(bad("CONNECT target without a port"))?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("CONNECT target port is not a number"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("CONNECT target port out of range"))?;
    if port == 0 {
        return Err(bad("CONNECT target port 0"));
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: Ipv6Addr = inner
            .parse()
            .map_err(|_| bad("CONNECT target: bad IPv6 literal"))?;
        return Ok(TargetAddr::Ip(SocketAddr::new(IpAddr::V6(ip), port)));
    }
    if host.len() > usize::from(u8::MAX) {
        return Err(bad("CONNECT target host longer than 255 bytes"));
    }
    domain_target(host.as_bytes(), port)
}
