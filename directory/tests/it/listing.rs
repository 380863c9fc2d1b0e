//! The listing rule: weights no relay can inflate, the per-subnet caps, the Guard requirements,
//! determinism; and listings carried through a v2 snapshot.

use crate::support::*;
use braid_directory::{
    Descriptor, ExitPolicy, ListedRelay, ListingInput, ListingParams, SignedDescriptor,
    SignedSnapshot, Snapshot, build_listing,
};
use ed25519_dalek::SigningKey;
use rand::SeedableRng;
use rand::seq::SliceRandom;

const MB: u64 = 1_000_000;

/// A relay (key seed `seed`, 1..=255) with these addresses and claimed bandwidth.
fn desc(seed: u8, addresses: &[String], bandwidth: u64, exit: bool) -> SignedDescriptor {
    let key = SigningKey::from_bytes(&[seed; 32]);
    Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: [seed; 32],
        addresses: addresses.to_vec(),
        nickname: format!("relay{seed}"),
        bandwidth,
        exit_policy: if exit {
            ExitPolicy::accept_all()
        } else {
            ExitPolicy::reject_all()
        },
        published: T0,
        expires: T0 + DAY,
    }
    .sign(&key)
    .unwrap()
}

fn ip4(a: &str) -> String {
    format!("/ip4/{a}/udp/4001/quic-v1")
}

fn input(d: SignedDescriptor, measured: Option<u64>) -> ListingInput {
    ListingInput {
        descriptor: d,
        measured_bw: measured,
        listed_since: T0,
    }
}

/// One relay of its own /24 (10.seed.0.1).
fn alone(seed: u8, bandwidth: u64, measured: Option<u64>) -> ListingInput {
    input(
        desc(seed, &[ip4(&format!("10.{seed}.0.1"))], bandwidth, false),
        measured,
    )
}

fn params() -> ListingParams {
    ListingParams::default()
}

fn weight_of(listing: &[ListedRelay], d: &SignedDescriptor) -> u64 {
    listing
        .iter()
        .find(|r| r.identity() == d.identity())
        .unwrap()
        .weight()
}

#[test]
fn a_claim_of_2_pow_62_gets_only_its_measured_share() {
    let huge = alone(1, 1 << 62, Some(MB));
    let huge_unmeasured = alone(2, 1 << 62, None);
    let modest = alone(3, 500_000, Some(MB));
    let tiny_unmeasured = alone(4, 5_000, None);
    let ds: Vec<_> = [&huge, &huge_unmeasured, &modest, &tiny_unmeasured]
        .iter()
        .map(|i| i.descriptor.clone())
        .collect();
    let listing = build_listing(
        vec![huge, huge_unmeasured, modest, tiny_unmeasured],
        &params(),
        T0,
    );
    assert_eq!(weight_of(&listing, &ds[0]), MB, "measured, claim above");
    assert_eq!(
        weight_of(&listing, &ds[1]),
        params().unmeasured_weight,
        "unmeasured"
    );
    assert_eq!(weight_of(&listing, &ds[2]), 500_000, "the claim caps it");
    assert_eq!(
        weight_of(&listing, &ds[3]),
        5_000,
        "a low claim caps it too"
    );
}

#[test]
fn three_inflated_relays_do_not_win_the_slots() {
    // Three relays claim 2^62 and are unmeasured; ten honest relays measured at 1 MB/s.
    let mut inputs: Vec<_> = (1..=3).map(|s| alone(s, 1 << 62, None)).collect();
    inputs.extend((10..20).map(|s| alone(s, 2 * MB, Some(MB))));
    let listing = build_listing(inputs, &params(), T0);
    let total: u64 = listing.iter().map(ListedRelay::weight).sum();
    let inflated: u64 = listing
        .iter()
        .filter(|r| r.descriptor.descriptor().bandwidth == 1 << 62)
        .map(ListedRelay::weight)
        .sum();
    assert_eq!(inflated, 3 * params().unmeasured_weight);
    assert!(inflated * 100 < total, "{inflated} of {total}");
}

#[test]
fn a_measurement_of_zero_is_the_least_weight() {
    let i = alone(1, MB, Some(0));
    let listing = build_listing(vec![i], &params(), T0);
    assert_eq!(listing[0].measured_bw, Some(1));
    assert_eq!(listing[0].weight(), 1);
}

/// 50 identities (seeds 1..=50) at the addresses `addr(i)`, measured `measured(i)`.
fn fifty(addr: impl Fn(u8) -> String, measured: impl Fn(u8) -> Option<u64>) -> Vec<ListingInput> {
    (1..=50u8)
        .map(|s| input(desc(s, &[addr(s)], 10 * MB, false), measured(s)))
        .collect()
}

fn identities(listing: &[ListedRelay]) -> Vec<[u8; 32]> {
    listing.iter().map(|r| *r.identity()).collect()
}

