//! The strand scheduler: per-strand RTT and delivery-rate estimates, resend timeouts, and the
//! randomized choice of a strand for each fragment.
//!
//! Each active strand gets a score, roughly the time a fragment sent on it now can expect to wait
//! for its ack: `srtt + min(inflight_bytes / rate, srtt)`, where `rate` is the strand's measured
//! delivery rate (bytes acknowledged per ms, smoothed; the queue term is left out until it is
//! measured). The queue term is capped at one RTT because a delivery rate measures what was
//! offered as much as what the strand can carry (a strand starved by the window looks slow), so
//! it may at most halve a strand's weight; real congestion also raises the RTT itself. Its
//! weight is `jitter / score`, where `jitter` is drawn once per strand and stream from
//! `[0.85, 1.15)`, and every fragment goes to a strand drawn at random with probability
//! proportional to its weight. So shares follow measured RTT and throughput (a strand that
//! delivers slowly accumulates unacknowledged bytes and its score grows, which is negative
//! feedback), but differ per stream and per fragment in a way a middle relay cannot predict
//! without the stream's seed. Failed strands get nothing. Not here: which fragment is sent
//! next (the sender's business).

use std::collections::VecDeque;

use crate::config::{Config, MAX_STRANDS};

use crate::rng::Rng;
use crate::stats::StrandStats;
use crate::wire::StrandId;

/// Lower bound of a smoothed RTT, so a 0 ms measurement cannot make a weight infinite.
const MIN_SRTT_MS: f64 = 1.0;

/// Per-strand state at the sender.
#[derive(Debug, Clone)]
pub(crate) struct Path {
    /// The strand.
    pub(crate) id: StrandId,
    /// Marked failed: never chosen again.
    pub(crate) failed: bool,
    /// Its carrier has no room right now: chosen only when every active strand is blocked.
    pub(crate) blocked: bool,
    srtt: f64,
    rttvar: f64,
    rate: f64,
    rate_measured: bool,
    epoch: Option<(u64, u64)>,
    jitter: f64,
    /// Payload bytes sent on this strand and not yet acknowledged or declared lost.
    pub(crate) inflight_bytes: usize,
    /// Transmissions on this strand in send order: (seq, sent at). Entries whose fragment was
    /// acked or resent elsewhere are skipped lazily when they reach the front.
    pub(crate) sent: VecDeque<(u64, u64)>,
    pub(crate) fragments_sent: u64,
    pub(crate) fragments_resent: u64,
    pub(crate) bytes_sent: u64,
    pub(crate) bytes_acked: u64,
}

impl Path {
    /// Current statistics.
    pub(crate) fn stats(&self) -> StrandStats {
        StrandStats {
            strand: self.id,
            failed: self.failed,
            fragments_sent: self.fragments_sent,
            fragments_resent: self.fragments_resent,
            bytes_sent: self.bytes_sent,
            bytes_acked: self.bytes_acked,
            srtt_ms: self.srtt,
            rate_bytes_per_ms: self.rate,
        }
    }
}

/// Strand estimates and the weighted random choice (see the module doc).
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub(crate) paths: Vec<Path>,
    rng: Rng,
    initial_rtt: f64,
    min_rto: u64,
    max_rto: u64,
}

impl Scheduler {
    /// A scheduler with no strands, randomized by `seed` (draw it per stream from a real random
    /// source).
    pub fn new(config: &Config, seed: u64) -> Self {
        Self {
            paths: Vec::new(),
            rng: Rng::new(seed),
            initial_rtt: f64::from(config.initial_rtt_ms.get()),
            min_rto: u64::from(config.min_rto_ms.get()),
            max_rto: u64::from(config.max_rto_ms.get()),
        }
    }

    /// Adds a strand with unmeasured estimates. Returns false (and adds nothing) if `id` is
    /// present or [`MAX_STRANDS`] strands are.
    pub fn add(&mut self, id: StrandId) -> bool {
        if self.index(id).is_some() || self.paths.len() >= usize::from(MAX_STRANDS) {
            return false;
        }
        let jitter = 0.85 + 0.3 * self.rng.next_f64();
        self.paths.push(Path {
            id,
            failed: false,
            blocked: false,
            srtt: self.initial_rtt,
            rttvar: self.initial_rtt / 2.0,
            rate: 0.0,
            rate_measured: false,
            epoch: None,
            jitter,
            inflight_bytes: 0,
            sent: VecDeque::new(),
            fragments_sent: 0,
            fragments_resent: 0,
            bytes_sent: 0,
            bytes_acked: 0,
        });
        true
    }

