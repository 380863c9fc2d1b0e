//! Exit policies: which destinations a relay will open connections to.
//!
//! Tor-style: an ordered list of rules, the first rule matching the address and port decides, and
//! an address no rule matches is rejected, so the empty policy (the default) means "not an exit".
//! This module holds the types, the matching and the compact wire form; the text syntax is in
//! `policy/text.rs` and the address arithmetic in `policy/prefix.rs`. It does not resolve names.

mod prefix;
mod text;

use std::net::IpAddr;

use crate::Error;
use braid_codec::{Reader, Writer};
use prefix::{Prefix, PrefixSet};

/// The most rules a policy may hold (the wire form counts them in one byte).
pub const MAX_EXIT_RULES: usize = 64;

/// The port range `*` stands for. Port 0 is never a connection target, so no rule may name it.
pub const ALL_PORTS: (u16, u16) = (1, u16::MAX);

/// Which addresses a rule covers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddrPattern {
    /// Every IPv4 and IPv6 address (`*`).
    Any,
    /// Addresses that must never be reached through an exit (`private`): 127/8, 10/8, 172.16/12,
    /// 192.168/16, 169.254/16, 0/8, 100.64/10, ::1, fc00::/7, fe80::/10 and ::.
    Private,
    /// One network: address and prefix length (`10.0.0.0/8`, `[2001:db8::]/32`, `1.2.3.4`).
    /// The address has no bits set past the prefix; IPv6 networks inside `::ffff:0:0/96` are
    /// refused because IPv4-mapped addresses are matched as IPv4.
    Net(IpAddr, u8),
}

impl AddrPattern {
    /// Whether `ip` is covered. IPv4-mapped IPv6 addresses are matched as the IPv4 address.
    pub fn matches(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self {
            AddrPattern::Any => true,
            AddrPattern::Private => prefix::PRIVATE.iter().any(|p| p.contains_ip(ip)),
            AddrPattern::Net(net, len) => Prefix::new(*net, *len).contains_ip(ip),
        }
    }

    /// The pattern as a union of prefixes.
    fn prefixes(&self) -> Vec<Prefix> {
        match self {
            AddrPattern::Any => prefix::ANY.to_vec(),
            AddrPattern::Private => prefix::PRIVATE.to_vec(),
            AddrPattern::Net(net, len) => vec![Prefix::new(*net, *len)],
        }
    }

    /// Why this pattern is not allowed, if it is not.
    fn check(&self) -> Result<(), String> {
        let AddrPattern::Net(ip, len) = self else {
            return Ok(());
        };
        let width = if ip.is_ipv4() { 32 } else { 128 };
        if *len > width {
            return Err(format!("prefix /{len} is longer than {width} bits"));
        }
        if prefix::network(*ip, *len) != *ip {
            let suggestion = text::format_addr(&AddrPattern::Net(prefix::network(*ip, *len), *len));
            return Err(format!(
                "address has bits set past the /{len} prefix; did you mean {suggestion}?"
            ));
        }
        if ip.is_ipv6() && prefix::V4_MAPPED.contains(Prefix::new(*ip, *len)) {
            return Err("IPv4-mapped IPv6 network; write it as IPv4".into());
        }
        Ok(())
    }
}

/// One policy rule: accept or reject connections to `addr` on ports `ports.0..=ports.1`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExitRule {
    /// `true` for `accept`, `false` for `reject`.
    pub accept: bool,
    /// The addresses the rule covers.
    pub addr: AddrPattern,
    /// Inclusive port range, `1 <= ports.0 <= ports.1`.
    pub ports: (u16, u16),
}

impl ExitRule {
    /// Whether the rule applies to `ip:port`.
    pub fn matches(&self, ip: IpAddr, port: u16) -> bool {
        self.covers_port(port) && self.addr.matches(ip)
    }

    fn covers_port(&self, port: u16) -> bool {
        self.ports.0 <= port && port <= self.ports.1
    }

