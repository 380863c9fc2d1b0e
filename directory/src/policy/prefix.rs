//! IP prefixes as integers: the address-set arithmetic behind exit policy matching.
//!
//! Membership, containment, the fixed "private" ranges, and the aggregated prefix set behind the
//! exact "is this prefix inside a union of prefixes" test that
//! [`ExitPolicy::may_allow_port`](crate::ExitPolicy::may_allow_port) needs. Not a general IP
//! library, and it does no parsing.

use std::net::IpAddr;

/// An IPv4 or IPv6 prefix; `bits` holds the address right-aligned in a u128, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prefix {
    v6: bool,
    bits: u128,
    len: u8,
}

/// `::ffff:0:0/96`, where IPv4-mapped IPv6 addresses live. Matching canonicalises those to IPv4,
/// so a v6 rule inside this range could never match and is refused.
pub(crate) const V4_MAPPED: Prefix = Prefix::v6(0xffff_0000_0000, 96);

/// What `private` means in a policy: loopback, RFC 1918, link-local, "this network", CGNAT,
/// unique-local, and the unspecified addresses.
pub(crate) const PRIVATE: [Prefix; 11] = [
    Prefix::v4(0x7f00_0000, 8),    // 127.0.0.0/8
    Prefix::v4(0x0a00_0000, 8),    // 10.0.0.0/8
    Prefix::v4(0xac10_0000, 12),   // 172.16.0.0/12
    Prefix::v4(0xc0a8_0000, 16),   // 192.168.0.0/16
    Prefix::v4(0xa9fe_0000, 16),   // 169.254.0.0/16
    Prefix::v4(0x0000_0000, 8),    // 0.0.0.0/8
    Prefix::v4(0x6440_0000, 10),   // 100.64.0.0/10
    Prefix::v6(1, 128),            // ::1
    Prefix::v6(0xfc << 120, 7),    // fc00::/7
    Prefix::v6(0xfe80 << 112, 10), // fe80::/10
    Prefix::v6(0, 128),            // ::
];

/// Every address: `0.0.0.0/0` and `::/0`.
pub(crate) const ANY: [Prefix; 2] = [Prefix::v4(0, 0), Prefix::v6(0, 0)];

/// The mask of the first `len` bits of a `width`-bit address (`len <= width`).
fn mask(len: u8, width: u8) -> u128 {
    let width_mask = u128::MAX >> (128 - u32::from(width));
    u128::MAX
        .checked_shl(u32::from(width.saturating_sub(len)))
        .unwrap_or(0)
        & width_mask
}

/// An address as a right-aligned integer, and whether it is IPv6.
fn ip_bits(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

impl Prefix {
    /// An IPv4 prefix from its integer form (used for constants; host bits must already be zero).
    const fn v4(bits: u32, len: u8) -> Self {
        Self {
            v6: false,
            bits: bits as u128,
            len,
        }
    }

    /// An IPv6 prefix from its integer form (used for constants; host bits must already be zero).
    const fn v6(bits: u128, len: u8) -> Self {
        Self {
            v6: true,
            bits,
            len,
        }
    }

    /// The prefix `ip/len`, with `len` clamped to the address width and host bits cleared.
    pub(crate) fn new(ip: IpAddr, len: u8) -> Self {
        let (v6, bits) = ip_bits(ip);
        let width = if v6 { 128 } else { 32 };
        let len = len.min(width);
        Self {
            v6,
            bits: bits & mask(len, width),
            len,
        }
    }

    /// The single-address prefix of `ip`.
    pub(crate) fn host(ip: IpAddr) -> Self {
        Self::new(ip, 128)
    }

    fn width(self) -> u8 {
        if self.v6 { 128 } else { 32 }
    }

    /// Whether every address of `other` is in `self`.
    pub(crate) fn contains(self, other: Prefix) -> bool {
        self.v6 == other.v6
            && self.len <= other.len
            && other.bits & mask(self.len, self.width()) == self.bits
    }

    /// Whether `ip` is in `self`.
    pub(crate) fn contains_ip(self, ip: IpAddr) -> bool {
        self.contains(Self::host(ip))
    }

    /// The other half of this prefix's parent, or `None` for `/0`.
    fn sibling(self) -> Option<Prefix> {
        let shift = self.width().checked_sub(self.len)?;
        (self.len > 0).then(|| Prefix {
            bits: self.bits ^ 1u128 << shift,
            ..self
        })
    }

    /// The prefix one bit shorter (`/0` stays `/0`).
    fn parent(self) -> Prefix {
        let len = self.len.saturating_sub(1);
        Prefix {
            len,
            bits: self.bits & mask(len, self.width()),
            ..self
        }
    }
}

/// `ip` with the bits past the first `len` cleared (`10.1.2.3`, 8 gives `10.0.0.0`).
pub(crate) fn network(ip: IpAddr, len: u8) -> IpAddr {
    let bits = Prefix::new(ip, len).bits;
    match ip {
        // `bits` came from a u32 and was only masked, so it fits.
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(bits).unwrap_or_default().into()),
        IpAddr::V6(_) => IpAddr::V6(bits.into()),
    }
}

/// A union of prefixes kept aggregated: no member contains another and no two members are
/// siblings (halves of one parent).
///
/// Aggregation makes the membership question exact and cheap: a prefix lies inside the union
/// exactly when ONE member contains it. (If members strictly inside `p` tiled it, the deepest of
/// them would have its sibling as a member too, which aggregation forbids.)
#[derive(Debug, Default)]
pub(crate) struct PrefixSet {
    members: Vec<Prefix>,
}

