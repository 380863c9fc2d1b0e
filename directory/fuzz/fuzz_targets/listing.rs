//! `build_listing` on inputs chosen by the fuzzer from a fixed pool of signed relays (addresses
//! sharing or not sharing a /24 or /48, DNS-only ones, exits and middles): never panics; the
//! output is sorted by identity without repeats; no subnet holds more relays than its cap; no
//! relay weighs more than its claim or its cap; Guard only with measurement, uptime and weight;
//! the same inputs in reverse order give the same listing; listing the listed relays again
//! (same measurements and `listed_since`) gives the same listing.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;

use braid_directory::listing::{Subnet, subnets_of};
use braid_directory::{
    Descriptor, ExitPolicy, ListingInput, ListingParams, SignedDescriptor, build_listing,
};
use ed25519_dalek::SigningKey;
use libfuzzer_sys::fuzz_target;

const T0: u64 = 1_700_000_000;
const POOL: usize = 32;

fn pool() -> &'static [SignedDescriptor] {
    static POOL_CELL: OnceLock<Vec<SignedDescriptor>> = OnceLock::new();
    POOL_CELL.get_or_init(|| {
        (0..POOL as u8)
            .map(|i| {
                let key = SigningKey::from_bytes(&[i + 1; 32]);
                let addresses = match i % 4 {
                    0 => vec![format!("/ip4/192.0.2.{i}/udp/1/quic-v1")],
                    1 => vec![
                        format!("/ip4/198.51.{}.1/tcp/1", i % 3),
                        format!("/ip6/2001:db8:{}::{i}/tcp/1", i % 2),
                    ],
                    2 => vec![format!("/ip6/::ffff:192.0.2.{i}/tcp/1")],
                    _ => vec![format!("/dns4/r{i}.example/tcp/1")],
                };
                Descriptor {
                    identity: key.verifying_key().to_bytes(),
                    onion_key: [i + 1; 32],
                    addresses,
                    nickname: format!("r{i}"),
                    bandwidth: 1 + u64::from(i) * 100_000 + if i % 5 == 0 { 1 << 62 } else { 0 },
                    exit_policy: if i % 2 == 0 {
                        ExitPolicy::accept_all()
                    } else {
                        ExitPolicy::reject_all()
                    },
                    published: T0 + u64::from(i % 3),
                    expires: T0 + 86_400,
                    family: Vec::new(),
                }
                .sign(&key)
                .expect("a valid descriptor")
            })
            .collect()
    })
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, x) in b.iter_mut().enumerate() {
        *x = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_be_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let params = ListingParams {
        max_per_ipv4_24: usize::from(head[0] % 4),
        max_per_ipv6_48: usize::from(head[1] % 4),
        guard_min_uptime_secs: u64::from(head[2]) * 1000,
        guard_min_bandwidth: u64::from(head[3]) * 10_000,
        unmeasured_weight: 20_000,
    };
    let now = T0 + 100_000;
    let inputs: Vec<ListingInput> = rest
        .chunks(6)
        .take(64)
        .map(|c| {
            let d = pool()[usize::from(c[0]) % POOL].clone();
            let measured = match c.get(1).copied().unwrap_or(0) {
                0 => None,
                m => Some(u64::from(m) * u64::from(c.get(2).copied().unwrap_or(0)) * 1000),
            };
            ListingInput {
                descriptor: d,
                measured_bw: measured,
                listed_since: now.saturating_sub(u64_at(c, 3) >> 40),
            }
        })
        .collect();
    let listing = build_listing(inputs.clone(), &params, now);
    assert!(
        listing
            .windows(2)
            .all(|w| w[0].identity() < w[1].identity())
    );
    let mut counts: HashMap<Subnet, usize> = HashMap::new();
    for r in &listing {
        let d = r.descriptor.descriptor();
        let subnets = subnets_of(d);
        assert!(!subnets.is_empty());
        for s in subnets {
            *counts.entry(s).or_insert(0) += 1;
        }
        let cap = r.measured_bw.unwrap_or(params.unmeasured_weight);
        assert_eq!(r.weight(), cap.min(d.bandwidth));
        assert_eq!(r.flags.is_exit(), d.is_exit());
        if r.flags.is_guard() {
            assert!(r.measured_bw.is_some());
            assert!(r.weight() >= params.guard_min_bandwidth);
        }
    }
    for (s, n) in counts {
        let cap = match s {
            Subnet::V4(_) => params.max_per_ipv4_24,
            Subnet::V6(_) => params.max_per_ipv6_48,
        };
        assert!(n <= cap, "{s:?} holds {n}, cap {cap}");
    }
    let mut reversed = inputs.clone();
    reversed.reverse();
    assert_eq!(build_listing(reversed, &params, now), listing);
    // The inputs that made it, listed again, give the same listing (a co-signer relies on it).
    let kept: Vec<ListingInput> = listing
        .iter()
        .filter_map(|r| {
            inputs
                .iter()
                .filter(|i| {
                    i.descriptor == r.descriptor && i.measured_bw.map(|m| m.max(1)) == r.measured_bw
                })
                .max_by_key(|i| (i.measured_bw, i.listed_since))
                .cloned()
        })
        .collect();
    if kept.len() == listing.len() {
        assert_eq!(build_listing(kept, &params, now), listing);
    }
});
