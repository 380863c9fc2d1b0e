//! Path selection: distinctness, exit policy, families, fallback, weighting and errors.

use std::collections::HashSet;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

fn relay(index: usize, ip: &str, bandwidth: u64, exit: bool) -> Candidate {
    Candidate {
        index,
        ip: Some(ip.parse().unwrap()),
        bandwidth,
        exit_for_target: exit,
        guard: true,
        exit,
        family: Vec::new(),
    }
}

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Ten relays in ten different /16s; relays 7, 8 and 9 are exits.
fn spread() -> Vec<Candidate> {
    (0..10)
        .map(|i| relay(100 + i, &format!("10.{i}.0.1"), 1000, i >= 7))
        .collect()
}

fn slash16(candidates: &[Candidate], index: usize) -> [u8; 2] {
    let c = candidates.iter().find(|c| c.index == index).unwrap();
    match c.ip.unwrap() {
        IpAddr::V4(ip) => [ip.octets()[0], ip.octets()[1]],
        IpAddr::V6(_) => unreachable!(),
    }
}

#[test]
fn paths_are_distinct_exit_last_and_exit_policy_respected() {
    let candidates = spread();
    let mut rng = rng(1);
    for hops in 1..=MAX_HOPS {
        let constraints = PathConstraints {
            hops,
            ..PathConstraints::default()
        };
        for _ in 0..200 {
            let path = select_path(&candidates, &constraints, &mut rng).unwrap();
            assert_eq!(path.len(), hops);
            let unique: HashSet<_> = path.iter().collect();
            assert_eq!(unique.len(), hops, "{path:?}");
            assert!((107..=109).contains(path.last().unwrap()), "{path:?}");
        }
    }
}

#[test]
fn distinct_subnets_when_possible() {
    // Twenty relays, four in each of five /16s; a 5-hop path drawn without the rule would
    // share a /16 93% of the time (1 - 16/19 * 12/18 * 8/17 * 4/16, uniform weights).
    let candidates: Vec<Candidate> = (0..20)
        .map(|i| relay(i, &format!("10.{}.0.{}", i % 5, i + 1), 100, i % 2 == 0))
        .collect();
    let constraints = PathConstraints {
        hops: 5,
        ..PathConstraints::default()
    };
    let mut rng = rng(2);
    for _ in 0..1000 {
        let path = select_path(&candidates, &constraints, &mut rng).unwrap();
        let nets: HashSet<_> = path.iter().map(|&i| slash16(&candidates, i)).collect();
        assert_eq!(nets.len(), path.len(), "{path:?}");
    }
}

#[test]
fn family_rule_forces_one_relay_per_subnet_when_tight() {
    // Three /16s and a 3-hop path: exactly one relay from each, every time, even though the
    // crowded subnet holds most of the bandwidth.
    let candidates = vec![
        relay(0, "10.0.0.1", 10_000, false),
        relay(1, "10.0.0.2", 10_000, false),
        relay(2, "10.0.9.9", 10_000, false),
        relay(3, "10.1.0.1", 1, false),
        relay(4, "10.2.0.1", 1, true),
    ];
    let mut rng = rng(3);
    for _ in 0..1000 {
        let path = select_path(&candidates, &PathConstraints::default(), &mut rng).unwrap();
        assert_eq!(path[2], 4);
        assert!(path.contains(&3), "{path:?}");
        assert!(
            path[..2].iter().filter(|&&i| i <= 2).count() == 1,
            "{path:?}"
        );
    }
}

#[test]
fn ipv6_families_are_slash32_and_mapped_v4_is_v4() {
    let candidates = vec![
        relay(0, "2001:db8:1::1", 100, false),
        relay(1, "2001:db8:2::1", 100, false), // same /32 as 0
        relay(2, "2001:db9::1", 1, false),
        relay(3, "::ffff:10.0.0.1", 100, false),
        relay(4, "10.0.5.5", 1, true), // same /16 as 3
    ];
    let mut rng = rng(4);
    for _ in 0..1000 {
        let path = select_path(&candidates, &PathConstraints::default(), &mut rng).unwrap();
        assert_eq!(path[2], 4);
        assert!(
            !path.contains(&3),
            "mapped 10.0/16 shares the exit's /16: {path:?}"
        );
        assert!(path.contains(&2), "{path:?}");
        assert!(path.contains(&0) || path.contains(&1), "{path:?}");
    }
}

