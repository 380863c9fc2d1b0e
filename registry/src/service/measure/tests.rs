//! The measurement scheduler on a virtual clock, and the book's rules.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::SeedableRng as _;
use rand::rngs::StdRng;

use super::schedule::{Action, BUDGET_WINDOW, Limits, Scheduler};
use super::{MeasureBook, MeasureSettings};

const HOUR: Duration = Duration::from_secs(3600);
const FIRST: Duration = Duration::from_secs(10);

fn limits(max_concurrent: usize, bytes_per_hour: u64) -> Limits {
    Limits {
        interval: HOUR,
        first_delay: FIRST,
        max_concurrent,
        bytes: 1,
        bytes_per_hour,
    }
}

/// Starts everything the scheduler allows at `now`; returns the relays and what came next.
fn start_all(s: &mut Scheduler<u32>, now: Instant) -> (Vec<u32>, Action<u32>) {
    let mut started = Vec::new();
    for _ in 0..10_000 {
        match s.poll(now) {
            Action::Measure(k) => started.push(k),
            other => return (started, other),
        }
    }
    panic!("the scheduler never stopped starting measurements");
}

#[test]
fn new_relays_are_measured_within_the_first_delay() {
    let mut rng = StdRng::seed_from_u64(1);
    let t0 = Instant::now();
    let mut s = Scheduler::new(limits(16, 1000));
    s.set_relays(t0, 0..8, &mut rng);
    let (started, next) = start_all(&mut s, t0);
    assert!(started.len() < 8, "not all at once: {started:?}");
    match next {
        Action::WaitUntil(t) => assert!(t <= t0 + FIRST),
        other => panic!("{other:?}"),
    }
    let (mut later, _) = start_all(&mut s, t0 + FIRST);
    later.extend(started);
    later.sort_unstable();
    assert_eq!(later, (0..8).collect::<Vec<_>>());
}

#[test]
fn at_most_max_concurrent_run_and_one_per_relay() {
    let mut rng = StdRng::seed_from_u64(2);
    let t0 = Instant::now();
    let mut s = Scheduler::new(limits(3, 1000));
    s.set_relays(t0, 0..10, &mut rng);
    let now = t0 + FIRST;
    let (started, next) = start_all(&mut s, now);
    assert_eq!(started.len(), 3);
    assert_eq!(next, Action::Idle);
    assert_eq!(s.running(), 3);
    // One finishes: exactly one more starts, never a relay already running.
    s.finished(now, &started[0], true, &mut rng);
    let (more, _) = start_all(&mut s, now);
    assert_eq!(more.len(), 1);
    assert!(!started[1..].contains(&more[0]));
    assert!(more[0] != started[0], "a just-measured relay is not due");
    // Finishing an unknown or idle relay changes nothing.
    s.finished(now, &999, true, &mut rng);
    s.finished(now, &started[0], true, &mut rng);
    assert_eq!(s.running(), 3);
}

#[test]
fn the_hourly_budget_holds_over_a_sliding_hour() {
    let mut rng = StdRng::seed_from_u64(3);
    let t0 = Instant::now();
    let mut s = Scheduler::new(limits(100, 5));
    s.set_relays(t0, 0..20, &mut rng);
    let mut starts: Vec<Instant> = Vec::new();
    let mut now = t0;
    // Ten virtual hours in 1-minute steps; every measurement ends at once.
    while now < t0 + 10 * HOUR {
        let (started, _) = start_all(&mut s, now);
        for k in &started {
            starts.push(now);
            s.finished(now, k, true, &mut rng);
        }
        now += Duration::from_secs(60);
    }
    for (i, t) in starts.iter().enumerate() {
        let in_window = starts[i..]
            .iter()
            .take_while(|u| u.duration_since(*t) < BUDGET_WINDOW)
            .count();
        assert!(in_window <= 5, "{in_window} measurements within an hour");
    }
    assert!(starts.len() >= 45, "the budget was used: {}", starts.len());
    // A budget below one measurement never starts one (and says so by idling).
    let mut s = Scheduler::new(limits(4, 0));
    s.set_relays(t0, 0..3, &mut rng);
    assert_eq!(start_all(&mut s, t0 + FIRST), (vec![], Action::Idle));
}

