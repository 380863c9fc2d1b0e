//! Bandwidth limits for relayed traffic: a token bucket and a per-day or per-month budget.
//!
//! Sans-IO: nothing here reads a clock or sleeps. [`TokenBucket`] takes a monotonic `now` (time
//! since any fixed epoch) and answers how long to wait; [`Accounting`] takes Unix seconds and
//! says whether the period's budget is spent. The driver (`service`) does the waiting and the
//! refusing. This module is not a scheduler: it does not decide which circuit goes first.

mod accounting;

use std::num::NonZeroU64;
use std::time::Duration;

pub use accounting::{Accounting, AccountingLimit, Period, civil_from_days, days_from_civil};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A sustained rate and a burst for relayed bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandwidthLimit {
    /// Long-run bytes per second.
    pub rate: NonZeroU64,
    /// Most bytes sent at once after an idle period (the bucket's size).
    pub burst: NonZeroU64,
}

/// A token bucket: holds up to `burst` bytes of credit, refilled at `rate` bytes per second.
///
/// Credit is kept in byte-nanoseconds (bytes × 10⁹), so refilling by any elapsed time is exact
/// and no fraction of a byte is lost to rounding however often it is asked. The bucket starts
/// full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    limit: BandwidthLimit,
    /// Credit in byte-nanoseconds, at most `burst * 10⁹`.
    credit: u128,
    /// When `credit` was last brought up to date.
    last: Duration,
}

impl TokenBucket {
    /// A full bucket at time `now`.
    pub fn new(limit: BandwidthLimit, now: Duration) -> Self {
        TokenBucket {
            limit,
            credit: u128::from(limit.burst.get()) * NANOS_PER_SEC,
            last: now,
        }
    }

    /// The limit this bucket enforces.
    pub fn limit(&self) -> BandwidthLimit {
        self.limit
    }

    /// Whole bytes of credit at `now`.
    pub fn available(&mut self, now: Duration) -> u64 {
        self.refill(now);
        // credit <= burst * 10^9, so the quotient fits in u64.
        u64::try_from(self.credit / NANOS_PER_SEC).unwrap_or(u64::MAX)
    }

    /// Takes `bytes` of credit at `now`, or says how long to wait until there is enough.
    ///
    /// On `Err(wait)` nothing is taken: call again after `wait` (another taker may have used
    /// the credit meanwhile, in which case the answer is a new wait). A request larger than the
    /// burst can never be covered; it waits for a full bucket and then empties it.
    pub fn take(&mut self, now: Duration, bytes: u64) -> Result<(), Duration> {
        self.refill(now);
        let need = u128::from(bytes.min(self.limit.burst.get())) * NANOS_PER_SEC;
        if self.credit >= need {
            self.credit -= need;
            return Ok(());
        }
        let rate = u128::from(self.limit.rate.get());
        let nanos = (need - self.credit).div_ceil(rate);
        // need <= burst * 10^9 and rate >= 1, so nanos <= u64::MAX * 10^9 / 1; saturate.
        Err(Duration::from_nanos(
            u64::try_from(nanos).unwrap_or(u64::MAX),
        ))
    }

    /// Changes the rate and burst at `now` (a SIGHUP reload): credit earned so far at the old
    /// rate is kept, capped at the new burst; waits computed from now on use the new rate.
    pub fn set_limit(&mut self, limit: BandwidthLimit, now: Duration) {
        self.refill(now);
        self.limit = limit;
        self.credit = self
            .credit
            .min(u128::from(limit.burst.get()) * NANOS_PER_SEC);
    }

