//! How often a failure that repeats is logged: the first at once, then at most once per
//! interval with the count since ("registry X unreachable (12 failures in 60 s)"), and a
//! recovery once. A plain decision on the `Instant` passed in; it does not log by itself.

use std::time::{Duration, Instant};

/// What to log for one failure or success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Report {
    /// Nothing now (a repeat inside the interval, or a success after no failure).
    Quiet,
    /// The first failure of a run: log it (at warn, or info when the failure is expected).
    First,
    /// The failure goes on: `count` failures in the last `over` (since the last report).
    Again {
        /// Failures since the last report, this one included.
        count: u64,
        /// Time since the last report.
        over: Duration,
    },
    /// A success after `failures` failures in all: log the recovery once.
    Recovered {
        /// Failures of the run that ended.
        failures: u64,
    },
}

/// One failing thing's log budget.
#[derive(Debug, Clone)]
pub struct FailureLog {
    interval: Duration,
    /// Failures since the last report, the time of that report, failures of the whole run.
    run: Option<(u64, Instant, u64)>,
}

impl FailureLog {
    /// Reports a repeated failure at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            run: None,
        }
    }

    /// One more failure at `now`.
    pub fn failure(&mut self, now: Instant) -> Report {
        match &mut self.run {
            None => {
                self.run = Some((0, now, 1));
                Report::First
            }
            Some((since, last, total)) => {
                *since += 1;
                *total += 1;
                let over = now.saturating_duration_since(*last);
                if over < self.interval {
                    return Report::Quiet;
                }
                let count = *since;
                (*since, *last) = (0, now);
                Report::Again { count, over }
            }
        }
    }

    /// A success at `now`: ends a run of failures.
    pub fn success(&mut self) -> Report {
        match self.run.take() {
            Some((_, _, failures)) => Report::Recovered { failures },
            None => Report::Quiet,
        }
    }

    /// Whether a run of failures is going on.
    pub fn failing(&self) -> bool {
        self.run.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_at_once_then_once_per_interval_with_a_count() {
        let t0 = Instant::now();
        let mut log = FailureLog::new(Duration::from_secs(60));
        assert_eq!(log.success(), Report::Quiet);
        assert_eq!(log.failure(t0), Report::First);
        // Every 500 ms for a minute: quiet, then one line with the count.
        let mut reports = Vec::new();
        for i in 1..=120u64 {
            let r = log.failure(t0 + Duration::from_millis(500 * i));
            if r != Report::Quiet {
                reports.push(r);
            }
        }
        assert_eq!(
            reports,
            vec![Report::Again {
                count: 120,
                over: Duration::from_secs(60)
            }]
        );
        assert!(log.failing());
        assert_eq!(log.success(), Report::Recovered { failures: 121 });
        assert!(!log.failing());
        // A new run starts with a first report again.
        assert_eq!(log.failure(t0 + Duration::from_secs(100)), Report::First);
    }
}
