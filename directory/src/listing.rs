//! The listing rule: which relays a snapshot lists, with which flags and selection weight.
//!
//! Registries feed [`build_listing`] what they know about each relay (its signed descriptor, the
//! bandwidth a majority of them measured, since when it has been listed) and get back the
//! [`ListedRelay`] entries of the next snapshot. The rule makes a relay's weight something it
//! cannot inflate on its own: the weight is the registries' measurement, which the relay's own
//! claim can only lower ([`ListedRelay::weight`]); an unmeasured relay weighs at most
//! [`ListingParams::unmeasured_weight`]. It also caps how many relays one network can place in
//! the directory (per IPv4 /24 and IPv6 /48, see [`build_listing`]) and grants the Guard flag only
//! to relays with enough uptime *and* measured bandwidth.
//!
//! Pure and deterministic: no clock (the caller passes `now`), no I/O, no randomness. It does not
//! measure, vote or check freshness and signatures: the caller gives it fresh, verified
//! descriptors and the measurements its registries agreed on.

mod subnet;

use std::collections::{BTreeMap, HashMap};

use crate::SignedDescriptor;
use crate::snapshot::MAX_SNAPSHOT_DESCRIPTORS;

pub use subnet::{Subnet, subnets_of};

/// Registry-assigned flags of a listed relay, one byte on the wire. Bits other than
/// [`RelayFlags::GUARD`] and [`RelayFlags::EXIT`] are refused when decoding (a new flag means a
/// new snapshot version), so [`RelayFlags::from_bits`] is `None` for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RelayFlags {
    bits: u8,
}

impl RelayFlags {
    /// Bit 0: the relay may be a client's entry guard.
    pub const GUARD: u8 = 1;
    /// Bit 1: the relay's exit policy allows some exit (and the registries let it exit).
    pub const EXIT: u8 = 1 << 1;
    /// Every bit this version knows.
    pub const KNOWN: u8 = Self::GUARD | Self::EXIT;

    /// Flags from the two booleans.
    pub fn new(guard: bool, exit: bool) -> Self {
        let mut bits = 0;
        if guard {
            bits |= Self::GUARD;
        }
        if exit {
            bits |= Self::EXIT;
        }
        Self { bits }
    }

    /// The flags of a wire byte, `None` if it sets a bit outside [`RelayFlags::KNOWN`].
    pub fn from_bits(bits: u8) -> Option<Self> {
        (bits & !Self::KNOWN == 0).then_some(Self { bits })
    }

    /// The wire byte.
    pub fn bits(self) -> u8 {
        self.bits
    }

    /// Whether the relay has the Guard flag.
    pub fn is_guard(&self) -> bool {
        self.bits & Self::GUARD != 0
    }

    /// Whether the relay has the Exit flag.
    pub fn is_exit(&self) -> bool {
        self.bits & Self::EXIT != 0
    }
}

/// Parameters of the listing rule; every registry of a group must use the same ones (a co-signer
/// rebuilds the snapshot and signs only an identical one). The registry config carries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingParams {
    /// Relays listed at most per IPv4 /24 (IPv4-mapped IPv6 addresses count as IPv4).
    pub max_per_ipv4_24: usize,
    /// Relays listed at most per IPv6 /48.
    pub max_per_ipv6_48: usize,
    /// Seconds a relay must have been listed before it can get the Guard flag.
    pub guard_min_uptime_secs: u64,
    /// Bytes per second a relay must weigh, *measured*, to get the Guard flag.
    pub guard_min_bandwidth: u64,
    /// The weight (bytes per second) of a relay no majority of registries measured yet, if its
    /// own claim is not lower. At least 1.
    pub unmeasured_weight: u64,
}

/// 2 relays per IPv4 /24: Tor lists at most 2 relays per IP (`AuthDirMaxServersPerAddr`); a /24
/// is the smallest block an operator commonly rents, so 2 per /24 keeps one cheap network from
/// filling the directory while a home or small-hosting operator still runs two.
pub fn default_max_per_ipv4_24() -> usize {
    2
}

