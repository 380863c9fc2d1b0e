//! Which claimed addresses a dial-back server agrees to dial. Pure decisions, no I/O: the
//! server passes in the requester's observed IPs. It does not dial.
//!
//! The rule that matters is the IP match: a server only dials an IP the requester is
//! connected from (IPv4: the same address; IPv6: the same /64, since hosts pick temporary
//! addresses inside their prefix), so nobody can make servers connect to third parties.

use std::net::IpAddr;

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

use super::wire::Reason;
use crate::address_book;

/// Checks one claimed address. On success returns it without its `/p2p` suffix, ready to be
/// dialed; on refusal returns the reason for `Verdict::Refused`.
pub(crate) fn admit(
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
pub(crate) fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    match address.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip).to_canonical()),
        _ => None,
    }
}

/// IPv4: equal. IPv6: the same /64.
fn same_host(seen: IpAddr, claimed: IpAddr) -> bool {
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
