//! The relay's one shared bandwidth limiter: paces relayed cells and hibernates on a spent budget.
//!
//! Every relayed cell (both directions, middle hops and exits) costs [`CELL_LEN`] bytes of the
//! one [`TokenBucket`] the whole relay shares. A forwarding loop that finds no credit flushes
//! what it has written and sleeps; while it sleeps it reads nothing from upstream, so QUIC flow
//! control pushes back to the sender. The [`Accounting`] budget counts the same bytes; once it
//! is spent the relay refuses new circuits (open ones continue) until the period ends.
//! The locks are held only for the arithmetic, never across an `.await`.
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
    bucket: Option<Mutex<TokenBucket>>,
    budget: Option<Mutex<Budget>>,
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
            bucket: bandwidth.map(|b| Mutex::new(TokenBucket::new(b, Duration::ZERO))),
            budget: accounting.map(|a| {
                Mutex::new(Budget {
                    accounting: Accounting::new(a, now_unix()),
                    hibernating: false,
                })
            }),
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
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        let now = self.epoch.elapsed();
        bucket
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(now, CELL_COST)
    }

    fn count(&self) {
        let Some(budget) = &self.budget else {
            return;
        };
        let now = now_unix();
        let mut b = budget.lock().unwrap_or_else(PoisonError::into_inner);
        b.accounting.record(now, CELL_COST);
        b.update(now);
    }

    /// The accounting budget now (`None`: no budget configured).
    pub(crate) fn accounting_state(&self) -> Option<AccountingState> {
        let budget = self.budget.as_ref()?;
        let now = now_unix();
        let b = budget.lock().unwrap_or_else(PoisonError::into_inner);
        Some(AccountingState {
            used_bytes: b.accounting.used_at(now),
            limit_bytes: b.accounting.limit().budget.get(),
            period_end_unix: b.accounting.period_end(),
            hibernating: b.hibernating,
        })
    }

    /// Whether a new circuit may start (false while the period's budget is spent).
    pub(crate) fn admits_new_circuit(&self) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        let now = now_unix();
        let mut b = budget.lock().unwrap_or_else(PoisonError::into_inner);
        b.update(now);
        !b.hibernating
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
            info!("new accounting period: accepting circuits again");
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
