//! The sans-IO half of UPnP port mapping: which external addresses may be advertised, and when
//! a lease is renewed. No sockets, no clock: durations and addresses come in, decisions go out.
//! It does not talk to a gateway; `upnp.rs` does that.

use std::net::Ipv4Addr;
use std::time::Duration;

/// The longest lease miniupnpd (and the UPnP IGD v2 spec) grants: 7 days. Longer requests are
/// clamped to it, and a lease of 0 is not asked for (it means 7 days on some gateways and
/// "forever" on others).
pub const MAX_LEASE: Duration = Duration::from_secs(604_800);

/// The shortest lease asked for; shorter values are raised to it.
pub const MIN_LEASE: Duration = Duration::from_secs(10);

/// Why an external address must not be advertised, or `None` when it is public.
///
/// Private (RFC 1918), carrier-grade NAT (100.64.0.0/10, RFC 6598), loopback, link-local,
/// unspecified, broadcast, multicast and documentation addresses are not reachable from the
/// internet. 198.18.0.0/15 (RFC 2544 benchmarking) is treated as public on purpose: the netns
/// tests use it as "the internet", as miniupnpd does once STUN confirms it.
pub fn not_public_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() {
        Some("unspecified (the gateway has no external address)")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private (RFC 1918): the router is itself behind another NAT")
    } else if a == 100 && (64..128).contains(&b) {
        Some("carrier-grade NAT (100.64.0.0/10)")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        Some("not a unicast address")
    } else if ip.is_documentation() {
        Some("documentation range")
    } else {
        None
    }
}

/// The lease to request, in whole seconds: `lease` clamped to [`MIN_LEASE`, `MAX_LEASE`].
pub fn lease_secs(lease: Duration) -> u32 {
    let secs = lease.clamp(MIN_LEASE, MAX_LEASE).as_secs();
    // MAX_LEASE is 604 800 s, far below u32::MAX, so this never saturates.
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// When the mappings of a lease are renewed, and how failed renewals are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewSchedule {
    /// Time from a successful (re)mapping to the next renewal: half the lease.
    pub interval: Duration,
    /// Time between retries after a failed renewal. `retries` of them end before the lease
    /// runs out, so a router that comes back in time keeps the mapping alive.
    pub retry_gap: Duration,
    /// Retries after a failed renewal before giving up until the next interval.
    pub retries: u32,
}

impl RenewSchedule {
    /// The schedule for a lease of `lease_secs` seconds with at most `retries` retries: renew
    /// at half the lease; spread the retries over the next quarter of it (so the last retry is
    /// still at least a quarter lease before expiry).
    pub fn for_lease(lease_secs: u32, retries: u32) -> Self {
        let lease = Duration::from_secs(u64::from(lease_secs.max(1)));
        let interval = lease / 2;
        let retry_gap = (lease / 4) / retries.saturating_add(1);
        RenewSchedule {
            interval,
            retry_gap: retry_gap.max(Duration::from_millis(100)),
            retries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_cgnat_loopback_and_unspecified_are_not_public() {
        let cases = [
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade"),
            ("100.127.255.254", "carrier-grade"),
            ("127.0.0.1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("169.254.1.1", "link-local"),
            ("224.0.0.1", "unicast"),
            ("255.255.255.255", "unicast"),
            ("192.0.2.7", "documentation"),
        ];
        for (ip, word) in cases {
            let reason = not_public_reason(ip.parse().expect("ip")).expect(ip);
            assert!(reason.contains(word), "{ip}: {reason}");
        }
    }

    #[test]
    fn public_addresses_and_the_cgnat_edges_are_public() {
        for ip in [
            "8.8.8.8",
            "100.63.255.255", // just below 100.64/10
            "100.128.0.0",    // just above
            "172.15.255.255",
            "172.32.0.0",
            "198.18.0.2", // the netns tests' "internet"
            "203.0.114.1",
        ] {
            assert_eq!(not_public_reason(ip.parse().expect("ip")), None, "{ip}");
        }
    }

    #[test]
    fn lease_is_clamped_to_what_gateways_grant() {
        assert_eq!(lease_secs(Duration::from_secs(3600)), 3600);
        assert_eq!(lease_secs(Duration::ZERO), 10);
        assert_eq!(lease_secs(Duration::from_secs(9)), 10);
        assert_eq!(lease_secs(Duration::from_millis(10_999)), 10);
        assert_eq!(lease_secs(Duration::from_secs(604_800)), 604_800);
        assert_eq!(lease_secs(Duration::from_secs(604_801)), 604_800);
        assert_eq!(lease_secs(Duration::MAX), 604_800);
    }

    #[test]
    fn renewal_happens_at_half_lease_and_retries_end_before_expiry() {
        let s = RenewSchedule::for_lease(3600, 3);
        assert_eq!(s.interval, Duration::from_secs(1800));
        assert_eq!(s.retry_gap, Duration::from_secs(225));
        assert_eq!(s.retries, 3);
        for (lease, retries) in [(10, 0), (10, 3), (11, 5), (3600, 3), (604_800, 10)] {
            let s = RenewSchedule::for_lease(lease, retries);
            let last_retry = s.interval + s.retry_gap * retries;
            let lease = Duration::from_secs(u64::from(lease));
            assert!(
                last_retry <= lease * 3 / 4,
                "{lease:?} {retries}: {last_retry:?}"
            );
            assert!(s.interval >= Duration::from_secs(5));
        }
        // The gap has a floor so a tiny lease with many retries does not spin.
        let s = RenewSchedule::for_lease(1, 1000);
        assert_eq!(s.retry_gap, Duration::from_millis(100));
        assert_eq!(s.interval, Duration::from_millis(500));
    }
}
