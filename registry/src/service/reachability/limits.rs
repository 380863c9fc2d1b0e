//! Per-source limits on publishes, sans-IO (time passed in): a token bucket per source host
//! (an IPv4 address, or an IPv6 /64) in a bounded table, and the set of sources with a
//! publish being checked now (at most one each). It does not probe or decide reachability.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// The host key of a source IP: the address itself (IPv4, IPv4-mapped), or its /64 (IPv6),
/// the same granularity as the IP match.
pub(crate) fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per source: `burst` publishes at once, then one per `refill`. The table
/// holds at most `max_sources`; when full, buckets that have refilled (the same as no bucket)
/// go first, then the least recently charged one.
#[derive(Debug)]
pub(crate) struct PublishLimits {
    burst: f64,
    refill: Duration,
    max_sources: usize,
    buckets: HashMap<IpAddr, Bucket>,
    checking: HashSet<IpAddr>,
}

/// Why a publish may not be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limited {
    /// The source's bucket is empty; a token is back after this long.
    Rate(Duration),
    /// A publish of this source is being checked.
    InProgress,
}

impl PublishLimits {
    pub(crate) fn new(burst: u32, refill: Duration, max_sources: usize) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            refill,
            max_sources: max_sources.max(1),
            buckets: HashMap::new(),
            checking: HashSet::new(),
        }
    }

    /// Charges one publish to each of `keys` (source keys) at `now` and marks them as being
    /// checked; nothing is charged or marked when any of them is limited. Call [`Self::done`]
    /// with the same keys when the check ends.
    pub(crate) fn begin(&mut self, keys: &[IpAddr], now: Instant) -> Result<(), Limited> {
        if keys.iter().any(|k| self.checking.contains(k)) {
            return Err(Limited::InProgress);
        }
        let mut wait = Duration::ZERO;
        for key in keys {
            let tokens = self.tokens(key, now);
            if tokens < 1.0 {
                wait = wait.max(self.refill.mul_f64(1.0 - tokens));
            }
        }
        if !wait.is_zero() {
            return Err(Limited::Rate(wait));
        }
        for key in keys {
            let tokens = self.tokens(key, now) - 1.0;
            self.make_room(key);
            self.buckets.insert(*key, Bucket { tokens, at: now });
            self.checking.insert(*key);
        }
        Ok(())
    }

    /// The check of a publish from `keys` ended.
    pub(crate) fn done(&mut self, keys: &[IpAddr]) {
        for key in keys {
            self.checking.remove(key);
        }
    }

    /// Sources with a bucket now (for tests of the bound).
    #[cfg(test)]
    pub(crate) fn sources(&self) -> usize {
        self.buckets.len()
    }

    fn tokens(&self, key: &IpAddr, now: Instant) -> f64 {
        match self.buckets.get(key) {
            None => self.burst,
            Some(b) => {
                let gained =
                    now.saturating_duration_since(b.at).as_secs_f64() / self.refill.as_secs_f64();
                (b.tokens + gained).min(self.burst)
            }
        }
    }

    fn make_room(&mut self, key: &IpAddr) {
        if self.buckets.len() < self.max_sources || self.buckets.contains_key(key) {
            return;
        }
        let Some(now) = self.buckets.values().map(|b| b.at).max() else {
            return;
        };
        let full: Vec<IpAddr> = self
            .buckets
            .iter()
            .filter(|(k, _)| self.tokens(k, now) >= self.burst)
            .map(|(k, _)| *k)
            .collect();
        for k in full {
            self.buckets.remove(&k);
        }
        if self.buckets.len() >= self.max_sources {
            let oldest = self
                .buckets
                .iter()
                .filter(|(k, _)| !self.checking.contains(k))
                .min_by_key(|(_, b)| b.at)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.buckets.remove(&oldest);
            }
        }
    }
}