/// 2 relays per IPv6 /48, the smallest block a site usually gets (a /64 costs nothing to vary).
pub fn default_max_per_ipv6_48() -> usize {
    2
}

/// 8 days listed before Guard, like Tor's guard rule (it asks for the uptime of a relay known
/// for 8 days): a relay must show it stays up before clients build every circuit through it.
pub fn default_guard_min_uptime_secs() -> u64 {
    8 * 24 * 3600
}

/// 250 000 B/s (2 Mbit/s) measured for Guard. Tor asks for 2 MB/s or the top 25 %; braid's
/// network is young and a guard carries one client's strands, so 2 Mbit/s, a modest home
/// uplink, is the floor that keeps slow relays out of every circuit's first hop.
pub fn default_guard_min_bandwidth() -> u64 {
    250_000
}

/// 20 000 B/s for an unmeasured relay, Tor's cap on unmeasured relays (20 KB/s): a fresh relay
/// carries a little traffic until it is measured, never the share it claims.
pub fn default_unmeasured_weight() -> u64 {
    20_000
}

impl Default for ListingParams {
    fn default() -> Self {
        Self {
            max_per_ipv4_24: default_max_per_ipv4_24(),
            max_per_ipv6_48: default_max_per_ipv6_48(),
            guard_min_uptime_secs: default_guard_min_uptime_secs(),
            guard_min_bandwidth: default_guard_min_bandwidth(),
            unmeasured_weight: default_unmeasured_weight(),
        }
    }
}

/// What the registries know about one relay when building a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListingInput {
    /// Its signed descriptor (verified and fresh: [`build_listing`] does not check).
    pub descriptor: SignedDescriptor,
    /// The bandwidth (bytes per second) a majority of registries measured, if any.
    pub measured_bw: Option<u64>,
    /// Since when (unix seconds) it has been listed without a break.
    pub listed_since: u64,
}

/// One relay as a snapshot lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListedRelay {
    /// Its signed descriptor.
    pub descriptor: SignedDescriptor,
    /// The bandwidth (bytes per second) the registries measured, at least 1; `None` if unmeasured.
    pub measured_bw: Option<u64>,
    /// The registry-assigned flags.
    pub flags: RelayFlags,
    /// The weight of an unmeasured relay in the snapshot listing this one (the snapshot header's
    /// value, the same for all its entries), so that [`ListedRelay::weight`] needs nothing else.
    pub unmeasured_weight: u64,
}

impl ListedRelay {
    /// The selection weight (bytes per second): `min(measured, self-reported)` when measured,
    /// else `min(unmeasured_weight, self-reported)`. The relay's claim only ever lowers it.
    pub fn weight(&self) -> u64 {
        let cap = self.measured_bw.unwrap_or(self.unmeasured_weight);
        cap.min(self.descriptor.descriptor().bandwidth)
    }

    /// An entry an operator vouches for, without registries (a `braid directory` file): its
    /// claimed bandwidth counts as measured, it gets the Guard flag, and the Exit flag if its
    /// policy allows some exit.
    pub fn vouched(descriptor: SignedDescriptor) -> Self {
        let d = descriptor.descriptor();
        Self {
            measured_bw: Some(d.bandwidth),
            flags: RelayFlags::new(true, d.is_exit()),
            unmeasured_weight: default_unmeasured_weight(),
            descriptor,
        }
    }

    /// The relay's identity key (the order of a listing).
    pub fn identity(&self) -> &[u8; 32] {
        self.descriptor.identity()
    }
}

