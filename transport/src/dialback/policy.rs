//! Which claimed addresses a dial-back server or a registry agrees to dial. Pure decisions,
//! no I/O: the caller passes in the requester's observed IPs. It does not dial.
//!
//! The rule that matters is the IP match: a server only dials an IP the requester is
//! connected from (IPv4: the same address; IPv6: the same /64, since hosts pick temporary
//! addresses inside their prefix), so nobody can make servers connect to third parties. A
//! registry also refuses non-public addresses ([`is_public`]) unless told otherwise, so a
//! publisher on the same host or LAN cannot aim it at loopback or private services either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

use super::wire::Reason;
use crate::address_book;

/// Which addresses [`admit_with`] lets through besides the basic shape checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmitRules {
    /// Only an IP the requester is connected from (the IP match). `false` only where there is
    /// no requester connection to match (a registry re-checking a listed descriptor) or on
    /// closed test networks.
    pub require_ip_match: bool,
    /// Also private, loopback, link-local, shared (100.64/10), unique-local and documentation
    /// addresses ([`is_public`] false). `false` on the open network; test networks and the
    /// simulator, which run on loopback, set it.
    pub allow_private: bool,
}

/// Checks one claimed address under `rules`. On success returns it without its `/p2p`
/// suffix, ready to be dialed; on refusal the reason (for the server's log or a
/// `Verdict::Refused`).
pub fn admit_with(
    requester: &PeerId,
    address: &Multiaddr,
    observed: &[IpAddr],
    rules: AdmitRules,
) -> Result<Multiaddr, Reason> {
    let admitted = admit(requester, address, observed, !rules.require_ip_match)?;
    if !rules.allow_private
        && let Some(ip) = ip_of(&admitted)
        && !is_public(ip)
    {
        return Err(Reason::new(format!(
            "not dialed: {ip} is not a public address"
        )));
    }
    Ok(admitted)
}

/// Whether `ip` is a global unicast address worth dialing from the open network: not
/// unspecified, loopback, private (10/8, 172.16/12, 192.168/16), shared (100.64/10),
/// link-local, multicast, broadcast, benchmarking (198.18/15), reserved (240/4),
/// documentation (192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32), IETF (192.0.0/24),
/// unique-local (fc00::/7), discard (100::/64) or IPv4-mapped/compatible forms of those.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || (s[0] == 0x2001 && s[1] == 0x0db8)
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0)
        // IPv4-compatible (deprecated) and other ::/96 forms.
        || s[..6] == [0; 6])
}

/// Checks one claimed address. On success returns it without its `/p2p` suffix, ready to be
/// dialed; on refusal returns the reason for `Verdict::Refused`.
fn admit(
    requester: &PeerId,
    address: &Multiaddr,
    observed: &[IpAddr],
    allow_any_ip: bool,
) -> Result<Multiaddr, Reason> {
    let address = address_book::normalize(requester, address)
        .map_err(|why| Reason::new(format!("not dialed: {why}")))?;
    let Some(ip) = ip_of(&address) else {
        return Err(Reason::new("not dialed: no IP address"));
    };
    if ip.is_unspecified() || ip.is_multicast() || ip == IpAddr::from([255, 255, 255, 255]) {
        return Err(Reason::new(format!(
            "not dialed: {ip} is not a unicast address"
        )));
    }
    if allow_any_ip {
        return Ok(address);
    }
    if observed.is_empty() {
        return Err(Reason::new(
            "not dialed: no connection from the requester is known",
        ));
    }
    if observed.iter().any(|seen| same_host(*seen, ip)) {
        Ok(address)
    } else {
        let seen: Vec<String> = observed.iter().map(IpAddr::to_string).collect();
        Err(Reason::new(format!(
            "not dialed: {ip} is not the address the request came from ({})",
            seen.join(", ")
        )))
    }
}

/// The IP of an address's first component, with IPv4-mapped IPv6 shown as IPv4.
pub fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    match address.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip).to_canonical()),
        _ => None,
    }
}