#[test]
fn measurements_spread_over_the_interval() {
    let mut rng = StdRng::seed_from_u64(4);
    let t0 = Instant::now();
    let mut s = Scheduler::new(limits(4, 1_000_000));
    let relays = 120u32;
    s.set_relays(t0, 0..relays, &mut rng);
    let mut per_relay: BTreeMap<u32, u32> = BTreeMap::new();
    // Starts per 6-minute bucket over hours 3 to 10 (after the first waves settled).
    let bucket = Duration::from_secs(360);
    let mut buckets: BTreeMap<u64, u32> = BTreeMap::new();
    let mut now = t0;
    while now < t0 + 10 * HOUR {
        let (started, _) = start_all(&mut s, now);
        for k in started {
            *per_relay.entry(k).or_default() += 1;
            if now >= t0 + 3 * HOUR {
                let b = (now - t0).as_secs() / bucket.as_secs();
                *buckets.entry(b).or_default() += 1;
            }
            s.finished(now + Duration::from_secs(5), &k, true, &mut rng);
        }
        now += Duration::from_secs(5);
    }
    // Each relay about once an hour: 10 hours, ±25 % jitter.
    for (k, n) in &per_relay {
        assert!((8..=14).contains(n), "relay {k} measured {n} times");
    }
    // No waves: 120 per hour is 12 per bucket; no bucket holds more than three times that.
    let total: u32 = buckets.values().sum();
    let mean = f64::from(total) / 70.0;
    let max = buckets.values().copied().max().unwrap_or(0);
    assert!(f64::from(max) <= 3.0 * mean, "max {max}, mean {mean}");
}

#[test]
fn new_relays_go_before_re_measurements() {
    let mut rng = StdRng::seed_from_u64(5);
    let t0 = Instant::now();
    let mut s = Scheduler::new(Limits {
        first_delay: Duration::from_millis(1),
        ..limits(1, 1_000_000)
    });
    s.set_relays(t0, 0..4, &mut rng);
    let mut now = t0 + Duration::from_millis(1);
    for _ in 0..4 {
        let (started, _) = start_all(&mut s, now);
        assert_eq!(started.len(), 1);
        s.finished(now, &started[0], true, &mut rng);
    }
    // All four are overdue by now; a new relay comes first anyway.
    now += 2 * HOUR;
    s.set_relays(now, 0..5, &mut rng);
    let (started, _) = start_all(&mut s, now + Duration::from_millis(1));
    assert_eq!(started, vec![4]);
}

#[test]
fn failures_retry_sooner_and_unlisted_relays_are_forgotten() {
    let mut rng = StdRng::seed_from_u64(6);
    let t0 = Instant::now();
    let mut s = Scheduler::new(limits(8, 1_000_000));
    s.set_relays(t0, 0..2, &mut rng);
    let now = t0 + FIRST;
    let (started, _) = start_all(&mut s, now);
    assert_eq!(started.len(), 2);
    s.finished(now, &0, false, &mut rng);
    // Retried within a quarter interval (+25 %), not an hour.
    let (again, _) = start_all(&mut s, now + HOUR * 5 / 16);
    assert_eq!(again, vec![0]);
    // Relay 1 is unlisted while running: its end is taken, then it is gone.
    s.set_relays(now, [0], &mut rng);
    s.finished(now, &1, true, &mut rng);
    let (none, _) = start_all(&mut s, now + 10 * HOUR);
    assert!(!none.contains(&1));
}

#[test]
fn the_book_keeps_the_latest_result_only() {
    let book = MeasureBook::default();
    let peer = braid_transport::PeerId::random();
    assert_eq!(book.latest(&peer), None);
    book.record(peer, Some(1_000_000));
    assert_eq!(book.latest(&peer), Some(1_000_000));
    book.record(peer, Some(2_000));
    assert_eq!(book.latest(&peer), Some(2_000));
    // A failed measurement leaves no measurement.
    book.record(peer, None);
    assert_eq!(book.latest(&peer), None);
}

#[test]
fn settings_refuse_unbounded_values() {
    assert!(MeasureSettings::default().validate().is_ok());
    let bad = [
        MeasureSettings {
            bytes: 0,
            ..MeasureSettings::default()
        },
        MeasureSettings {
            bytes: braid_relay::measure::MEASURE_MAX_BYTES + 1,
            ..MeasureSettings::default()
        },
        MeasureSettings {
            max_concurrent: 0,
            ..MeasureSettings::default()
        },
        MeasureSettings {
            bytes_per_hour: 1,
            ..MeasureSettings::default()
        },
        MeasureSettings {
            interval: Duration::ZERO,
            ..MeasureSettings::default()
        },
    ];
    for s in bad {
        assert!(s.validate().is_err(), "{s:?}");
    }
}