#[test]
fn unknown_addresses_never_conflict() {
    let mut candidates: Vec<Candidate> = (0..3)
        .map(|i| Candidate {
            index: i,
            ip: None,
            bandwidth: 10,
            exit_for_target: i == 0,
            guard: true,
            exit: i == 0,
            family: Vec::new(),
        })
        .collect();
    candidates.push(relay(3, "127.0.0.1", 10, false));
    let path = select_path(&candidates, &PathConstraints::default(), &mut rng(5)).unwrap();
    assert_eq!(path.len(), 3);
}

#[test]
fn falls_back_when_all_relays_share_a_subnet() {
    let candidates: Vec<Candidate> = (0..5)
        .map(|i| relay(i, &format!("127.0.0.{}", i + 1), 100, i == 4))
        .collect();
    let mut rng = rng(6);
    let mut guards = HashSet::new();
    for _ in 0..500 {
        let path = select_path(&candidates, &PathConstraints::default(), &mut rng).unwrap();
        let unique: HashSet<_> = path.iter().collect();
        assert_eq!(unique.len(), 3);
        assert_eq!(path[2], 4);
        guards.insert(path[0]);
    }
    assert_eq!(guards.len(), 4, "every non-exit serves as guard");
}

#[test]
fn exclusions_and_forced_exit() {
    let candidates = spread();
    let constraints = PathConstraints {
        hops: 4,
        exclude: vec![100, 101, 102, 108],
        exit: Some(109),
        ..PathConstraints::default()
    };
    let mut rng = rng(7);
    for _ in 0..500 {
        let path = select_path(&candidates, &constraints, &mut rng).unwrap();
        assert_eq!(path[3], 109);
        assert!(
            path.iter().all(|i| !constraints.exclude.contains(i)),
            "{path:?}"
        );
    }
}

#[test]
fn guard_bandwidth_weighting() {
    // The exit is the only exit; guards are relay 0 (10x) and relay 1.
    let candidates = vec![
        relay(0, "10.0.0.1", 10_000, false),
        relay(1, "10.1.0.1", 1_000, false),
        relay(2, "10.2.0.1", 1_000, true),
    ];
    let constraints = PathConstraints {
        hops: 2,
        ..PathConstraints::default()
    };
    let mut rng = rng(8);
    let mut counts = [0u32; 2];
    for _ in 0..10_000 {
        let path = select_path(&candidates, &constraints, &mut rng).unwrap();
        counts[path[0]] += 1;
    }
    let ratio = f64::from(counts[0]) / f64::from(counts[1]);
    assert!(
        (8.5..11.5).contains(&ratio),
        "ratio {ratio} from {counts:?}"
    );
}

#[test]
fn exit_bandwidth_weighting() {
    let candidates = vec![
        relay(0, "10.0.0.1", 1_000, false),
        relay(1, "10.1.0.1", 10_000, true),
        relay(2, "10.2.0.1", 1_000, true),
    ];
    let constraints = PathConstraints {
        hops: 1,
        ..PathConstraints::default()
    };
    let mut rng = rng(9);
    let mut counts = [0u32; 3];
    for _ in 0..10_000 {
        counts[select_path(&candidates, &constraints, &mut rng).unwrap()[0]] += 1;
    }
    assert_eq!(counts[0], 0, "a non-exit is never the exit");
    let ratio = f64::from(counts[1]) / f64::from(counts[2]);
    assert!(
        (8.5..11.5).contains(&ratio),
        "ratio {ratio} from {counts:?}"
    );
}

