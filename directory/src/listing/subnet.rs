//! The subnets a relay's advertised addresses fall in, for the per-subnet listing caps.
//!
//! Only the leading `/ip4/A.B.C.D` or `/ip6/ADDR` component of a multiaddr text is read; other
//! addresses (`/dns4/...`, anything else) have no subnet. This is not a multiaddr parser and it
//! does not judge whether an address is reachable (registries dial addresses back for that).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Descriptor;

/// One network a listing cap counts relays in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subnet {
    /// An IPv4 /24: the first three octets.
    V4([u8; 3]),
    /// An IPv6 /48: the first six bytes.
    V6([u8; 6]),
}

impl Subnet {
    /// The subnet of `ip`; IPv4-mapped IPv6 (`::ffff:a.b.c.d`) counts as its IPv4 address.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::of_v4(v4),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(ip: Ipv4Addr) -> Self {
        let [a, b, c, _] = ip.octets();
        Self::V4([a, b, c])
    }

    fn of_v6(ip: Ipv6Addr) -> Self {
        let o = ip.octets();
        Self::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
    }
}

/// The IP address a multiaddr text starts with (`/ip4/...` or `/ip6/...`), if any.
pub(crate) fn ip_of(addr: &str) -> Option<IpAddr> {
    let mut parts = addr.strip_prefix('/')?.split('/');
    match (parts.next()?, parts.next()?) {
        ("ip4", ip) => ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        ("ip6", ip) => ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => None,
    }
}

/// The distinct subnets of the descriptor's `/ip4` and `/ip6` addresses, in order; empty if it
/// has none (then [`build_listing`](super::build_listing) does not list it).
pub fn subnets_of(descriptor: &Descriptor) -> Vec<Subnet> {
    let set: BTreeSet<Subnet> = descriptor
        .addresses
        .iter()
        .filter_map(|a| ip_of(a))
        .map(Subnet::of)
        .collect();
    set.into_iter().collect()
}
