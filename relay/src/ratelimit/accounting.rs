//! A byte budget per UTC day or month, after which a relay hibernates (takes no new circuits).
//!
//! Like Tor's `AccountingMax`, but counting all relayed bytes in both directions together.
//! Periods are aligned to UTC: a day starts at midnight, a month on the first at midnight.
//! The civil-date arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`
//! (proleptic Gregorian calendar, exact for every date a `u64` of Unix seconds after 1970 holds).
//! This module does not read the clock: every call takes `now_unix`.

use std::num::NonZeroU64;

const SECS_PER_DAY: u64 = 86_400;

/// How long one accounting period lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Period {
    /// From midnight UTC to the next midnight UTC.
    Day,
    /// From the first of the month, midnight UTC, to the first of the next month.
    #[default]
    Month,
}

/// A byte budget per period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountingLimit {
    /// Relayed bytes (both directions) allowed per period.
    pub budget: NonZeroU64,
    /// The period length.
    pub period: Period,
}

/// Days since 1970-01-01 of the civil date `year-month-day` (month 1..=12, day 1..=31).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let m = i64::from(month);
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// The civil date `(year, month, day)` of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let day = doy - (153 * mp + 2) / 5 + 1; // 1..=31
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // 1..=12
    let year = yoe + era * 400 + i64::from(month <= 2);
    // day is 1..=31 and month 1..=12 by construction, so both fit in u32.
    (year, month as u32, day as u32)
}

impl Period {
    /// Unix time at which the period containing `now_unix` began.
    pub fn start(self, now_unix: u64) -> u64 {
        let day_start = now_unix - now_unix % SECS_PER_DAY;
        match self {
            Period::Day => day_start,
            Period::Month => {
                let days = i64::try_from(now_unix / SECS_PER_DAY).unwrap_or(i64::MAX);
                let (y, m, _) = civil_from_days(days);
                to_unix(days_from_civil(y, m, 1))
            }
        }
    }

    /// Unix time at which the period beginning at `start` ends (the next period's start).
    pub fn end(self, start: u64) -> u64 {
        match self {
            Period::Day => start.saturating_add(SECS_PER_DAY),
            Period::Month => {
                let days = i64::try_from(start / SECS_PER_DAY).unwrap_or(i64::MAX);
                let (y, m, _) = civil_from_days(days);
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                to_unix(days_from_civil(y, m, 1))
            }
        }
    }
}

/// Unix seconds of a non-negative day count (saturating).
fn to_unix(days: i64) -> u64 {
    u64::try_from(days)
        .unwrap_or(0)
        .saturating_mul(SECS_PER_DAY)
}

/// Bytes relayed in the current period against the budget.
#[derive(Debug, Clone)]
pub struct Accounting {
    limit: AccountingLimit,
    period_start: u64,
    period_end: u64,
    used: u64,
}

impl Accounting {
    /// Starts counting in the period that contains `now_unix`, with nothing used.
    pub fn new(limit: AccountingLimit, now_unix: u64) -> Self {
        let period_start = limit.period.start(now_unix);
        Accounting {
            limit,
            period_start,
            period_end: limit.period.end(period_start),
            used: 0,
        }
    }

    /// Resumes counting after a restart: `used` bytes were counted in the period that began at
    /// `period_start` (as persisted). They count only if that is the period containing
    /// `now_unix` under `limit`; otherwise (a new period, or another period length) it starts
    /// from nothing.
    pub fn resume(limit: AccountingLimit, now_unix: u64, period_start: u64, used: u64) -> Self {
        let mut a = Accounting::new(limit, now_unix);
        if a.period_start == period_start {
            a.used = used;
        }
        a
    }

    /// Changes the budget at `now_unix` (a SIGHUP reload). Bytes counted so far are kept when
    /// the period length is unchanged; a new period length starts a new period from nothing.
    pub fn set_limit(&mut self, limit: AccountingLimit, now_unix: u64) {
        self.roll(now_unix);
        let used = if limit.period == self.limit.period {
            self.used
        } else {
            0
        };
        *self = Accounting::new(limit, now_unix);
        self.used = used;
    }

