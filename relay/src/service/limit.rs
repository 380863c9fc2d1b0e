//! The relay's one shared bandwidth limiter: paces relayed cells and hibernates on a spent budget.
//!
//! Every relayed cell (both directions, middle hops and exits) costs [`CELL_LEN`] bytes of the
//! one [`TokenBucket`] the whole relay shares. A forwarding loop that finds no credit flushes
//! what it has written and sleeps; while it sleeps it reads nothing from upstream, so QUIC flow
//! control pushes back to the sender. The [`Accounting`] budget counts the same bytes; once it
//! is spent the relay refuses new circuits (open ones continue) until the period ends.
//! The locks are held only for the arithmetic, never across an `.await`. Both limits can be
//! changed while circuits run ([`Limiter::set_bandwidth`], [`Limiter::set_accounting`], a
//! SIGHUP reload): a circuit waiting for credit asks again after its wait and then sees the
//! new rate, so no circuit is dropped.
//! This is not a fair scheduler: circuits compete for credit in whatever order they wake.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWrite;
use tracing::info;

use crate::cell::CELL_LEN;
use crate::error::RelayError;
use crate::ratelimit::{Accounting, AccountingLimit, BandwidthLimit, TokenBucket};
use crate::shared::io::CellWriter;

/// Bytes one relayed cell costs.
const CELL_COST: u64 = CELL_LEN as u64;

/// A relay's accounting budget at one moment (for metrics and status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountingState {
    /// Bytes relayed in the current period.
    pub used_bytes: u64,
    /// The period's budget, bytes.
    pub limit_bytes: u64,
    /// When the current period ends (unix seconds).
    pub period_end_unix: u64,
    /// Whether the relay refuses new circuits because the budget is spent.
    pub hibernating: bool,
    /// When the current period began (unix seconds; persisted with `used_bytes`).
    pub period_start_unix: u64,
}

/// The accounting state and whether the relay is hibernating.
#[derive(Debug)]
struct Budget {
    accounting: Accounting,
    hibernating: bool,
}

/// Rate limit and accounting shared by every circuit of one relay.
#[derive(Debug)]
pub(crate) struct Limiter {
    epoch: Instant,
    bucket: Mutex<Option<TokenBucket>>,
    budget: Mutex<Option<Budget>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Limiter {
    /// A limiter; `None` for either part means that part does not limit.
    pub(crate) fn new(
        bandwidth: Option<BandwidthLimit>,
        accounting: Option<AccountingLimit>,
    ) -> Self {
        Limiter {
            epoch: Instant::now(),
            bucket: Mutex::new(bandwidth.map(|b| TokenBucket::new(b, Duration::ZERO))),
            budget: Mutex::new(accounting.map(|a| Budget {
                accounting: Accounting::new(a, now_unix()),
                hibernating: false,
            })),
        }
    }

    /// Sets the rate limit now (`None`: no limit), keeping credit already earned.
    pub(crate) fn set_bandwidth(&self, bandwidth: Option<BandwidthLimit>) {
        let now = self.epoch.elapsed();
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        *bucket = match (bucket.take(), bandwidth) {
            (Some(mut b), Some(limit)) => {
                b.set_limit(limit, now);
                Some(b)
            }
            (None, Some(limit)) => Some(TokenBucket::new(limit, now)),
            (_, None) => None,
        };
    }

    /// Sets the accounting budget now (`None`: no budget); bytes counted in this period are
    /// kept while the period length is unchanged.
    pub(crate) fn set_accounting(&self, accounting: Option<AccountingLimit>) {
        let now = now_unix();
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        *budget = match (budget.take(), accounting) {
            (Some(mut b), Some(limit)) => {
                b.accounting.set_limit(limit, now);
                Some(b)
            }
            (None, Some(limit)) => Some(Budget {
                accounting: Accounting::new(limit, now),
                hibernating: false,
            }),
            (_, None) => None,
        };
        if let Some(b) = budget.as_mut() {
            b.update(now);
        }
    }

    /// Resumes the count persisted before a restart (see [`Accounting::resume`]).
    pub(crate) fn resume_accounting(&self, period_start: u64, used: u64) {
        let now = now_unix();
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = budget.as_mut() {
            b.accounting = Accounting::resume(b.accounting.limit(), now, period_start, used);
            b.update(now);
        }
    }

    /// Waits for credit for one relayed cell, flushing `w` first if it has to wait (so cells
    /// already written do not sit in the buffer while this direction sleeps).
    pub(crate) async fn pace<W: AsyncWrite + Unpin>(
        &self,
        w: &mut CellWriter<W>,
    ) -> Result<(), RelayError> {
        while let Err(wait) = self.try_take() {
            w.flush().await?;
            tokio::time::sleep(wait).await;
        }
        self.count();
        Ok(())
    }

    /// Waits for credit for one relayed cell that has no writer of its own to flush.
    pub(crate) async fn pace_incoming(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait).await;
        }
        self.count();
    }

    fn try_take(&self) -> Result<(), Duration> {
        let now = self.epoch.elapsed();
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        match bucket.as_mut() {
            Some(b) => b.take(now, CELL_COST),
            None => Ok(()),
        }
    }

    fn count(&self) {
        let now = now_unix();
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(b) = budget.as_mut() {
            b.accounting.record(now, CELL_COST);
            b.update(now);
        }
    }

    /// The accounting budget now (`None`: no budget configured).
    pub(crate) fn accounting_state(&self) -> Option<AccountingState> {
        let now = now_unix();
        let budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        budget.as_ref().map(|b| AccountingState {
            used_bytes: b.accounting.used_at(now),
            limit_bytes: b.accounting.limit().budget.get(),
            period_end_unix: b.accounting.period_end(),
            hibernating: b.hibernating,
            period_start_unix: b.accounting.period_start(),
        })
    }

    /// Whether a new circuit may start (false while the period's budget is spent).
    pub(crate) fn admits_new_circuit(&self) -> bool {
        let now = now_unix();
        let mut budget = self.budget.lock().unwrap_or_else(PoisonError::into_inner);
        match budget.as_mut() {
            Some(b) => {
                b.update(now);
                !b.hibernating
            }
            None => true,
        }
    }
}

