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
