//! The rate limiter's buckets on a made-up clock.

use std::time::Duration;

use super::*;

#[test]
fn burst_then_refusal_then_refill() {
    let mut l = RateLimiter::new(10, 5);
    let t0 = Instant::now();
    let k = Key::Token([1; 8]);
    assert!((0..5).all(|_| l.allow(k, t0)));
    assert!(!l.allow(k, t0));
    // Another key has its own bucket.
    assert!(l.allow(Key::Anonymous, t0));
    // 10 per second: one more after 100 ms.
    assert!(l.allow(k, t0 + Duration::from_millis(100)));
    assert!(!l.allow(k, t0 + Duration::from_millis(100)));
    // Refill stops at the burst.
    let later = t0 + Duration::from_secs(60);
    assert!((0..5).all(|_| l.allow(k, later)));
    assert!(!l.allow(k, later));
}

#[test]
fn buckets_are_bounded() {
    let mut l = RateLimiter::new(1, 1);
    let t0 = Instant::now();
    for i in 0..(MAX_RATE_KEYS as u64 * 3) {
        let now = t0 + Duration::from_millis(i);
        assert!(l.allow(Key::Token(i.to_be_bytes()), now));
        assert!(l.len() <= MAX_RATE_KEYS);
    }
}