impl Budget {
    /// Enters or leaves hibernation as the budget at `now` says, logging each change once.
    fn update(&mut self, now: u64) {
        let exhausted = self.accounting.exhausted(now);
        if exhausted && !self.hibernating {
            self.hibernating = true;
            info!(
                budget = self.accounting.limit().budget.get(),
                until_unix = self.accounting.period_end(),
                "accounting budget spent: hibernating (no new circuits) until the period ends"
            );
        } else if !exhausted && self.hibernating {
            self.hibernating = false;
            info!(
                "accounting budget available again (new period or bigger budget): accepting circuits"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU64;

    use super::*;
    use crate::ratelimit::Period;

    fn nz(v: u64) -> NonZeroU64 {
        NonZeroU64::new(v).expect("nonzero")
    }

    #[tokio::test]
    async fn pacing_holds_cells_to_the_rate() {
        let limiter = Limiter::new(
            Some(BandwidthLimit {
                rate: nz(CELL_COST * 100),
                burst: nz(CELL_COST),
            }),
            None,
        );
        let start = Instant::now();
        for _ in 0..21 {
            limiter.pace_incoming().await;
        }
        // One cell from the full bucket, then 20 at 100 cells/s: 200 ms.
        let paced = start.elapsed();
        assert!(
            (Duration::from_millis(195)..Duration::from_millis(400)).contains(&paced),
            "{paced:?}"
        );
    }

    #[tokio::test]
    async fn a_spent_budget_refuses_new_circuits() {
        let limiter = Limiter::new(
            None,
            Some(AccountingLimit {
                budget: nz(3 * CELL_COST),
                period: Period::Day,
            }),
        );
        for _ in 0..2 {
            limiter.pace_incoming().await;
            assert!(limiter.admits_new_circuit());
        }
        limiter.pace_incoming().await;
        assert!(!limiter.admits_new_circuit());
        // Open circuits keep relaying.
        limiter.pace_incoming().await;
        assert!(!limiter.admits_new_circuit());
    }

    #[tokio::test]
    async fn a_rate_change_applies_to_waiting_cells() {
        let slow = BandwidthLimit {
            rate: nz(CELL_COST),
            burst: nz(CELL_COST),
        };
        let limiter = std::sync::Arc::new(Limiter::new(Some(slow), None));
        limiter.pace_incoming().await;
        // The next cell would wait a second at the old rate; lift the rate meanwhile.
        let l = limiter.clone();
        let waiting = tokio::spawn(async move {
            let t = Instant::now();
            for _ in 0..20 {
                l.pace_incoming().await;
            }
            t.elapsed()
        });
        limiter.set_bandwidth(Some(BandwidthLimit {
            rate: nz(CELL_COST * 1000),
            burst: nz(CELL_COST),
        }));
        let took = waiting.await.expect("join");
        // At most the one wait begun at the old rate (1 s), then 19 cells at 1000/s.
        assert!(took < Duration::from_millis(1500), "{took:?}");
        limiter.set_bandwidth(None);
        let t = Instant::now();
        for _ in 0..1000 {
            limiter.pace_incoming().await;
        }
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_resumed_count_and_a_lowered_budget_hibernate() {
        let limit = AccountingLimit {
            budget: nz(10 * CELL_COST),
            period: Period::Month,
        };
        let limiter = Limiter::new(None, Some(limit));
        let state = limiter.accounting_state().expect("budget");
        assert_eq!(state.used_bytes, 0);
        limiter.resume_accounting(state.period_start_unix, 9 * CELL_COST);
        assert!(limiter.admits_new_circuit());
        limiter.pace_incoming().await;
        assert!(!limiter.admits_new_circuit());
        assert_eq!(
            limiter.accounting_state().expect("budget").used_bytes,
            10 * CELL_COST
        );
        // A bigger budget by reload wakes it, a smaller one puts it back to sleep.
        limiter.set_accounting(Some(AccountingLimit {
            budget: nz(20 * CELL_COST),
            ..limit
        }));
        assert!(limiter.admits_new_circuit());
        limiter.set_accounting(Some(limit));
        assert!(!limiter.admits_new_circuit());
        // A count from another period is not resumed.
        limiter.resume_accounting(state.period_start_unix.saturating_sub(86_400 * 40), 1);
        assert!(limiter.admits_new_circuit());
    }

    #[tokio::test]
    async fn no_limits_means_no_waiting_and_no_refusing() {
        let limiter = Limiter::new(None, None);
        let t = Instant::now();
        for _ in 0..10_000 {
            limiter.pace_incoming().await;
        }
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(limiter.admits_new_circuit());
    }
}
