//! Plain counters a node reads for its metrics: a fixed-bucket latency histogram of relaxed
//! atomics and the bounded set of reasons a relay refuses a circuit.
//!
//! No metrics library here: the node crate maps these to Prometheus at scrape time. Every
//! update is one relaxed `fetch_add` (no lock), so counting costs the hot path next to nothing.
//! Not here: the relay's counters themselves (`service::RelayStats`, driver feature).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the handshake latency buckets, shared by the relay (circuit
/// create/extend) and the proxy (circuit build). The last bucket, `+Inf`, is implied.
pub const LATENCY_BOUNDS_SECS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram with the fixed buckets [`LATENCY_BOUNDS_SECS`]: per-bucket counts
/// (not cumulative) and the sum in microseconds, each a relaxed atomic: an observation is
/// two relaxed adds.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS_SECS.len() + 1],
    sum_micros: AtomicU64,
}

/// What a [`LatencyHistogram`] holds at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, count in this bucket only)`, `+Inf` (`f64::INFINITY`) last;
    /// not cumulative (prometheus-client's encoder adds them up).
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all observations, seconds.
    pub sum_secs: f64,
    /// Number of observations.
    pub count: u64,
}

impl LatencyHistogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BOUNDS_SECS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BOUNDS_SECS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The buckets, the sum and the count; the count is the buckets' total, so a scrape
    /// during an observation still sees a consistent histogram (the sum may be one ahead).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut total = 0u64;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            total += n;
            let bound = LATENCY_BOUNDS_SECS.get(i).copied().unwrap_or(f64::INFINITY);
            buckets.push((bound, n));
        }
        HistogramSnapshot {
            buckets,
            sum_secs: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: total,
        }
    }

    /// Observations recorded so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// Why a relay refused a new circuit (a bounded set: metric label values come from here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// `max_circuits` circuits are open.
    CircuitLimit,
    /// The previous hop has `max_circuits_per_peer` circuits open.
    PeerLimit,
    /// The accounting budget of this period is spent.
    Hibernating,
    /// `max_measure_circuits` measurement circuits are open.
    MeasureLimit,
}

impl RefusalReason {
    /// Every reason, in counter order.
    pub const ALL: [RefusalReason; 4] = [
        RefusalReason::CircuitLimit,
        RefusalReason::PeerLimit,
        RefusalReason::Hibernating,
        RefusalReason::MeasureLimit,
    ];

    /// The label value (snake case).
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::CircuitLimit => "circuit_limit",
            RefusalReason::PeerLimit => "peer_limit",
            RefusalReason::Hibernating => "hibernating",
            RefusalReason::MeasureLimit => "measure_limit",
        }
    }

    /// Its index in [`RefusalReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_cumulate() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_millis(40));
        h.observe(Duration::from_secs(60));
        let s = h.snapshot();
        assert_eq!(s.count, 3);
        assert_eq!(s.buckets.len(), LATENCY_BOUNDS_SECS.len() + 1);
        assert_eq!(s.buckets[0], (0.005, 1));
        assert_eq!(s.buckets[3], (0.05, 1));
        assert_eq!(s.buckets[11], (30.0, 0));
        assert_eq!(s.buckets[12], (f64::INFINITY, 1));
        assert!((s.sum_secs - 60.043).abs() < 1e-9);
    }

    #[test]
    fn reasons_index_their_place_in_all() {
        for (i, r) in RefusalReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