    /// Why this rule is not allowed, if it is not.
    fn check(&self) -> Result<(), String> {
        let (lo, hi) = self.ports;
        if lo == 0 {
            return Err("port 0 cannot be a destination; ports start at 1".into());
        }
        if lo > hi {
            return Err(format!("port range {lo}-{hi} is empty"));
        }
        self.addr.check()
    }
}

/// An exit policy: ordered rules, the first match decides, no match rejects.
///
/// The default is the empty policy, which rejects everything (the relay is not an exit).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ExitPolicy {
    /// The rules, in the order they are tried; at most [`MAX_EXIT_RULES`].
    pub rules: Vec<ExitRule>,
}

/// Wire flags byte of a rule: bit 0 accept, bits 1-2 the address kind, the rest must be zero.
const FLAG_ACCEPT: u8 = 0b001;
const KIND_SHIFT: u8 = 1;
const KIND_ANY: u8 = 0;
const KIND_PRIVATE: u8 = 1;
const KIND_V4: u8 = 2;
const KIND_V6: u8 = 3;
const FLAG_RESERVED: u8 = !0b111;

impl ExitPolicy {
    /// The empty policy: rejects everything. Same as `Default`.
    pub fn reject_all() -> Self {
        Self::default()
    }

    /// `accept *:*`: every address, every port.
    pub fn accept_all() -> Self {
        Self {
            rules: vec![ExitRule {
                accept: true,
                addr: AddrPattern::Any,
                ports: ALL_PORTS,
            }],
        }
    }

    /// Parses one rule per line (`accept *:*`, `reject private:*`, `accept 10.0.0.0/8:80-443`,
    /// `accept [::1]:8080`, `reject *:25`). Blank lines and lines starting with `#` are skipped.
    /// At most [`MAX_EXIT_RULES`] rules.
    pub fn parse_rules(lines: &[impl AsRef<str>]) -> Result<Self, Error> {
        let mut rules = Vec::new();
        for line in lines.iter().map(AsRef::as_ref) {
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if rules.len() == MAX_EXIT_RULES {
                return Err(text::bad_line(
                    line,
                    format!("more than {MAX_EXIT_RULES} rules"),
                ));
            }
            rules.push(trimmed.parse::<ExitRule>()?);
        }
        Ok(Self { rules })
    }

    /// One line per rule, in the syntax [`ExitPolicy::parse_rules`] reads back to an equal policy.
    pub fn to_lines(&self) -> Vec<String> {
        self.rules.iter().map(ToString::to_string).collect()
    }

    /// Whether the policy accepts a connection to `ip:port` (the exit's decision once the target
    /// address is known). IPv4-mapped IPv6 addresses are judged as IPv4.
    pub fn allows(&self, ip: IpAddr, port: u16) -> bool {
        self.rules
            .iter()
            .find(|r| r.matches(ip, port))
            .is_some_and(|r| r.accept)
    }

    /// Whether SOME address could be accepted on `port`: what a client can know about a hostname
    /// target before the exit resolves it. Exact: an accept rule counts unless the reject rules
    /// before it (for this port) cover all of its addresses. (One corner is approximate: IPv6
    /// rules treat `::ffff:0:0/96` as reachable although such addresses are judged as IPv4.)
    pub fn may_allow_port(&self, port: u16) -> bool {
        let mut rejected = PrefixSet::default();
        for rule in self.rules.iter().filter(|r| r.covers_port(port)) {
            let prefixes = rule.addr.prefixes();
            if !rule.accept {
                prefixes.into_iter().for_each(|p| rejected.insert(p));
            } else if prefixes.into_iter().any(|p| !rejected.covers(p)) {
                return true;
            }
        }
        false
    }

    /// Whether the policy accepts at least one address on at least one port.
    pub fn is_exit(&self) -> bool {
        // `may_allow_port` can only change its answer where some rule's port range starts or just
        // after one ends, so trying port 1 and those ports is enough (at most 129 tries).
        let mut ports: Vec<u16> = std::iter::once(1)
            .chain(self.rules.iter().map(|r| r.ports.0))
            .chain(self.rules.iter().filter_map(|r| r.ports.1.checked_add(1)))
            .filter(|port| *port != 0)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports.into_iter().any(|port| self.may_allow_port(port))
    }