impl PrefixSet {
    /// Adds `p` to the union, merging siblings into their parent as far as they go.
    pub(crate) fn insert(&mut self, mut p: Prefix) {
        if self.covers(p) {
            return;
        }
        loop {
            self.members.retain(|q| !p.contains(*q));
            let Some(sibling) = p.sibling() else { break };
            let Some(i) = self.members.iter().position(|q| *q == sibling) else {
                break;
            };
            self.members.swap_remove(i);
            p = p.parent();
        }
        self.members.push(p);
    }

    /// Whether every address of `p` is in the union.
    pub(crate) fn covers(&self, p: Prefix) -> bool {
        self.members.iter().any(|q| q.contains(p))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (ip, len) = s.split_once('/').unwrap_or((s, "128"));
        Prefix::new(ip.parse().unwrap(), len.parse().unwrap())
    }

    #[test]
    fn constants_are_the_documented_ranges() {
        let want = [
            "127.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
            "0.0.0.0/8",
            "100.64.0.0/10",
            "::1/128",
            "fc00::/7",
            "fe80::/10",
            "::/128",
        ];
        assert_eq!(PRIVATE.map(|x| x), want.map(p));
        assert_eq!(ANY, [p("0.0.0.0/0"), p("::/0")]);
        assert_eq!(V4_MAPPED, p("::ffff:0.0.0.0/96"));
    }

    #[test]
    fn containment_respects_family_and_length() {
        assert!(p("10.0.0.0/8").contains(p("10.1.2.3/32")));
        assert!(!p("10.0.0.0/8").contains(p("11.0.0.0/32")));
        assert!(!p("10.1.0.0/16").contains(p("10.0.0.0/8")));
        assert!(!p("0.0.0.0/0").contains(p("::1")));
        assert!(p("::/0").contains(p("2001:db8::1")));
        assert!(p("1.2.3.4/32").contains_ip("1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn network_clears_host_bits() {
        let net = |ip: &str, len| network(ip.parse().unwrap(), len).to_string();
        assert_eq!(net("10.1.2.3", 8), "10.0.0.0");
        assert_eq!(net("10.1.2.3", 32), "10.1.2.3");
        assert_eq!(net("255.255.255.255", 0), "0.0.0.0");
        assert_eq!(net("2001:db8:ffff::1", 32), "2001:db8::");
        assert_eq!(net("::1", 128), "::1");
        assert_eq!(net("::1", 0), "::");
    }

    fn set(prefixes: &[Prefix]) -> PrefixSet {
        let mut s = PrefixSet::default();
        for q in prefixes {
            s.insert(*q);
        }
        s
    }

    #[test]
    fn coverage_is_exact() {
        let halves = [p("0.0.0.0/1"), p("128.0.0.0/1")];
        assert!(set(&halves).covers(p("0.0.0.0/0")));
        assert_eq!(set(&halves).members, [p("0.0.0.0/0")]);
        assert!(!set(&halves[..1]).covers(p("0.0.0.0/0")));
        assert!(!set(&halves).covers(p("::/0")));
        // All of IPv4 but the host 192.0.0.0 is not a cover, in any insertion order...
        let mut almost: Vec<Prefix> = vec![p("0.0.0.0/2"), p("64.0.0.0/2"), p("128.0.0.0/2")];
        almost.extend((0..30).map(|i| {
            let ip = std::net::Ipv4Addr::from(0xc000_0000u32 ^ (1 << i));
            Prefix::new(ip.into(), 32 - i as u8)
        }));
        let mut reversed = almost.clone();
        reversed.reverse();
        for order in [&almost, &reversed] {
            let s = set(order);
            assert!(!s.covers(p("0.0.0.0/0")));
            assert!(!s.covers(p("192.0.0.0/32")));
            assert!(s.covers(p("192.0.0.1/32")));
            assert!(s.covers(p("192.0.0.2/31")));
            assert!(s.covers(p("0.0.0.0/1")));
        }
        // ...and with the host it is, whichever comes first.
        let mut with_host = vec![p("192.0.0.0/32")];
        with_host.extend(&almost);
        assert_eq!(set(&with_host).members, [p("0.0.0.0/0")]);
        almost.push(p("192.0.0.0/32"));
        assert_eq!(set(&almost).members, [p("0.0.0.0/0")]);
    }

    #[test]
    fn insert_drops_contained_members() {
        let s = set(&[
            p("10.1.0.0/16"),
            p("10.2.0.0/16"),
            p("10.0.0.0/8"),
            p("10.3.0.0/16"),
        ]);
        assert_eq!(s.members, [p("10.0.0.0/8")]);
        let s = set(&[p("::1"), p("::")]);
        assert_eq!(s.members, [p("::/127")]);
    }

    #[test]
    fn sibling_and_parent() {
        assert_eq!(p("10.0.0.0/8").sibling(), Some(p("11.0.0.0/8")));
        assert_eq!(p("0.0.0.0/1").sibling(), Some(p("128.0.0.0/1")));
        assert_eq!(p("0.0.0.0/0").sibling(), None);
        assert_eq!(p("::1").sibling(), Some(p("::")));
        assert_eq!(p("11.0.0.0/8").parent(), p("10.0.0.0/7"));
        assert_eq!(p("::/0").parent(), p("::/0"));
    }
}
