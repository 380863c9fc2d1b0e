//! The SOCKS5 wire codec: parsers for the three client messages of RFC 1928 and RFC 1929
//! (method greeting, username/password request, request) and the encoder for the server's
//! request reply.
//!
//! This module only splits bytes into fields. It does not decide what a field means for the
//! proxy (which method to choose, which commands to serve, which host names to accept): that
//! policy lives in the handshake state machine in the parent module. Parsers never consume
//! anything on `Incomplete`: the caller keeps its bytes and calls again with more. Bytes are read
//! with `braid_codec::Reader` over the received prefix, so `Incomplete` carries the exact
//! shortfall.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use braid_codec::{Reader, Writer};

use super::{ReplyCode, SocksError};

/// The SOCKS protocol version byte (RFC 1928 §3): the first byte of the greeting, the request
/// and the reply.
pub(crate) const SOCKS_VERSION: u8 = 0x05;
/// The username/password sub-negotiation version byte (RFC 1929 §2).
pub(crate) const AUTH_VERSION: u8 = 0x01;
/// Method: no authentication required.
pub(crate) const METHOD_NO_AUTH: u8 = 0x00;
/// Method: username/password (RFC 1929).
pub(crate) const METHOD_USERNAME_PASSWORD: u8 = 0x02;
/// Method reply: none of the offered methods is acceptable.
pub(crate) const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;
/// Address type: IPv4 address, 4 bytes.
pub(crate) const ATYP_IPV4: u8 = 0x01;
/// Address type: domain name, one length byte then the name.
pub(crate) const ATYP_DOMAIN: u8 = 0x03;
/// Address type: IPv6 address, 16 bytes.
pub(crate) const ATYP_IPV6: u8 = 0x04;

/// Why a parser could not return a message.
#[derive(Debug)]
pub(crate) enum ParseError {
    /// The input ends before the message does; at least `at_least` more bytes are needed before
    /// the parser can make progress. Reading exactly that many never reads past the message.
    Incomplete {
        /// The minimum number of further bytes needed.
        at_least: usize,
    },
    /// The bytes read so far can never become a valid message.
    Malformed(SocksError),
}

impl From<braid_codec::Error> for ParseError {
    /// Running out of input is `Incomplete` with the codec's exact shortfall; anything else
    /// keeps the codec error (and so the field it names) as [`SocksError::Malformed`].
    fn from(e: braid_codec::Error) -> Self {
        match e.needed() {
            Some(at_least) => ParseError::Incomplete { at_least },
            None => ParseError::Malformed(SocksError::Malformed(e)),
        }
    }
}

/// The method-selection greeting: `VER NMETHODS METHODS...`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Greeting<'a> {
    /// The authentication methods the client offers, in its order.
    pub(crate) methods: &'a [u8],
}

/// Parses a greeting; returns it and its length in bytes.
pub(crate) fn parse_greeting(input: &[u8]) -> Result<(Greeting<'_>, usize), ParseError> {
    let mut r = Reader::new(input);
    let version = r.u8("SOCKS5 greeting version")?;
    if version != SOCKS_VERSION {
        return Err(ParseError::Malformed(SocksError::BadVersion(version)));
    }
    let methods = r.u8_prefixed(usize::from(u8::MAX), "SOCKS5 greeting methods")?;
    Ok((Greeting { methods }, r.position()))
}

/// The RFC 1929 username/password request: `VER ULEN UNAME PLEN PASSWD`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Credentials<'a> {
    /// The username bytes (any bytes; RFC 1929 does not fix an encoding).
    pub(crate) username: &'a [u8],
    /// The password bytes.
    pub(crate) password: &'a [u8],
}

/// Parses a username/password request; returns it and its length in bytes.
///
/// Empty usernames and passwords are accepted although RFC 1929 asks for 1..=255 bytes: some
/// clients send them, and they are only an isolation key here.
pub(crate) fn parse_credentials(input: &[u8]) -> Result<(Credentials<'_>, usize), ParseError> {
    let mut r = Reader::new(input);
    let version = r.u8("SOCKS5 username/password version")?;
    if version != AUTH_VERSION {
        return Err(ParseError::Malformed(SocksError::BadAuthVersion(version)));
    }
    let username = r.u8_prefixed(usize::from(u8::MAX), "SOCKS5 username")?;
    let password = r.u8_prefixed(usize::from(u8::MAX), "SOCKS5 password")?;
    Ok((Credentials { username, password }, r.position()))
}

/// A destination address as it appears on the wire, before any validation.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RawAddr<'a> {
    /// ATYP 0x01.
    V4(Ipv4Addr),
    /// ATYP 0x04.
    V6(Ipv6Addr),
    /// ATYP 0x03: the name bytes, unchecked (possibly empty).
    Domain(&'a [u8]),
}

/// The request `VER CMD RSV ATYP DST.ADDR DST.PORT`, structurally parsed: `command` and
/// `reserved` are kept as the raw bytes so that the handshake can reject them with the
/// matching reply once the whole request has been read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RawRequest<'a> {
    /// The CMD byte.
    pub(crate) command: u8,
    /// The RSV byte (must be zero).
    pub(crate) reserved: u8,
    /// DST.ADDR.
    pub(crate) addr: RawAddr<'a>,
    /// DST.PORT.
    pub(crate) port: u16,
}

/// Parses a request; returns it and its length in bytes.
///
/// Only a wrong version byte and an unknown address type are rejected here: both make the rest
/// of the message unparseable. Everything else is left to the caller, so that it can read the
/// whole request before it answers (answering and closing with unread bytes in the socket makes
/// the kernel send a reset, which can destroy the reply before the client reads it).
pub(crate) fn parse_request(input: &[u8]) -> Result<(RawRequest<'_>, usize), ParseError> {
    let mut r = Reader::new(input);
    let version = r.u8("SOCKS5 request version")?;
    if version != SOCKS_VERSION {
        return Err(ParseError::Malformed(SocksError::BadVersion(version)));
    }
    let command = r.u8("SOCKS5 request command")?;
    let reserved = r.u8("SOCKS5 request reserved byte")?;
    let addr = match r.u8("SOCKS5 request address type")? {
        ATYP_IPV4 => RawAddr::V4(Ipv4Addr::from(r.array::<4>("SOCKS5 IPv4 address")?)),
        ATYP_IPV6 => RawAddr::V6(Ipv6Addr::from(r.array::<16>("SOCKS5 IPv6 address")?)),
        ATYP_DOMAIN => RawAddr::Domain(r.u8_prefixed(usize::from(u8::MAX), "SOCKS5 domain name")?),
        other => {
            return Err(ParseError::Malformed(SocksError::UnsupportedAddressType(
                other,
            )));
        }
    };
    let port = r.u16("SOCKS5 request port")?;
    Ok((
        RawRequest {
            command,
            reserved,
            addr,
            port,
        },
        r.position(),
    ))
}

/// Encodes the server's reply to a request: `VER REP RSV ATYP BND.ADDR BND.PORT`.
pub(crate) fn encode_reply(code: ReplyCode, bound: SocketAddr) -> Vec<u8> {
    let mut w = Writer::with_capacity(22);
    w.u8(SOCKS_VERSION);
    w.u8(code as u8);
    w.u8(0x00);
    match bound.ip() {
        IpAddr::V4(ip) => {
            w.u8(ATYP_IPV4);
            w.bytes(&ip.octets());
        }
        IpAddr::V6(ip) => {
            w.u8(ATYP_IPV6);
            w.bytes(&ip.octets());
        }
    }
    w.u16(bound.port());
    w.finish()
}