/// The snapshot entries for `inputs` at `now` (unix seconds). Deterministic: the same inputs in
/// any order give the same output.
///
/// 1. Duplicate identities: the input with the latest `published` is kept (ties: the greater
///    encoding, measurement, `listed_since`), so the order of `inputs` never matters.
/// 2. Weight: [`ListedRelay::weight`] with `params.unmeasured_weight`; a measurement of 0 is
///    taken as 1 B/s (the least weight: the relay stays listed, it carries almost nothing).
/// 3. Subnet caps: relays are taken by weight, highest first, ties by identity ascending (the
///    order of peer ids' bytes too, whose prefix is fixed); one is kept if every subnet it has an
///    address in (each IPv4 /24 and IPv6 /48 of its advertised `/ip4` and `/ip6` addresses,
///    counted once per relay) still holds fewer kept relays than its cap, and it then counts in
///    each of them. A relay with no `/ip4` or `/ip6` address (only `/dns...` or other text) is
///    not listed: a name costs nothing to make, so it cannot be a subnet of its own. Loopback
///    and private addresses follow the same rule; test networks raise the caps. At most
///    [`MAX_SNAPSHOT_DESCRIPTORS`] relays are kept.
/// 4. Flags: Exit if the descriptor's policy allows some exit; Guard if the relay was measured,
///    has been listed for at least `guard_min_uptime_secs` at `now`, and its weight (measured,
///    capped by its claim) is at least `guard_min_bandwidth`.
/// 5. The result is sorted by identity, as a snapshot lists it.
pub fn build_listing(
    inputs: Vec<ListingInput>,
    params: &ListingParams,
    now: u64,
) -> Vec<ListedRelay> {
    let mut by_identity: BTreeMap<[u8; 32], ListingInput> = BTreeMap::new();
    for input in inputs {
        let id = *input.descriptor.identity();
        match by_identity.get(&id) {
            Some(old) if !newer(&input, old) => {}
            _ => {
                by_identity.insert(id, input);
            }
        }
    }
    let mut candidates: Vec<(ListedRelay, u64)> = by_identity
        .into_values()
        .map(|input| {
            let measured_bw = input.measured_bw.map(|m| m.max(1));
            let mut relay = ListedRelay {
                descriptor: input.descriptor,
                measured_bw,
                flags: RelayFlags::default(),
                unmeasured_weight: params.unmeasured_weight,
            };
            let uptime = now.saturating_sub(input.listed_since);
            let guard = measured_bw.is_some()
                && uptime >= params.guard_min_uptime_secs
                && relay.weight() >= params.guard_min_bandwidth;
            relay.flags = RelayFlags::new(guard, relay.descriptor.descriptor().is_exit());
            let weight = relay.weight();
            (relay, weight)
        })
        .collect();
    // Identities are distinct here: (weight desc, identity asc) is a total order.
    candidates.sort_by(|(a, wa), (b, wb)| wb.cmp(wa).then_with(|| a.identity().cmp(b.identity())));
    let mut counts: HashMap<Subnet, usize> = HashMap::new();
    let mut kept = Vec::new();
    for (relay, _) in candidates {
        if kept.len() >= MAX_SNAPSHOT_DESCRIPTORS {
            break;
        }
        let subnets = subnets_of(relay.descriptor.descriptor());
        if subnets.is_empty() {
            continue;
        }
        let fits = subnets.iter().all(|s| {
            let cap = match s {
                Subnet::V4(_) => params.max_per_ipv4_24,
                Subnet::V6(_) => params.max_per_ipv6_48,
            };
            counts.get(s).copied().unwrap_or(0) < cap
        });
        if fits {
            for s in subnets {
                *counts.entry(s).or_insert(0) += 1;
            }
            kept.push(relay);
        }
    }
    kept.sort_by(|a, b| a.identity().cmp(b.identity()));
    kept
}

/// Whether `a` replaces `b` for the same identity: later `published`, then greater encoding,
/// then greater measurement, then later `listed_since` (a total order on distinct inputs).
fn newer(a: &ListingInput, b: &ListingInput) -> bool {
    let key = |i: &ListingInput| {
        (
            i.descriptor.descriptor().published,
            i.descriptor.encode(),
            i.measured_bw,
            i.listed_since,
        )
    };
    key(a) > key(b)
}