    /// The index of strand `id`.
    pub(crate) fn index(&self, id: StrandId) -> Option<usize> {
        self.paths.iter().position(|p| p.id == id)
    }

    /// Whether `id` is present and not failed.
    pub fn is_active(&self, id: StrandId) -> bool {
        self.index(id).is_some_and(|i| !self.paths[i].failed)
    }

    /// Number of strands that are present and not failed.
    pub fn active_count(&self) -> usize {
        self.paths.iter().filter(|p| !p.failed).count()
    }

    /// Feeds one RTT sample (RFC 6298 smoothing).
    pub fn on_rtt_sample(&mut self, id: StrandId, rtt_ms: u64) {
        let Some(i) = self.index(id) else { return };
        let p = &mut self.paths[i];
        let r = rtt_ms as f64;
        p.rttvar = 0.75 * p.rttvar + 0.25 * (p.srtt - r).abs();
        p.srtt = (0.875 * p.srtt + 0.125 * r).max(MIN_SRTT_MS);
    }

    /// Feeds `bytes` of payload acknowledged at `now` on strand `id` (delivery-rate estimate,
    /// sampled once per smoothed RTT).
    pub fn on_delivered(&mut self, id: StrandId, bytes: usize, now: u64) {
        let Some(i) = self.index(id) else { return };
        let p = &mut self.paths[i];
        p.bytes_acked += bytes as u64;
        let (start, acc) = p.epoch.unwrap_or((now, 0));
        let acc = acc + bytes as u64;
        let elapsed = now.saturating_sub(start);
        if elapsed as f64 >= p.srtt.max(MIN_SRTT_MS) {
            let sample = acc as f64 / elapsed as f64;
            p.rate = if p.rate_measured {
                0.75 * p.rate + 0.25 * sample
            } else {
                sample
            };
            p.rate_measured = true;
            p.epoch = Some((now, 0));
        } else {
            p.epoch = Some((start, acc));
        }
    }

    /// The resend timeout of strand `id` in ms, before per-fragment backoff.
    pub fn rto(&self, id: StrandId) -> u64 {
        let Some(i) = self.index(id) else {
            return self.max_rto;
        };
        let p = &self.paths[i];
        let rto = (p.srtt + (4.0 * p.rttvar).max(1.0)).ceil() as u64;
        rto.clamp(self.min_rto, self.max_rto)
    }

    /// The resend timeout after `sends` transmissions of one fragment (doubling per resend,
    /// capped at the maximum).
    pub(crate) fn backoff_rto(&self, id: StrandId, sends: u32) -> u64 {
        let shift = sends.saturating_sub(1).min(16);
        (self.rto(id) << shift).min(self.max_rto)
    }

    /// The weight of an active path (see the module doc).
    fn weight(p: &Path) -> f64 {
        let queue = if p.rate_measured && p.rate > 0.0 {
            p.inflight_bytes as f64 / p.rate
        } else {
            0.0
        };
        p.jitter / (p.srtt + queue.min(p.srtt))
    }

    /// Marks strand `id` as blocked (its carrier has no room now) or not. A blocked strand is
    /// chosen only when every active strand is blocked, so one full queue does not hold up a
    /// stream that other strands could carry.
    pub fn set_blocked(&mut self, id: StrandId, blocked: bool) {
        if let Some(i) = self.index(id) {
            self.paths[i].blocked = blocked;
        }
    }

    /// Picks a strand for the next fragment, avoiding `avoid` (the strand a resent fragment was
    /// lost on) when another is active, and blocked strands when an unblocked one is active.
    /// `None` if no strand is active.
    pub fn pick(&mut self, avoid: Option<StrandId>) -> Option<StrandId> {
        // Preference tiers: unblocked and not avoided, unblocked, not avoided, any active.
        let tiers: [&dyn Fn(&Path) -> bool; 4] = [
            &|p| !p.failed && !p.blocked && Some(p.id) != avoid,
            &|p| !p.failed && !p.blocked,
            &|p| !p.failed && Some(p.id) != avoid,
            &|p| !p.failed,
        ];
        for tier in tiers {
            let total: f64 = self
                .paths
                .iter()
                .filter(|p| tier(p))
                .map(Self::weight)
                .sum();
            if total <= 0.0 {
                continue;
            }
            let mut point = self.rng.next_f64() * total;
            let mut chosen = None;
            for p in self.paths.iter().filter(|p| tier(p)) {
                chosen = Some(p.id);
                point -= Self::weight(p);
                if point < 0.0 {
                    break;
                }
            }
            // If rounding left `point` at or above 0, the last candidate takes it.
            return chosen;
        }
        None
    }