    /// Checks the rule count and every rule; the error names the first bad rule.
    pub fn validate(&self) -> Result<(), Error> {
        if self.rules.len() > MAX_EXIT_RULES {
            return Err(Error::InvalidField {
                field: "exit_policy",
                reason: format!("{} rules, more than {MAX_EXIT_RULES}", self.rules.len()),
            });
        }
        for (i, rule) in self.rules.iter().enumerate() {
            rule.check().map_err(|reason| Error::InvalidField {
                field: "exit_policy",
                reason: format!("rule {i} ({rule}): {reason}"),
            })?;
        }
        Ok(())
    }

    /// Appends the wire form: rule count (u8), then per rule a flags byte, for networks the
    /// address (4 or 16 bytes) and prefix length (u8), then the port range (two u16).
    /// The policy must have passed [`ExitPolicy::validate`].
    pub(crate) fn encode(&self, w: &mut Writer) -> Result<(), Error> {
        let count = u8::try_from(self.rules.len()).map_err(|_| Error::InvalidField {
            field: "exit_policy",
            reason: format!("{} rules, more than {MAX_EXIT_RULES}", self.rules.len()),
        })?;
        w.u8(count);
        for rule in &self.rules {
            let accept = if rule.accept { FLAG_ACCEPT } else { 0 };
            let kind = match rule.addr {
                AddrPattern::Any => KIND_ANY,
                AddrPattern::Private => KIND_PRIVATE,
                AddrPattern::Net(IpAddr::V4(_), _) => KIND_V4,
                AddrPattern::Net(IpAddr::V6(_), _) => KIND_V6,
            };
            w.u8(accept | kind << KIND_SHIFT);
            match rule.addr {
                AddrPattern::Any | AddrPattern::Private => {}
                AddrPattern::Net(IpAddr::V4(ip), len) => {
                    w.bytes(&ip.octets());
                    w.u8(len);
                }
                AddrPattern::Net(IpAddr::V6(ip), len) => {
                    w.bytes(&ip.octets());
                    w.u8(len);
                }
            }
            w.u16(rule.ports.0);
            w.u16(rule.ports.1);
        }
        Ok(())
    }

    /// Reads the wire form written by [`ExitPolicy::encode`]. Checks only the encoding (count,
    /// flags); rule values are checked by [`ExitPolicy::validate`].
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, Error> {
        let count = usize::from(r.u8("exit rule count")?);
        if count > MAX_EXIT_RULES {
            return Err(Error::Malformed {
                what: "exit policy has more than 64 rules",
            });
        }
        let mut rules = Vec::with_capacity(count);
        for _ in 0..count {
            let flags = r.u8("exit rule flags")?;
            if flags & FLAG_RESERVED != 0 {
                return Err(Error::Malformed {
                    what: "reserved exit rule flag bits set",
                });
            }
            let addr = match (flags >> KIND_SHIFT) & 0b11 {
                KIND_ANY => AddrPattern::Any,
                KIND_PRIVATE => AddrPattern::Private,
                KIND_V4 => {
                    let ip = IpAddr::from(r.array::<4>("exit rule IPv4 network")?);
                    AddrPattern::Net(ip, r.u8("exit rule prefix length")?)
                }
                _ => {
                    let ip = IpAddr::from(r.array::<16>("exit rule IPv6 network")?);
                    AddrPattern::Net(ip, r.u8("exit rule prefix length")?)
                }
            };
            let ports = (
                r.u16("exit rule first port")?,
                r.u16("exit rule last port")?,
            );
            rules.push(ExitRule {
                accept: flags & FLAG_ACCEPT != 0,
                addr,
                ports,
            });
        }
        Ok(Self { rules })
    }
}
