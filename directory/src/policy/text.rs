//! The text syntax of exit policy rules, one rule per line: `ACTION ADDR:PORTS`.
//!
//! ACTION is `accept` or `reject`; ADDR is `*`, `private`, an IPv4 address with optional `/len`,
//! or a bracketed IPv6 address with optional `/len`; PORTS is `*`, `N` or `N-M`. Formatting and
//! parsing round-trip. This is not Tor's full grammar (no `*4`/`*6`, no dotted masks).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::{ALL_PORTS, AddrPattern, ExitRule};
use crate::Error;

/// How much of an offending line an error repeats.
const MAX_LINE_IN_ERROR: usize = 80;

/// A `BadPolicy` error for `line`, cut to [`MAX_LINE_IN_ERROR`] characters.
pub(super) fn bad_line(line: &str, reason: impl Into<String>) -> Error {
    let mut shown: String = line.chars().take(MAX_LINE_IN_ERROR).collect();
    if shown.len() < line.len() {
        shown.push_str("...");
    }
    Error::BadPolicy {
        line: shown,
        reason: reason.into(),
    }
}

/// The text form of an address pattern (`*`, `private`, `10.0.0.0/8`, `[::1]`, `[fc00::]/7`).
pub(super) fn format_addr(addr: &AddrPattern) -> String {
    match addr {
        AddrPattern::Any => "*".into(),
        AddrPattern::Private => "private".into(),
        AddrPattern::Net(IpAddr::V4(ip), 32) => ip.to_string(),
        AddrPattern::Net(IpAddr::V4(ip), len) => format!("{ip}/{len}"),
        AddrPattern::Net(IpAddr::V6(ip), 128) => format!("[{ip}]"),
        AddrPattern::Net(IpAddr::V6(ip), len) => format!("[{ip}]/{len}"),
    }
}

impl fmt::Display for ExitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = if self.accept { "accept" } else { "reject" };
        let addr = format_addr(&self.addr);
        match self.ports {
            ALL_PORTS => write!(f, "{action} {addr}:*"),
            (lo, hi) if lo == hi => write!(f, "{action} {addr}:{lo}"),
            (lo, hi) => write!(f, "{action} {addr}:{lo}-{hi}"),
        }
    }
}

impl FromStr for ExitRule {
    type Err = Error;

    /// Parses one rule; the error is [`Error::BadPolicy`] naming the line and the problem.
    fn from_str(line: &str) -> Result<Self, Error> {
        parse_rule(line).map_err(|reason| bad_line(line, reason))
    }
}

fn parse_rule(line: &str) -> Result<ExitRule, String> {
    let mut words = line.split_whitespace();
    let (Some(action), Some(target), None) = (words.next(), words.next(), words.next()) else {
        return Err("expected `accept ADDR:PORTS` or `reject ADDR:PORTS`".into());
    };
    let accept = match action {
        "accept" => true,
        "reject" => false,
        other => {
            return Err(format!(
                "unknown action {other:?}; expected accept or reject"
            ));
        }
    };
    let (addr, ports) = target
        .rsplit_once(':')
        .ok_or("missing `:PORTS` after the address (use `:*` for all ports)")?;
    let rule = ExitRule {
        accept,
        addr: parse_addr(addr)?,
        ports: parse_ports(ports)?,
    };
    rule.check()?;
    Ok(rule)
}

fn parse_addr(text: &str) -> Result<AddrPattern, String> {
    match text {
        "*" => return Ok(AddrPattern::Any),
        "private" => return Ok(AddrPattern::Private),
        "" => return Err("missing address before `:`".into()),
        _ => {}
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or("IPv6 address without closing `]`")?;
        let ip: Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        let len = parse_len(after, 128)?;
        return Ok(AddrPattern::Net(ip.into(), len));
    }
    let (ip, len) = text.split_at(text.find('/').unwrap_or(text.len()));
    if ip.contains(':') {
        return Err("IPv6 addresses must be in brackets, like [::1]:80".into());
    }
    let ip: Ipv4Addr = ip.parse().map_err(|_| {
        format!("{ip:?} is not `*`, `private`, an IPv4 address or a [IPv6] address")
    })?;
    Ok(AddrPattern::Net(ip.into(), parse_len(len, 32)?))
}

/// `""` (a single address: `width`) or `/N` with `N <= width`.
fn parse_len(text: &str, width: u8) -> Result<u8, String> {
    if text.is_empty() {
        return Ok(width);
    }
    let digits = text
        .strip_prefix('/')
        .ok_or_else(|| format!("unexpected {text:?} after the address"))?;
    parse_decimal(digits)
        .and_then(|n| u8::try_from(n).ok())
        .filter(|len| *len <= width)
        .ok_or_else(|| format!("prefix length {digits:?} is not a number from 0 to {width}"))
}

fn parse_ports(text: &str) -> Result<(u16, u16), String> {
    if text == "*" {
        return Ok(ALL_PORTS);
    }
    let (lo, hi) = text.split_once('-').unwrap_or((text, text));
    let port = |p: &str| {
        parse_decimal(p)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| format!("port {p:?} is not a number from 1 to 65535"))
    };
    Ok((port(lo)?, port(hi)?))
}

/// A decimal number of 1 to 5 ASCII digits (no sign, no spaces).
fn parse_decimal(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}