    /// When the current period began (Unix seconds).
    pub fn period_start(&self) -> u64 {
        self.period_start
    }

    /// Counts `bytes` relayed at `now_unix`, first starting a new period if this one is over.
    pub fn record(&mut self, now_unix: u64, bytes: u64) {
        self.roll(now_unix);
        self.used = self.used.saturating_add(bytes);
    }

    /// Whether the budget of the period containing `now_unix` is spent.
    pub fn exhausted(&self, now_unix: u64) -> bool {
        self.used_at(now_unix) >= self.limit.budget.get()
    }

    /// Bytes counted in the period containing `now_unix`.
    pub fn used_at(&self, now_unix: u64) -> u64 {
        if now_unix >= self.period_end || now_unix < self.period_start {
            0
        } else {
            self.used
        }
    }

    /// When the current period ends (Unix seconds).
    pub fn period_end(&self) -> u64 {
        self.period_end
    }

    /// The budget this accounting enforces.
    pub fn limit(&self) -> AccountingLimit {
        self.limit
    }

    fn roll(&mut self, now_unix: u64) {
        if now_unix >= self.period_end || now_unix < self.period_start {
            self.period_start = self.limit.period.start(now_unix);
            self.period_end = self.limit.period.end(self.period_start);
            self.used = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(y: i64, m: u32, d: u32, secs: u64) -> u64 {
        to_unix(days_from_civil(y, m, d)) + secs
    }

    fn limit(budget: u64, period: Period) -> AccountingLimit {
        AccountingLimit {
            budget: NonZeroU64::new(budget).expect("nonzero"),
            period,
        }
    }

    #[test]
    fn civil_dates_match_known_unix_times() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(unix(2000, 3, 1, 0), 951_868_800);
        assert_eq!(unix(2024, 2, 29, 0), 1_709_164_800);
        assert_eq!(unix(2024, 12, 31, 86_399), 1_735_689_599);
        assert_eq!(unix(2025, 1, 1, 0), 1_735_689_600);
        assert_eq!(civil_from_days(1_709_164_800 / 86_400), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // Every day from 1970 to 2400 round-trips and follows its predecessor.
        let mut prev = civil_from_days(-1);
        for days in 0..days_from_civil(2400, 1, 1) {
            let date = civil_from_days(days);
            assert_eq!(days_from_civil(date.0, date.1, date.2), days);
            let next_day = date.2 == prev.2 + 1 && date.1 == prev.1;
            let next_month = date.2 == 1 && (date.1 == prev.1 + 1 || (date.1 == 1 && prev.1 == 12));
            assert!(next_day || next_month, "{prev:?} -> {date:?}");
            prev = date;
        }
    }

    #[test]
    fn day_periods_start_at_midnight_utc() {
        let noon = unix(2024, 7, 15, 12 * 3600);
        assert_eq!(Period::Day.start(noon), unix(2024, 7, 15, 0));
        assert_eq!(Period::Day.end(unix(2024, 7, 15, 0)), unix(2024, 7, 16, 0));
        assert_eq!(
            Period::Day.start(unix(2024, 7, 16, 0)),
            unix(2024, 7, 16, 0)
        );
        assert_eq!(
            Period::Day.start(unix(2024, 7, 15, 86_399)),
            unix(2024, 7, 15, 0)
        );
    }

    #[test]
    fn month_periods_start_on_the_first() {
        let mid = unix(2023, 5, 17, 3600);
        assert_eq!(Period::Month.start(mid), unix(2023, 5, 1, 0));
        assert_eq!(Period::Month.end(unix(2023, 5, 1, 0)), unix(2023, 6, 1, 0));
        // December rolls over into January of the next year.
        assert_eq!(
            Period::Month.start(unix(2023, 12, 31, 86_399)),
            unix(2023, 12, 1, 0)
        );
        assert_eq!(Period::Month.end(unix(2023, 12, 1, 0)), unix(2024, 1, 1, 0));
        // February: 29 days in a leap year, 28 otherwise, 28 in 2100, 29 in 2000.
        let feb = |y| (Period::Month.end(unix(y, 2, 1, 0)) - unix(y, 2, 1, 0)) / 86_400;
        assert_eq!(feb(2024), 29);
        assert_eq!(feb(2023), 28);
        assert_eq!(feb(2100), 28);
        assert_eq!(feb(2000), 29);
        assert_eq!(
            Period::Month.start(unix(2024, 2, 29, 100)),
            unix(2024, 2, 1, 0)
        );
    }

    #[test]
    fn a_day_budget_is_spent_then_renewed_at_midnight() {
        let t0 = unix(2024, 3, 10, 23 * 3600);
        let mut a = Accounting::new(limit(10_000, Period::Day), t0);
        a.record(t0, 9_999);
        assert!(!a.exhausted(t0));
        a.record(t0 + 1, 1);
        assert!(a.exhausted(t0 + 1));
        assert_eq!(a.period_end(), unix(2024, 3, 11, 0));
        let last = unix(2024, 3, 10, 86_399);
        assert!(a.exhausted(last));
        // Midnight: a new period, even before anything is recorded in it.
        let midnight = unix(2024, 3, 11, 0);
        assert!(!a.exhausted(midnight));
        assert_eq!(a.used_at(midnight), 0);
        a.record(midnight, 4096);
        assert_eq!(a.used_at(midnight), 4096);
        assert_eq!(a.period_end(), unix(2024, 3, 12, 0));
    }

    #[test]
    fn a_month_budget_rolls_over_from_december_to_january() {
        let t0 = unix(2023, 12, 31, 86_000);
        let mut a = Accounting::new(limit(1 << 20, Period::Month), t0);
        a.record(t0, 1 << 20);
        assert!(a.exhausted(t0));
        assert_eq!(a.period_end(), unix(2024, 1, 1, 0));
        let jan = unix(2024, 1, 1, 5);
        assert!(!a.exhausted(jan));
        a.record(jan, 100);
        assert_eq!(a.used_at(jan), 100);
        assert_eq!(a.period_end(), unix(2024, 2, 1, 0));
    }

    #[test]
    fn a_month_budget_spans_a_leap_february() {
        let t0 = unix(2024, 2, 1, 0);
        let mut a = Accounting::new(limit(1000, Period::Month), t0);
        a.record(t0, 1000);
        assert!(a.exhausted(unix(2024, 2, 29, 86_399)));
        assert!(!a.exhausted(unix(2024, 3, 1, 0)));
    }

    #[test]
    fn resuming_counts_only_the_same_period() {
        let t = unix(2026, 12, 7, 3600);
        let l = limit(1000, Period::Month);
        let a = Accounting::resume(l, t, unix(2026, 12, 1, 0), 999);
        assert_eq!(a.used_at(t), 999);
        assert_eq!(a.period_start(), unix(2026, 12, 1, 0));
        // Saved last month: a new period.
        let a = Accounting::resume(l, t, unix(2026, 11, 1, 0), 999);
        assert_eq!(a.used_at(t), 0);
        // Saved under day periods: not this month's count.
        let a = Accounting::resume(limit(1000, Period::Day), t, unix(2026, 12, 1, 0), 999);
        assert_eq!(a.used_at(t), 0);
    }

    #[test]
    fn a_new_budget_keeps_the_count_unless_the_period_changes() {
        let t = unix(2026, 12, 7, 3600);
        let mut a = Accounting::new(limit(1000, Period::Month), t);
        a.record(t, 600);
        a.set_limit(limit(500, Period::Month), t + 1);
        assert!(a.exhausted(t + 1));
        a.set_limit(limit(5000, Period::Month), t + 2);
        assert!(!a.exhausted(t + 2));
        assert_eq!(a.used_at(t + 2), 600);
        a.set_limit(limit(5000, Period::Day), t + 3);
        assert_eq!(a.used_at(t + 3), 0);
        assert_eq!(a.period_end(), unix(2026, 12, 8, 0));
    }

    #[test]
    fn usage_saturates() {
        let mut a = Accounting::new(limit(u64::MAX, Period::Day), 0);
        a.record(0, u64::MAX);
        a.record(1, u64::MAX);
        assert_eq!(a.used_at(1), u64::MAX);
        assert!(a.exhausted(1));
    }
}
