//! When two relays count as related for path selection: a declared family (both ways, as the
//! caller flattened it into [`Candidate::family`]) or a shared network (IPv4 /16, IPv6 /32).
//!
//! Declared families are a hard rule: [`super::select_path`] never drops it. The network rule
//! has levels ([`SubnetRule`]) that path selection relaxes, one at a time, only when no path
//! satisfies the stricter one. This module only answers questions about two candidates.

use std::net::IpAddr;

use super::Candidate;

/// How much of the same-network rule a chosen path keeps, strictest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubnetRule {
    /// No two relays of the path share a /16 (/32), and no guard or middle shares one with a
    /// guard or middle of the stream's other strands ([`super::PathConstraints::siblings`]).
    Strict,
    /// Within the path only: the other strands' networks were given up (too few networks for
    /// K strands).
    PathOnly,
    /// Not kept at all: there are too few networks even for one path (a test network where
    /// every relay is in 127.0/16).
    Dropped,
}

/// A relay's network: the IPv4 /16 or the IPv6 /32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Subnet {
    V4([u8; 2]),
    V6([u8; 4]),
}

/// The network of `candidate`; `None` for an unknown address, which never conflicts.
pub(super) fn subnet(candidate: &Candidate) -> Option<Subnet> {
    // An IPv4-mapped IPv6 address is its IPv4 address.
    Some(match candidate.ip?.to_canonical() {
        IpAddr::V4(ip) => {
            let [a, b, _, _] = ip.octets();
            Subnet::V4([a, b])
        }
        IpAddr::V6(ip) => {
            let [a, b, c, d, ..] = ip.octets();
            Subnet::V6([a, b, c, d])
        }
    })
}

/// Whether `a` and `b` are one declared family: either lists the other's index (the caller
/// lists only mutual declarations; checking both sides keeps a one-sided slip harmless).
pub(super) fn same_family(a: &Candidate, b: &Candidate) -> bool {
    a.index != b.index && (a.family.contains(&b.index) || b.family.contains(&a.index))
}

/// Whether `a` and `b` share a known network.
pub(super) fn same_subnet(a: &Candidate, b: &Candidate) -> bool {
    matches!((subnet(a), subnet(b)), (Some(x), Some(y)) if x == y)
}