#[test]
fn zero_bandwidth_only_when_nothing_else() {
    let candidates = vec![
        relay(0, "10.0.0.1", 0, false),
        relay(1, "10.1.0.1", 5, false),
        relay(2, "10.2.0.1", 0, true),
    ];
    let two = PathConstraints {
        hops: 2,
        ..PathConstraints::default()
    };
    let mut rng = rng(10);
    for _ in 0..200 {
        assert_eq!(
            select_path(&candidates, &two, &mut rng).unwrap(),
            vec![1, 2]
        );
    }
    let three = PathConstraints::default();
    assert_eq!(select_path(&candidates, &three, &mut rng).unwrap().len(), 3);
}

#[test]
fn same_seed_same_path() {
    let candidates = spread();
    let a = select_path(&candidates, &PathConstraints::default(), &mut rng(11)).unwrap();
    let b = select_path(&candidates, &PathConstraints::default(), &mut rng(11)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn errors() {
    let candidates = spread();
    let mut rng = rng(12);
    for hops in [0, MAX_HOPS + 1] {
        let c = PathConstraints {
            hops,
            ..PathConstraints::default()
        };
        assert_eq!(
            select_path(&candidates, &c, &mut rng),
            Err(PathError::BadHops(hops))
        );
    }
    let no_exits: Vec<Candidate> = spread()
        .into_iter()
        .filter(|c| !c.exit_for_target)
        .collect();
    assert_eq!(
        select_path(&no_exits, &PathConstraints::default(), &mut rng),
        Err(PathError::NoExit)
    );
    assert_eq!(
        select_path(&[], &PathConstraints::default(), &mut rng),
        Err(PathError::NoExit)
    );
    let exits_excluded = PathConstraints {
        exclude: vec![107, 108, 109],
        ..PathConstraints::default()
    };
    assert_eq!(
        select_path(&candidates, &exits_excluded, &mut rng),
        Err(PathError::NoExit)
    );
    for index in [100, 108, 999] {
        // 100 is not an exit, 108 is excluded, 999 does not exist.
        let c = PathConstraints {
            exclude: vec![108],
            exit: Some(index),
            ..PathConstraints::default()
        };
        assert_eq!(
            select_path(&candidates, &c, &mut rng),
            Err(PathError::ExitNotUsable { index })
        );
    }
    let too_many = PathConstraints {
        hops: 8,
        exclude: vec![100, 101, 102],
        ..PathConstraints::default()
    };
    assert_eq!(
        select_path(&candidates, &too_many, &mut rng),
        Err(PathError::NotEnoughRelays {
            needed: 8,
            available: 7
        })
    );
    // A duplicated index counts once.
    let dup = vec![relay(1, "10.0.0.1", 1, true), relay(1, "10.1.0.1", 1, true)];
    let two = PathConstraints {
        hops: 2,
        ..PathConstraints::default()
    };
    assert_eq!(
        select_path(&dup, &two, &mut rng),
        Err(PathError::NotEnoughRelays {
            needed: 2,
            available: 1
        })
    );
}

// ---- declared families, sibling strands, position weights ----

use weights::{Class, ClassTotals, WEIGHT_SCALE, WeightCase};

/// A relay with explicit flags and declared family (candidate indexes).
fn flagged(index: usize, ip: &str, bandwidth: u64, guard: bool, exit: bool) -> Candidate {
    Candidate {
        guard,
        exit,
        ..relay(index, ip, bandwidth, exit)
    }
}

/// Declares `a` and `b` one family (both ways, as the router flattens it).
fn family(candidates: &mut [Candidate], a: usize, b: usize) {
    candidates[a].family.push(b);
    candidates[b].family.push(a);
}

fn related(candidates: &[Candidate], a: usize, b: usize) -> bool {
    candidates[a].family.contains(&b) || candidates[b].family.contains(&a)
}

#[test]
fn two_relays_of_a_declared_family_never_share_a_path() {
    // Twelve relays in twelve /16s; families {0, 1}, {2, 3}, {4, 5, 6} (pairwise) and the
    // exit 10 with relay 7. Relays 0 and 1 carry most of the bandwidth, so without the rule
    // they would share most paths.
    let mut candidates: Vec<Candidate> = (0..12)
        .map(|i| {
            let bw = if i < 2 { 50_000 } else { 1_000 };
            relay(i, &format!("10.{i}.0.1"), bw, i >= 10)
        })
        .collect();
    family(&mut candidates, 0, 1);
    family(&mut candidates, 2, 3);
    family(&mut candidates, 4, 5);
    family(&mut candidates, 5, 6);
    family(&mut candidates, 4, 6);
    family(&mut candidates, 7, 10);
    let mut rng = rng(20);
    let mut seen = HashSet::new();
    for hops in [3, 4, 5] {
        let constraints = PathConstraints {
            hops,
            ..PathConstraints::default()
        };
        for _ in 0..2000 {
            let path = select_path(&candidates, &constraints, &mut rng).unwrap();
            for (i, &a) in path.iter().enumerate() {
                seen.insert(a);
                for &b in &path[i + 1..] {
                    assert!(!related(&candidates, a, b), "{a} and {b} on {path:?}");
                }
            }
        }
    }
    assert_eq!(seen.len(), 12, "every relay is used somewhere: {seen:?}");
}

#[test]
fn a_declared_family_is_never_relaxed() {
    // Only a path through the family {0, 1} exists: no path at all.
    let mut candidates = vec![
        relay(0, "10.0.0.1", 100, false),
        relay(1, "10.1.0.1", 100, false),
        relay(2, "10.2.0.1", 100, true),
    ];
    family(&mut candidates, 0, 1);
    assert!(matches!(
        select_path(&candidates, &PathConstraints::default(), &mut rng(21)),
        Err(PathError::NoRelayForHop { .. })
    ));
    // Even on a loopback network, where the network rule is dropped.
    let mut loopback: Vec<Candidate> = (0..4)
        .map(|i| relay(i, &format!("127.0.0.{}", i + 1), 100, i == 3))
        .collect();
    family(&mut loopback, 0, 3);
    let mut rng = rng(22);
    for _ in 0..500 {
        let (path, rule) =
            select_path_with_rule(&loopback, &PathConstraints::default(), &mut rng).unwrap();
        assert_eq!(rule, SubnetRule::Dropped);
        assert!(!path.contains(&0), "0 is the exit's family: {path:?}");
    }
}

/// The strands of one stream as the manager builds them: a first path, then `k - 1` more to
/// its exit, each with the guards and middles chosen so far as siblings.
fn strand_set(
    candidates: &[Candidate],
    k: usize,
    rng: &mut StdRng,
) -> Vec<(Vec<usize>, SubnetRule)> {
    let first = select_path_with_rule(candidates, &PathConstraints::default(), rng).unwrap();
    let exit = *first.0.last().unwrap();
    let mut used: Vec<usize> = first.0[..first.0.len() - 1].to_vec();
    let mut set = vec![first];
    for _ in 1..k {
        let constraints = PathConstraints {
            exit: Some(exit),
            siblings: used.clone(),
            ..PathConstraints::default()
        };
        let (path, rule) = select_path_with_rule(candidates, &constraints, rng).unwrap();
        used.extend_from_slice(&path[..path.len() - 1]);
        set.push((path, rule));
    }
    set
}

#[test]
fn strands_guards_and_middles_share_no_network_or_family_across_strands() {
    // Ten non-exits in eight /16s ({4, 5} and {6, 7} share one each), families {0, 1} and
    // {2, 3}; exits 10 and 11. Three strands need six guards and middles, pairwise unrelated:
    // exactly one from each of {0,1}, {2,3}, {4,5}, {6,7}, {8}, {9}.
    let ips = [
        "10.0.0.1",
        "10.1.0.1",
        "10.2.0.1",
        "10.3.0.1",
        "10.4.0.1",
        "10.4.0.2",
        "10.6.0.1",
        "10.6.0.2",
        "10.8.0.1",
        "10.9.0.1",
        "10.10.0.1",
        "10.11.0.1",
    ];
    let mut candidates: Vec<Candidate> = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| relay(i, ip, 1000 + 100 * i as u64, i >= 10))
        .collect();
    family(&mut candidates, 0, 1);
    family(&mut candidates, 2, 3);
    let mut rng = rng(23);
    let mut guards = HashSet::new();
    for _ in 0..500 {
        let set = strand_set(&candidates, 3, &mut rng);
        let hops: Vec<(usize, usize)> = set
            .iter()
            .enumerate()
            .flat_map(|(s, (p, _))| p[..p.len() - 1].iter().map(move |&r| (s, r)))
            .collect();
        assert_eq!(hops.len(), 6);
        for &(s, a) in &hops {
            for &(t, b) in &hops {
                if s != t {
                    assert_ne!(slash16(&candidates, a), slash16(&candidates, b), "{set:?}");
                    assert!(!related(&candidates, a, b), "{a} and {b}: {set:?}");
                }
            }
        }
        assert!(set.iter().all(|(_, rule)| *rule == SubnetRule::Strict));
        guards.extend(set.iter().map(|(p, _)| p[0]));
    }
    assert_eq!(
        guards.len(),
        10,
        "every non-exit serves as guard: {guards:?}"
    );
}

#[test]
fn the_network_rule_relaxes_one_level_at_a_time() {
    // Non-exits in two /16s, the exit in a third: one path keeps every network distinct, a
    // second strand cannot avoid the first one's networks and keeps only its own distinct.
    let candidates = vec![
        relay(0, "10.0.0.1", 100, false),
        relay(1, "10.0.0.2", 100, false),
        relay(2, "10.1.0.1", 100, false),
        relay(3, "10.1.0.2", 100, false),
        relay(4, "10.2.0.1", 100, true),
    ];
    let mut rng = rng(24);
    for _ in 0..300 {
        let set = strand_set(&candidates, 2, &mut rng);
        assert_eq!(set[0].1, SubnetRule::Strict);
        assert_eq!(set[1].1, SubnetRule::PathOnly, "{set:?}");
        for (path, _) in &set {
            assert_ne!(slash16(&candidates, path[0]), slash16(&candidates, path[1]));
        }
    }
    // Every relay in 127.0/16: the rule is dropped, explicitly.
    let loopback: Vec<Candidate> = (0..5)
        .map(|i| relay(i, &format!("127.0.0.{}", i + 1), 100, i == 4))
        .collect();
    let (_, rule) =
        select_path_with_rule(&loopback, &PathConstraints::default(), &mut rng).unwrap();
    assert_eq!(rule, SubnetRule::Dropped);
    let (_, rule) =
        select_path_with_rule(&spread(), &PathConstraints::default(), &mut rng).unwrap();
    assert_eq!(rule, SubnetRule::Strict);
}

/// `g`, `m`, `e`, `d` relays of each class (1000 bytes/s each), every one in its own /16;
/// indexes in that order.
fn classes(g: usize, m: usize, e: usize, d: usize) -> Vec<Candidate> {
    let kinds = [
        (g, true, false),
        (m, false, false),
        (e, false, true),
        (d, true, true),
    ];
    kinds
        .iter()
        .flat_map(|&(n, guard, exit)| std::iter::repeat_n((guard, exit), n))
        .enumerate()
        .map(|(i, (guard, exit))| flagged(i, &format!("10.{i}.0.1"), 1000, guard, exit))
        .collect()
}

/// How often each relay appeared at each position (guard, middle, exit) over `n` 3-hop paths.
fn position_counts(candidates: &[Candidate], n: usize, seed: u64) -> Vec<[u32; 3]> {
    let mut counts = vec![[0u32; 3]; candidates.len()];
    let mut rng = rng(seed);
    for _ in 0..n {
        let path = select_path(candidates, &PathConstraints::default(), &mut rng).unwrap();
        counts[path[0]][0] += 1;
        counts[path[1]][1] += 1;
        counts[path[2]][2] += 1;
    }
    counts
}

#[test]
fn scarce_exits_are_never_guards_or_middles() {
    // G = 6000, M = 2000, E = 500, D = 500: E < T/3 and E + D < T/3 (case 3a).
    let mut candidates = classes(6, 2, 1, 1);
    candidates[8].bandwidth = 500;
    candidates[9].bandwidth = 500;
    let refs: Vec<&Candidate> = candidates.iter().collect();
    let w = PositionWeights::of(&refs);
    assert_eq!(w.case, WeightCase::ExitsScarceSmallD);
    assert_eq!((w.wgd, w.wmd, w.wme), (0, 0, 0));
    assert_eq!((w.wee, w.wed), (WEIGHT_SCALE, WEIGHT_SCALE));
    let counts = position_counts(&candidates, 3000, 25);
    for exit in [8, 9] {
        assert_eq!(counts[exit][..2], [0, 0], "exit {exit}: {counts:?}");
        assert!(counts[exit][2] > 1000, "{counts:?}");
    }
    // Relays without the Guard flag are never guards either.
    assert_eq!(counts[6][0] + counts[7][0], 0, "{counts:?}");
    assert!(counts[6][1] > 0 && counts[7][1] > 0, "{counts:?}");
}

#[test]
fn with_plenty_of_exit_bandwidth_exits_serve_as_middles() {
    // G = 3000, M = 2000, E = 3000, D = 1000: neither scarce (case 1).
    let candidates = classes(3, 2, 3, 1);
    let refs: Vec<&Candidate> = candidates.iter().collect();
    let w = PositionWeights::of(&refs);
    assert_eq!(w.case, WeightCase::Plenty);
    assert!(w.wme > 0 && w.wmd > 0, "{w:?}");
    let counts = position_counts(&candidates, 3000, 26);
    let exits_as_middle: u32 = (5..9).map(|i| counts[i][1]).sum();
    assert!(exits_as_middle > 200, "{counts:?}");
    // Case 1 gives Wgd = 0 and here Wgg = 1, so Wmg = 0: weight 0 at a position means never
    // there, however much bandwidth.
    assert_eq!((w.wgd, w.wmg), (0, 0), "{w:?}");
    assert_eq!(
        counts[8][0], 0,
        "the guard+exit relay is never a guard: {counts:?}"
    );
    for g in 0..3 {
        assert_eq!(counts[g][1], 0, "guard {g} is never a middle: {counts:?}");
        assert!(counts[g][0] > 500, "{counts:?}");
    }
    for e in 5..8 {
        assert_eq!(
            counts[e][0], 0,
            "an exit-only relay is never a guard: {counts:?}"
        );
    }
}

#[test]
fn weights_sum_sanity_over_many_networks() {
    let s = WEIGHT_SCALE;
    let steps = [0u128, 1, 500, 1000, 2500, 4000, 9000];
    let mut cases = HashSet::new();
    for &g in &steps {
        for &m in &steps {
            for &e in &steps {
                for &d in &steps {
                    let totals = ClassTotals { g, e, d, m };
                    let w = PositionWeights::compute(totals);
                    cases.insert(format!("{:?}", w.case));
                    let all = [w.wgg, w.wgd, w.wmg, w.wmm, w.wme, w.wmd, w.wee, w.wed];
                    assert!(all.iter().all(|&x| x <= s), "{totals:?}: {w:?}");
                    if totals.total() == 0 {
                        assert_eq!(w.case, WeightCase::NoBandwidth);
                        continue;
                    }
                    // Each class's bandwidth is spent exactly once over the positions.
                    assert_eq!(w.wgg + w.wmg, s, "{totals:?}: {w:?}");
                    assert_eq!(w.wme + w.wee, s, "{totals:?}: {w:?}");
                    assert_eq!(w.wmm, s);
                    let dsum = w.wgd + w.wmd + w.wed;
                    assert!(dsum.abs_diff(s) <= 1, "{totals:?}: {w:?}");
                    let unclamped = |x: u32| 0 < x && x < s;
                    if w.case == WeightCase::Plenty && unclamped(w.wmd) && unclamped(w.wme) {
                        // Case 1 balances the positions: each carries T / 3.
                        let t = totals.total() as f64;
                        let f = |x: u32| f64::from(x) / f64::from(s);
                        let guard = g as f64 * f(w.wgg) + d as f64 * f(w.wgd);
                        let middle = g as f64 * f(w.wmg)
                            + m as f64
                            + e as f64 * f(w.wme)
                            + d as f64 * f(w.wmd);
                        for side in [guard, middle] {
                            assert!((side - t / 3.0).abs() <= t * 0.01, "{totals:?}: {w:?}");
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases.len(), 8, "every case is reached: {cases:?}");
}

#[test]
fn class_of_flags() {
    assert_eq!(Class::of(true, false), Class::Guard);
    assert_eq!(Class::of(false, true), Class::Exit);
    assert_eq!(Class::of(true, true), Class::GuardExit);
    assert_eq!(Class::of(false, false), Class::Plain);
}

#[test]
fn a_forced_guard_is_the_first_hop_and_never_elsewhere() {
    let candidates = spread();
    let mut rng = rng(11);
    for guard in [100, 103, 107] {
        let c = PathConstraints {
            guard: Some(guard),
            ..PathConstraints::default()
        };
        for _ in 0..100 {
            let path = select_path(&candidates, &c, &mut rng).unwrap();
            assert_eq!(path[0], guard);
            assert_eq!(path.len(), 3);
            assert_eq!(path.iter().filter(|&&i| i == guard).count(), 1);
            assert!(path[2] >= 107 && path[2] != guard);
        }
    }
    // With a forced exit too, and exclusions honoured.
    let c = PathConstraints {
        guard: Some(101),
        exit: Some(109),
        exclude: vec![102, 103],
        ..PathConstraints::default()
    };
    for _ in 0..100 {
        let path = select_path(&candidates, &c, &mut rng).unwrap();
        assert_eq!((path[0], path[2]), (101, 109));
        assert!(![102, 103].contains(&path[1]));
    }
    // The guard's /16 is avoided when possible.
    let mut same = spread();
    same.push(relay(110, "10.1.9.9", 1_000_000, false));
    let c = PathConstraints {
        guard: Some(101),
        ..PathConstraints::default()
    };
    for _ in 0..100 {
        assert!(!select_path(&same, &c, &mut rng).unwrap().contains(&110));
    }
}

#[test]
fn a_forced_guard_that_cannot_be_used_is_an_error() {
    let candidates = spread();
    let mut rng = rng(12);
    let err = |c: PathConstraints| {
        select_path(&candidates, &c, &mut StdRng::seed_from_u64(13)).unwrap_err()
    };
    let unknown = PathConstraints {
        guard: Some(5),
        ..PathConstraints::default()
    };
    assert_eq!(err(unknown), PathError::GuardNotUsable { index: 5 });
    let excluded = PathConstraints {
        guard: Some(101),
        exclude: vec![101],
        ..PathConstraints::default()
    };
    assert_eq!(err(excluded), PathError::GuardNotUsable { index: 101 });
    let is_exit = PathConstraints {
        guard: Some(109),
        exit: Some(109),
        ..PathConstraints::default()
    };
    assert_eq!(err(is_exit), PathError::GuardNotUsable { index: 109 });
    // One hop: the guard must be an exit for the target.
    let one = PathConstraints {
        hops: 1,
        guard: Some(108),
        ..PathConstraints::default()
    };
    assert_eq!(select_path(&candidates, &one, &mut rng).unwrap(), vec![108]);
    let one_middle = PathConstraints {
        hops: 1,
        guard: Some(100),
        ..PathConstraints::default()
    };
    assert_eq!(err(one_middle), PathError::GuardNotUsable { index: 100 });
}
