//! SOCKS4 and SOCKS4a on the SOCKS port: the request parser and the reply encoder.
//!
//! [`super::Handshake`] comes here when a connection's first byte is 4. A SOCKS4 client sends one
//! message, `VN=4 CD DSTPORT(2) DSTIP(4) USERID 00`, and SOCKS4a (the variant that lets the
//! proxy resolve) adds `HOSTNAME 00` when DSTIP is `0.0.0.x` with `x != 0`. The server answers
//! with eight bytes, `00 CD 00 00 00 00 00 00`: `5A` granted, `5B` rejected or failed.
//!
//! Policy, beside the SOCKS5 policy of the parent module:
//! - Commands: CONNECT (1) only; BIND (2) and anything else get `5B` once the whole request has
//!   been read (answering earlier and closing with unread bytes would make the kernel reset the
//!   connection, destroying the reply).
//! - A SOCKS4a host name is checked like a SOCKS5 domain and is never resolved here: it goes to
//!   the exit as a name. An IPv4 literal in it becomes an IP target. An empty name, or
//!   `0.0.0.0` as DSTIP, gets `5B`.
//! - USERID and HOSTNAME are at most [`MAX_USERID_LEN`] and [`MAX_HOSTNAME_LEN`] bytes before
//!   their NUL; a longer one gets `5B` as soon as the limit is passed. A USERID selects an
//!   isolation key as a SOCKS5 username with an empty password would; an empty one is the
//!   NO AUTH key.
//!
//! Not here: any I/O, and SOCKS4's identd checks (codes `5C`/`5D`), which braid never uses.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use braid_codec::{Reader, Writer};

use super::wire::ParseError;
use super::{Command, IsolationKey, Protocol, ReplyCode, SocksError, SocksRequest, TargetAddr};

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests;

/// The SOCKS4 version byte, the first byte of a request.
pub(crate) const VERSION: u8 = 0x04;
/// The version byte of a SOCKS4 reply (zero, not 4).
const REPLY_VERSION: u8 = 0x00;
/// Reply code: request granted.
const GRANTED: u8 = 0x5A;
/// Reply code: request rejected or failed.
const REJECTED: u8 = 0x5B;

/// The longest USERID accepted, in bytes before its NUL.
pub const MAX_USERID_LEN: usize = 255;
/// The longest SOCKS4a HOSTNAME accepted, in bytes before its NUL (as a SOCKS5 domain).
pub const MAX_HOSTNAME_LEN: usize = 255;
/// The longest well-formed SOCKS4a request: the 8-byte header, a USERID and a HOSTNAME at
/// their limits, each with its NUL.
pub const MAX_REQUEST_LEN: usize = 8 + MAX_USERID_LEN + 1 + MAX_HOSTNAME_LEN + 1;

/// Parses one SOCKS4 or SOCKS4a request at the start of `input`; returns the request and its
/// length in bytes. `Incomplete` asks for exactly as many bytes as cannot overshoot the
/// request, so application data behind it stays unread.
pub(crate) fn parse_request(input: &[u8]) -> Result<(SocksRequest, usize), ParseError> {
    let mut r = Reader::new(input);
    let version = r.u8("SOCKS4 version")?;
    if version != VERSION {
        return Err(ParseError::Malformed(SocksError::BadVersion(version)));
    }
    let command = r.u8("SOCKS4 command")?;
    let port = r.u16("SOCKS4 port")?;
    let ip = Ipv4Addr::from(r.array::<4>("SOCKS4 address")?);
    let userid = nul_terminated(&mut r, MAX_USERID_LEN, "SOCKS4 user id")?;
    let [a, b, c, d] = ip.octets();
    let name = if a == 0 && b == 0 && c == 0 && d != 0 {
        Some(nul_terminated(
            &mut r,
            MAX_HOSTNAME_LEN,
            "SOCKS4a host name",
        )?)
    } else {
        None
    };
    // The whole request is read: now judge it.
    let command = Command::from(command);
    if command != Command::Connect {
        return Err(ParseError::Malformed(SocksError::UnsupportedCommand(
            command.into(),
        )));
    }
    let target = match name {
        Some(name) => super::domain_target(name, port).map_err(ParseError::Malformed)?,
        None if ip.is_unspecified() => {
            return Err(ParseError::Malformed(SocksError::UnspecifiedAddress));
        }
        None => TargetAddr::Ip(SocketAddr::new(IpAddr::V4(ip), port)),
    };
    let isolation = if userid.is_empty() {
        IsolationKey::default()
    } else {
        IsolationKey::from_credentials(userid, b"")
    };
    let request = SocksRequest {
        protocol: Protocol::Socks4,
        command,
        target,
        isolation,
    };
    Ok((request, r.position()))
}

/// Reads a field that ends with a NUL byte (consumed, not returned), at most `max` bytes long
/// before it. Running out of input before the NUL asks for one more byte; passing `max` is
/// [`SocksError::FieldTooLong`].
fn nul_terminated<'a>(
    r: &mut Reader<'a>,
    max: usize,
    what: &'static str,
) -> Result<&'a [u8], ParseError> {
    let rest = r.rest();
    match rest.iter().take(max + 1).position(|&b| b == 0) {
        Some(len) => {
            let field = r.take(len, what)?;
            r.u8(what)?;
            Ok(field)
        }
        None if rest.len() > max => Err(ParseError::Malformed(SocksError::FieldTooLong {
            field: what,
            limit: max,
        })),
        None => Err(ParseError::Incomplete { at_least: 1 }),
    }
}

/// Encodes the reply to a SOCKS4 request: granted for [`ReplyCode::Succeeded`], rejected for
/// any other code (SOCKS4 has no finer reasons). DSTPORT and DSTIP are zero: clients ignore
/// them for CONNECT.
pub(crate) fn encode_reply(code: ReplyCode) -> Vec<u8> {
    let mut w = Writer::with_capacity(8);
    w.u8(REPLY_VERSION);
    w.u8(if code == ReplyCode::Succeeded {
        GRANTED
    } else {
        REJECTED
    });
    w.u16(0);
    w.bytes(&[0; 4]);
    w.finish()
}
