//! The API's rate limit: a token bucket per key (each bearer token's, plus one shared by every
//! request without a valid token), refilled at `requests_per_sec` up to `burst`. Sans-IO: the
//! caller passes `now`. The number of buckets is bounded by [`MAX_RATE_KEYS`].

use std::collections::HashMap;
use std::time::Instant;

/// Most buckets kept; a new key past it replaces the bucket idle longest.
pub(crate) const MAX_RATE_KEYS: usize = 64;

/// Whose bucket a request draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// Every request without a valid token, together.
    Anonymous,
    /// One bearer token (the first bytes of its hash).
    Token([u8; 8]),
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets per key.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: HashMap<Key, Bucket>,
}

impl RateLimiter {
    /// `rate` requests per second, at most `burst` at once (both at least 1).
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        RateLimiter {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: HashMap::new(),
        }
    }

    /// Whether `key` may make one more request at `now` (and takes it if so).
    pub(crate) fn allow(&mut self, key: Key, now: Instant) -> bool {
        if !self.buckets.contains_key(&key) && self.buckets.len() >= MAX_RATE_KEYS {
            let idlest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k);
            if let Some(k) = idlest {
                self.buckets.remove(&k);
            }
        }
        let burst = self.burst;
        let bucket = self.buckets.entry(key).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
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
}