    /// A uniform random index below `len` (`len > 0`), from the stream's generator.
    pub(crate) fn random_below(&mut self, len: usize) -> usize {
        self.rng.below(len)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    fn scheduler(k: u32) -> Scheduler {
        let mut s = Scheduler::new(&Config::default(), 7);
        for i in 0..k {
            assert!(s.add(StrandId(i)));
        }
        assert!(!s.add(StrandId(0)));
        s
    }

    #[test]
    fn blocked_strands_are_skipped_unless_all_are_blocked() {
        let mut s = scheduler(3);
        s.set_blocked(StrandId(0), true);
        s.set_blocked(StrandId(2), true);
        for _ in 0..200 {
            assert_eq!(s.pick(None), Some(StrandId(1)));
        }
        // Room beats avoidance: a resend goes to the only strand with room, even the one it
        // was lost on, rather than wait behind a full queue.
        assert_eq!(s.pick(Some(StrandId(1))), Some(StrandId(1)));
        s.set_blocked(StrandId(1), true);
        let mut seen = [false; 3];
        for _ in 0..300 {
            seen[s.pick(None).unwrap().0 as usize] = true;
        }
        assert_eq!(seen, [true; 3], "all blocked: any strand may be chosen");
        s.set_blocked(StrandId(0), false);
        assert_eq!(s.pick(Some(StrandId(0))), Some(StrandId(0)));
    }

    #[test]
    fn equal_strands_get_equal_shares_within_a_tenth() {
        for seed in 0..20 {
            let mut s = Scheduler::new(&Config::default(), seed);
            for i in 0..3 {
                s.add(StrandId(i));
            }
            let mut counts = [0u32; 3];
            for _ in 0..3000 {
                counts[s.pick(None).unwrap().0 as usize] += 1;
            }
            for c in counts {
                let share = f64::from(c) / 3000.0;
                assert!((share - 1.0 / 3.0).abs() < 0.1, "seed {seed}: {counts:?}");
            }
        }
    }

    #[test]
    fn shares_follow_rtt_and_failed_strands_get_nothing() {
        let mut s = scheduler(3);
        for _ in 0..50 {
            s.on_rtt_sample(StrandId(0), 50);
            s.on_rtt_sample(StrandId(1), 200);
        }
        s.paths[2].failed = true;
        let mut counts = [0u32; 3];
        for _ in 0..5000 {
            counts[s.pick(None).unwrap().0 as usize] += 1;
        }
        assert_eq!(counts[2], 0);
        assert!(counts[0] > 2 * counts[1], "{counts:?}");
        s.paths[0].failed = true;
        s.paths[1].failed = true;
        assert_eq!(s.pick(None), None);
    }

    #[test]
    fn avoid_is_honoured_unless_it_is_the_only_strand() {
        let mut s = scheduler(2);
        for _ in 0..200 {
            assert_eq!(s.pick(Some(StrandId(0))), Some(StrandId(1)));
        }
        s.paths[1].failed = true;
        assert_eq!(s.pick(Some(StrandId(0))), Some(StrandId(0)));
    }

    #[test]
    fn backlogged_strand_gets_less() {
        let mut s = scheduler(2);
        s.on_delivered(StrandId(0), 1000, 0);
        s.on_delivered(StrandId(0), 1000, 1000); // 2 bytes/ms measured
        assert!(s.paths[0].rate_measured);
        assert_eq!(s.paths[0].stats().rate_bytes_per_ms, 2.0);
        // 10000 bytes queued at 2 bytes/ms: score 500 + min(5000, 500) ms against 500 ms.
        s.paths[0].inflight_bytes = 10_000;
        let mut counts = [0u32; 2];
        for _ in 0..6000 {
            counts[s.pick(None).unwrap().0 as usize] += 1;
        }
        let share = f64::from(counts[0]) / 6000.0;
        assert!((0.2..0.46).contains(&share), "{counts:?}");
    }

    #[test]
    fn rto_follows_samples_within_bounds_and_backs_off() {
        let mut s = scheduler(1);
        let id = StrandId(0);
        assert_eq!(s.rto(id), 1500); // 500 + 4 * 250
        for _ in 0..100 {
            s.on_rtt_sample(id, 10);
        }
        assert_eq!(s.rto(id), 200); // clamped to min_rto
        assert_eq!(s.backoff_rto(id, 1), 200);
        assert_eq!(s.backoff_rto(id, 3), 800);
        assert_eq!(s.backoff_rto(id, 30), 60_000);
        assert_eq!(s.rto(StrandId(9)), 60_000);
    }
}
