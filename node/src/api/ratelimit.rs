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
mod tests;