#[test]
fn fifty_identities_on_one_ipv4_address_list_at_most_the_cap() {
    // Equal weights: the lowest identities win.
    let inputs = fifty(|_| ip4("203.0.113.7"), |_| None);
    let mut expected: Vec<[u8; 32]> = inputs.iter().map(|i| *i.descriptor.identity()).collect();
    expected.sort();
    expected.truncate(2);
    let listing = build_listing(inputs, &params(), T0);
    assert_eq!(identities(&listing), expected);

    // Different weights: the heaviest win (seeds 49 and 50 measured highest).
    let inputs = fifty(|_| ip4("203.0.113.7"), |s| Some(u64::from(s) * 1000));
    let mut expected = vec![
        *inputs[48].descriptor.identity(),
        *inputs[49].descriptor.identity(),
    ];
    expected.sort();
    let listing = build_listing(inputs, &params(), T0);
    assert_eq!(identities(&listing), expected);

    // A configured cap.
    let wide = ListingParams {
        max_per_ipv4_24: 5,
        ..params()
    };
    let listing = build_listing(fifty(|_| ip4("203.0.113.7"), |_| None), &wide, T0);
    assert_eq!(listing.len(), 5);
}

#[test]
fn fifty_identities_on_one_ipv4_24_list_at_most_the_cap() {
    let listing = build_listing(
        fifty(|s| ip4(&format!("198.51.100.{s}")), |_| Some(MB)),
        &params(),
        T0,
    );
    assert_eq!(listing.len(), 2);
    // Loopback is a /24 like any other (the simulator raises the cap).
    let listing = build_listing(
        fifty(|s| ip4(&format!("127.0.0.{s}")), |_| None),
        &params(),
        T0,
    );
    assert_eq!(listing.len(), 2);
    // One per /24: all of them.
    let listing = build_listing(
        fifty(|s| ip4(&format!("198.51.{s}.1")), |_| None),
        &params(),
        T0,
    );
    assert_eq!(listing.len(), 50);
}

#[test]
fn fifty_identities_on_one_ipv6_48_list_at_most_the_cap() {
    let listing = build_listing(
        fifty(|s| format!("/ip6/2001:db8:7:{s:x}::1/tcp/4001"), |_| None),
        &params(),
        T0,
    );
    assert_eq!(listing.len(), 2);
    // One per /48: all of them.
    let listing = build_listing(
        fifty(|s| format!("/ip6/2001:db8:{s:x}::1/tcp/4001"), |_| None),
        &params(),
        T0,
    );
    assert_eq!(listing.len(), 50);
    let v6 = ListingParams {
        max_per_ipv6_48: 7,
        ..params()
    };
    let listing = build_listing(
        fifty(
            |s| format!("/ip6/2001:db8:7::{s:x}/udp/1/quic-v1"),
            |_| None,
        ),
        &v6,
        T0,
    );
    assert_eq!(listing.len(), 7);
}

#[test]
fn ipv4_mapped_ipv6_counts_as_its_ipv4_24() {
    let listing = build_listing(
        fifty(
            |s| {
                if s % 2 == 0 {
                    ip4(&format!("192.0.2.{s}"))
                } else {
                    format!("/ip6/::ffff:192.0.2.{s}/tcp/1")
                }
            },
            |_| None,
        ),
        &params(),
        T0,
    );
    assert_eq!(listing.len(), 2);
}

#[test]
fn a_relay_counts_in_every_subnet_it_has_an_address_in() {
    let one = ListingParams {
        max_per_ipv4_24: 1,
        max_per_ipv6_48: 1,
        ..params()
    };
    // A (heaviest) is in X and Y; B only in Y; C only in X; D in Z and in an IPv6 /48.
    let a = input(
        desc(1, &[ip4("192.0.2.1"), ip4("198.51.100.1")], MB, false),
        Some(MB),
    );
    let b = input(desc(2, &[ip4("198.51.100.2")], MB, false), Some(MB / 2));
    let c = input(desc(3, &[ip4("192.0.2.3")], MB, false), Some(MB / 2));
    let d = input(
        desc(
            4,
            &[ip4("203.0.113.4"), "/ip6/2001:db8::4/tcp/1".into()],
            MB,
            false,
        ),
        Some(MB / 2),
    );
    // Two addresses of A in one /24 count once.
    let e = input(
        desc(5, &[ip4("203.0.113.5"), ip4("203.0.113.6")], MB, false),
        Some(1),
    );
    let (ia, id) = (*a.descriptor.identity(), *d.descriptor.identity());
    let listing = build_listing(vec![a, b, c, d, e], &one, T0);
    let mut want = vec![ia, id];
    want.sort();
    assert_eq!(identities(&listing), want);
}

#[test]
fn a_relay_without_an_ip_address_is_not_listed() {
    let dns_only = input(
        desc(1, &["/dns4/relay.example/tcp/1".into()], MB, false),
        None,
    );
    let dns_and_ip = input(
        desc(
            2,
            &["/dns4/relay.example/tcp/1".into(), ip4("192.0.2.1")],
            MB,
            false,
        ),
        None,
    );
    let kept = *dns_and_ip.descriptor.identity();
    let listing = build_listing(vec![dns_only, dns_and_ip], &params(), T0);
    assert_eq!(identities(&listing), vec![kept]);
}