/// IPv4: equal. IPv6: the same /64 (the granularity the IP match, and a registry's
/// per-source limits, work at).
pub fn same_host(seen: IpAddr, claimed: IpAddr) -> bool {
    match (seen.to_canonical(), claimed.to_canonical()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a == b,
        (IpAddr::V6(a), IpAddr::V6(b)) => a.segments()[..4] == b.segments()[..4],
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    fn ips(list: &[&str]) -> Vec<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn only_the_observed_ip_is_dialed() {
        let peer = PeerId::random();
        let seen = ips(&["198.51.100.7"]);
        let ok = admit(
            &peer,
            &addr("/ip4/198.51.100.7/udp/9401/quic-v1"),
            &seen,
            false,
        );
        assert_eq!(ok, Ok(addr("/ip4/198.51.100.7/udp/9401/quic-v1")));
        let with_p2p = addr(&format!("/ip4/198.51.100.7/tcp/9401/p2p/{peer}"));
        assert_eq!(
            admit(&peer, &with_p2p, &seen, false),
            Ok(addr("/ip4/198.51.100.7/tcp/9401"))
        );
        let other = admit(&peer, &addr("/ip4/198.51.100.8/tcp/1"), &seen, false).unwrap_err();
        assert!(
            other
                .as_str()
                .contains("is not the address the request came from"),
            "{other}"
        );
        assert!(admit(&peer, &addr("/ip4/198.51.100.8/tcp/1"), &seen, true).is_ok());
        let none = admit(&peer, &addr("/ip4/198.51.100.7/tcp/1"), &[], false).unwrap_err();
        assert!(none.as_str().contains("no connection"), "{none}");
    }

    #[test]
    fn ipv6_matches_within_the_same_64() {
        let peer = PeerId::random();
        let seen = ips(&["2001:db8:1:2::99"]);
        assert!(admit(&peer, &addr("/ip6/2001:db8:1:2::1/tcp/1"), &seen, false).is_ok());
        assert!(admit(&peer, &addr("/ip6/2001:db8:1:3::1/tcp/1"), &seen, false).is_err());
        // An IPv4-mapped observation matches the IPv4 claim.
        let mapped = ips(&["::ffff:198.51.100.7"]);
        assert!(admit(&peer, &addr("/ip4/198.51.100.7/tcp/1"), &mapped, false).is_ok());
    }

    #[test]
    fn private_and_special_addresses_are_not_public() {
        for ip in [
            "10.0.0.5",
            "127.0.0.1",
            "127.5.6.7",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "240.0.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:10.0.0.5",
            "::ffff:127.0.0.1",
            "100::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2a00:1450::1",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn rules_combine_ip_match_and_private_refusal() {
        let peer = PeerId::random();
        let strict = AdmitRules {
            require_ip_match: true,
            allow_private: false,
        };
        let listed = AdmitRules {
            require_ip_match: false,
            allow_private: false,
        };
        let test_net = AdmitRules {
            require_ip_match: true,
            allow_private: true,
        };
        let loopback = addr("/ip4/127.0.0.1/udp/9/quic-v1");
        let seen = ips(&["127.0.0.1"]);
        // The IP matches, but loopback is never dialed by default.
        let why = admit_with(&peer, &loopback, &seen, strict).unwrap_err();
        assert!(why.as_str().contains("not a public address"), "{why}");
        assert!(admit_with(&peer, &loopback, &seen, listed).is_err());
        assert!(admit_with(&peer, &loopback, &seen, test_net).is_ok());
        // A public address of another IP: refused by the IP match, allowed without it.
        let public = addr("/ip4/8.8.8.8/tcp/9");
        let why = admit_with(&peer, &public, &ips(&["1.1.1.1"]), strict).unwrap_err();
        assert!(why.as_str().contains("is not the address"), "{why}");
        assert!(admit_with(&peer, &public, &[], listed).is_ok());
        let ten = addr("/ip4/10.0.0.5/tcp/22");
        assert!(admit_with(&peer, &ten, &ips(&["10.0.0.5"]), strict).is_err());
        assert!(admit_with(&peer, &ten, &[], listed).is_err());
    }

    #[test]
    fn other_kinds_of_address_are_refused() {
        let peer = PeerId::random();
        let seen = ips(&["0.0.0.0", "198.51.100.7"]);
        for (a, why) in [
            ("/dns/example.com/tcp/1", "expected /ip4"),
            ("/ip4/198.51.100.7/udp/1", "expected /ip4"),
            ("/ip4/0.0.0.0/tcp/1", "not a unicast"),
            ("/ip4/224.0.0.1/udp/1/quic-v1", "not a unicast"),
            ("/ip4/255.255.255.255/tcp/1", "not a unicast"),
            (
                &format!("/ip4/198.51.100.7/tcp/1/p2p/{}", PeerId::random()),
                "another peer",
            ),
        ] {
            let reason = admit(&peer, &addr(a), &seen, true).unwrap_err();
            assert!(reason.as_str().contains(why), "{a}: {reason}");
        }
    }
}
