#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::limits::{Limited, PublishLimits, source_key};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn burst_then_one_per_refill() {
    let mut limits = PublishLimits::new(3, Duration::from_secs(30), 16);
    let a = [ip("198.51.100.7")];
    let t0 = Instant::now();
    for _ in 0..3 {
        limits.begin(&a, t0).unwrap();
        limits.done(&a);
    }
    let Err(Limited::Rate(wait)) = limits.begin(&a, t0) else {
        panic!("the fourth publish in a burst of 3 must be limited");
    };
    assert!(wait <= Duration::from_secs(30) && wait > Duration::from_secs(29));
    // Another source is not affected.
    limits.begin(&[ip("198.51.100.8")], t0).unwrap();
    // One token is back after one refill interval, not two.
    let t1 = t0 + Duration::from_secs(30);
    limits.begin(&a, t1).unwrap();
    limits.done(&a);
    assert!(matches!(limits.begin(&a, t1), Err(Limited::Rate(_))));
}

#[test]
fn one_publish_at_a_time_per_source() {
    let mut limits = PublishLimits::new(8, Duration::from_secs(1), 16);
    let a = [ip("203.0.113.1")];
    let now = Instant::now();
    limits.begin(&a, now).unwrap();
    assert_eq!(limits.begin(&a, now), Err(Limited::InProgress));
    limits.done(&a);
    limits.begin(&a, now).unwrap();
}

#[test]
fn ipv6_sources_count_per_64() {
    assert_eq!(source_key(ip("2001:db8:1:2::1")), ip("2001:db8:1:2::"));
    assert_eq!(
        source_key(ip("2001:db8:1:2:aaaa::9")),
        source_key(ip("2001:db8:1:2::1"))
    );
    assert_ne!(
        source_key(ip("2001:db8:1:3::1")),
        source_key(ip("2001:db8:1:2::1"))
    );
    assert_eq!(source_key(ip("::ffff:198.51.100.7")), ip("198.51.100.7"));
}

#[test]
fn the_table_is_bounded() {
    let mut limits = PublishLimits::new(2, Duration::from_secs(3600), 4);
    let now = Instant::now();
    for i in 0..100u8 {
        let key = [IpAddr::from([198, 51, 100, i])];
        limits.begin(&key, now).unwrap();
        limits.done(&key);
        assert!(limits.sources() <= 4, "{} sources kept", limits.sources());
    }
}