#[test]
fn guard_needs_both_uptime_and_measured_bandwidth() {
    let p = params();
    let now = T0 + p.guard_min_uptime_secs;
    let case = |seed: u8, claim: u64, measured: Option<u64>, listed_since: u64| {
        let i = ListingInput {
            listed_since,
            ..alone(seed, claim, measured)
        };
        build_listing(vec![i], &p, now)[0].flags.is_guard()
    };
    let enough = p.guard_min_bandwidth;
    assert!(case(1, 10 * MB, Some(enough), T0), "both: Guard");
    assert!(
        !case(2, 10 * MB, Some(10 * MB), T0 + 1),
        "uptime one second short"
    );
    assert!(
        !case(3, 10 * MB, None, 0),
        "unmeasured, however long listed"
    );
    assert!(!case(4, 10 * MB, Some(enough - 1), 0), "measured too low");
    assert!(
        !case(5, enough - 1, Some(10 * MB), 0),
        "its own claim is too low"
    );
    assert!(
        !case(6, 10 * MB, Some(10 * MB), now + 100),
        "listed_since in the future"
    );
}

#[test]
fn exit_flag_follows_the_policy() {
    let exit = input(desc(1, &[ip4("192.0.2.1")], MB, true), None);
    let middle = input(desc(2, &[ip4("198.51.100.1")], MB, false), None);
    let (ie, _) = (*exit.descriptor.identity(), 0);
    let listing = build_listing(vec![exit, middle], &params(), T0);
    for r in &listing {
        assert_eq!(r.flags.is_exit(), *r.identity() == ie);
        assert!(!r.flags.is_guard());
    }
}

#[test]
fn the_listing_does_not_depend_on_input_order() {
    // Mixed subnets, weights, ties and a repeated identity with two descriptors.
    let mut inputs: Vec<ListingInput> = (1..=40u8)
        .map(|s| {
            let addr = ip4(&format!("192.0.{}.{s}", s % 5));
            let measured = (s % 3 != 0).then_some(u64::from(s % 4) * MB);
            ListingInput {
                listed_since: T0 - u64::from(s) * DAY,
                ..input(desc(s, &[addr], 4 * MB, s % 2 == 0), measured)
            }
        })
        .collect();
    let mut later = inputs[0].clone();
    later.measured_bw = Some(9 * MB);
    inputs.push(later);
    let now = T0 + 2 * DAY;
    let p = ListingParams {
        max_per_ipv4_24: 3,
        guard_min_uptime_secs: 10 * DAY,
        ..params()
    };
    let reference = build_listing(inputs.clone(), &p, now);
    assert_eq!(reference.len(), 15);
    assert!(
        reference
            .windows(2)
            .all(|w| w[0].identity() < w[1].identity())
    );
    assert!(reference.iter().any(|r| r.flags.is_guard()));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..20 {
        inputs.shuffle(&mut rng);
        assert_eq!(build_listing(inputs.clone(), &p, now), reference);
    }
}

#[test]
fn a_listing_travels_through_a_snapshot_unchanged() {
    let set = registry_set(3);
    let p = ListingParams {
        guard_min_uptime_secs: 600,
        ..params()
    };
    let inputs = vec![
        alone(1, 1 << 62, Some(MB)),
        alone(2, MB, None),
        input(desc(3, &[ip4("192.0.2.3")], 10 * MB, true), Some(2 * MB)),
    ];
    let now = T0 + p.guard_min_uptime_secs;
    let listing = build_listing(inputs, &p, now);
    assert!(listing.iter().any(|r| r.flags.is_guard()));
    let mut signed = Snapshot::new(&set, now, now + HOUR, p.unmeasured_weight, listing.clone())
        .unwrap()
        .into_unsigned();
    for k in keys_in_index_order(&set, 3).iter().take(2) {
        signed.sign_with(&set, k).unwrap();
    }
    let verified = SignedSnapshot::decode(&signed.encode())
        .unwrap()
        .verify(&set, now)
        .unwrap();
    assert_eq!(verified.relays(), &listing[..]);
    let directory = verified.to_directory();
    let weights: Vec<u64> = directory.relays().iter().map(ListedRelay::weight).collect();
    let want: Vec<u64> = listing.iter().map(ListedRelay::weight).collect();
    assert_eq!(weights, want);
    assert!(weights.contains(&MB) && weights.contains(&p.unmeasured_weight));
}

#[test]
fn an_operator_directory_vouches_for_its_relays() {
    let exit = desc(1, &[ip4("192.0.2.1")], 3 * MB, true);
    let middle = desc(2, &[ip4("192.0.2.2")], 1 << 62, false);
    let dir = braid_directory::Directory::new(vec![exit.clone(), middle.clone()]).unwrap();
    let r = dir.relays();
    assert_eq!(
        (r[0].weight(), r[0].flags.is_guard(), r[0].flags.is_exit()),
        (3 * MB, true, true)
    );
    assert_eq!(
        (r[1].weight(), r[1].flags.is_guard(), r[1].flags.is_exit()),
        (1 << 62, true, false)
    );
    // The file carries descriptors only; read back, the same vouched entries.
    assert_eq!(
        braid_directory::Directory::from_text(&dir.to_text()).unwrap(),
        dir
    );
}