    fn refill(&mut self, now: Duration) {
        let Some(elapsed) = now.checked_sub(self.last) else {
            // A clock that went backwards adds nothing; keep the later time.
            return;
        };
        self.last = now;
        let cap = u128::from(self.limit.burst.get()) * NANOS_PER_SEC;
        let added = elapsed
            .as_nanos()
            .saturating_mul(u128::from(self.limit.rate.get()));
        self.credit = self.credit.saturating_add(added).min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(v: u64) -> NonZeroU64 {
        NonZeroU64::new(v).expect("nonzero")
    }

    fn bucket(rate: u64, burst: u64) -> TokenBucket {
        TokenBucket::new(
            BandwidthLimit {
                rate: nz(rate),
                burst: nz(burst),
            },
            Duration::ZERO,
        )
    }

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_full_and_drains() {
        let mut b = bucket(1000, 4096);
        assert_eq!(b.available(Duration::ZERO), 4096);
        assert_eq!(b.take(Duration::ZERO, 4096), Ok(()));
        assert_eq!(b.available(Duration::ZERO), 0);
    }

    #[test]
    fn wait_is_the_exact_deficit_over_the_rate() {
        let mut b = bucket(1000, 4096);
        assert_eq!(b.take(Duration::ZERO, 4000), Ok(()));
        // 96 bytes left; 4000 more need 3904 bytes at 1000 B/s = 3.904 s.
        assert_eq!(
            b.take(Duration::ZERO, 4000),
            Err(Duration::from_millis(3904))
        );
        // Nothing was taken by the refusal: 1 s later, 1096 bytes.
        assert_eq!(b.available(Duration::from_secs(1)), 1096);
        assert_eq!(
            b.take(Duration::from_secs(1), 4000),
            Err(Duration::from_millis(2904))
        );
        assert_eq!(b.take(Duration::from_millis(3904), 4000), Ok(()));
        assert_eq!(b.available(Duration::from_millis(3904)), 0);
    }

    #[test]
    fn waits_round_up_to_the_nanosecond() {
        // 3 B/s: one byte takes 333 333 333.3 ns, so the wait is 333 333 334 ns.
        let mut b = bucket(3, 1);
        assert_eq!(b.take(Duration::ZERO, 1), Ok(()));
        assert_eq!(
            b.take(Duration::ZERO, 1),
            Err(Duration::from_nanos(333_333_334))
        );
        assert_eq!(
            b.take(Duration::from_nanos(333_333_333), 1),
            Err(Duration::from_nanos(1))
        );
        assert_eq!(b.take(Duration::from_nanos(333_333_334), 1), Ok(()));
    }

    #[test]
    fn refill_is_exact_in_small_steps() {
        // 1 byte per 1 ms step at 1000 B/s; a thousand 1 ms steps give exactly 1000 bytes.
        let mut b = bucket(1000, 10_000);
        assert_eq!(b.take(Duration::ZERO, 10_000), Ok(()));
        let mut taken = 0;
        for i in 1..=1000u32 {
            if b.take(MS * i, 1).is_ok() {
                taken += 1;
            }
        }
        assert_eq!(taken, 1000);
        assert_eq!(b.available(Duration::from_secs(1)), 0);
    }

    #[test]
    fn refill_never_exceeds_the_burst() {
        let mut b = bucket(1_000_000, 8192);
        assert_eq!(b.take(Duration::ZERO, 8192), Ok(()));
        assert_eq!(b.available(Duration::from_secs(3600)), 8192);
        assert_eq!(b.take(Duration::from_secs(3600), 8192), Ok(()));
        assert_eq!(
            b.take(Duration::from_secs(3600), 1),
            Err(Duration::from_micros(1))
        );
    }

    #[test]
    fn sustained_rate_matches_the_configuration() {
        // Take 4096-byte cells as fast as allowed for 10 simulated seconds after the burst.
        let mut b = bucket(2_000_000, 4096);
        let mut now = Duration::ZERO;
        let mut sent: u64 = 0;
        while now < Duration::from_secs(10) {
            match b.take(now, 4096) {
                Ok(()) => sent += 4096,
                Err(wait) => now += wait,
            }
        }
        // Burst (4096) plus 10 s at 2 MB/s, to within one cell.
        assert!(
            (20_000_000..=20_000_000 + 2 * 4096).contains(&sent),
            "{sent}"
        );
    }

    #[test]
    fn a_request_above_the_burst_waits_for_a_full_bucket() {
        let mut b = bucket(1000, 4096);
        assert_eq!(b.take(Duration::ZERO, 100), Ok(()));
        assert_eq!(
            b.take(Duration::ZERO, 1 << 20),
            Err(Duration::from_millis(100))
        );
        assert_eq!(b.take(Duration::from_millis(100), 1 << 20), Ok(()));
        assert_eq!(b.available(Duration::from_millis(100)), 0);
    }

    #[test]
    fn a_new_limit_keeps_earned_credit_and_paces_at_the_new_rate() {
        let mut b = bucket(1000, 4096);
        assert_eq!(b.take(Duration::ZERO, 4096), Ok(()));
        // 500 ms at 1000 B/s earned 500 bytes; the new limit keeps them.
        b.set_limit(
            BandwidthLimit {
                rate: nz(10_000),
                burst: nz(8192),
            },
            Duration::from_millis(500),
        );
        assert_eq!(b.available(Duration::from_millis(500)), 500);
        // From then on 10 000 B/s: 100 ms more gives 1000 more.
        assert_eq!(b.available(Duration::from_millis(600)), 1500);
        // A smaller burst caps the credit at once.
        b.set_limit(
            BandwidthLimit {
                rate: nz(10_000),
                burst: nz(1000),
            },
            Duration::from_millis(600),
        );
        assert_eq!(b.available(Duration::from_secs(10)), 1000);
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing() {
        let mut b = bucket(1000, 4096);
        assert_eq!(b.take(Duration::from_secs(10), 4096), Ok(()));
        assert_eq!(b.available(Duration::from_secs(5)), 0);
        assert_eq!(b.available(Duration::from_secs(11)), 1000);
    }

    #[test]
    fn huge_values_saturate_instead_of_overflowing() {
        let mut b = bucket(u64::MAX, u64::MAX);
        assert_eq!(b.take(Duration::ZERO, u64::MAX), Ok(()));
        assert_eq!(b.available(Duration::MAX), u64::MAX);
        let mut slow = bucket(1, u64::MAX);
        assert_eq!(slow.take(Duration::ZERO, u64::MAX), Ok(()));
        assert_eq!(
            slow.take(Duration::ZERO, u64::MAX),
            Err(Duration::from_nanos(u64::MAX))
        );
    }
}
