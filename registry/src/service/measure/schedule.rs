//! When to measure which relay: the sans-IO scheduler of a registry's bandwidth measurements.
//!
//! The caller passes `now` and an RNG into every call and does what [`Action`] says. Rules:
//!
//! - **New relays first and soon.** A relay the scheduler has not seen is due at a random point
//!   within `first_delay` (seconds), and relays never measured go before re-measurements.
//! - **Spread.** After a measurement, the relay is due again after `interval` times a random
//!   factor in [0.75, 1.25) (after a failure: a quarter of that), so measurements spread out
//!   over the interval instead of coming in waves.
//! - **Bounded.** At most `max_concurrent` measurements run at once, at most one per relay, and
//!   the measurements started in any sliding hour carry at most `bytes_per_hour` bytes
//!   (each is charged `bytes` when it starts). When the budget is short, relays wait (and are
//!   measured less often than `interval`).
//! - A relay no longer listed is forgotten (a running measurement of it still finishes).
//!
//! Not here: running a measurement (the driver in `measure.rs`), keeping results (`MeasureBook`).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rand::{Rng, RngExt as _};

/// The sliding window of the byte budget.
pub(crate) const BUDGET_WINDOW: Duration = Duration::from_secs(3600);

/// What the scheduler needs to know.
#[derive(Clone, Debug)]
pub(crate) struct Limits {
    /// Mean time between two measurements of one relay.
    pub interval: Duration,
    /// A new relay is measured within this (plus waiting for a free slot or budget).
    pub first_delay: Duration,
    /// Measurements at once.
    pub max_concurrent: usize,
    /// Bytes one measurement is charged.
    pub bytes: u64,
    /// Bytes the measurements started in any sliding hour may carry.
    pub bytes_per_hour: u64,
}

/// What the caller must do next.
#[must_use]
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action<K> {
    /// Start measuring this relay now; report the end with [`Scheduler::finished`].
    Measure(K),
    /// Nothing can start before this instant (or before a measurement finishes or the relay
    /// list changes).
    WaitUntil(Instant),
    /// Nothing to do until a measurement finishes or the relay list changes.
    Idle,
}

#[derive(Clone, Debug)]
struct Entry {
    due: Instant,
    measured: bool,
    running: bool,
    listed: bool,
}

/// The schedule of one registry's measurements. `K` names a relay.
#[derive(Debug)]
pub(crate) struct Scheduler<K> {
    limits: Limits,
    relays: BTreeMap<K, Entry>,
    running: usize,
    /// Start times of the measurements charged in the last [`BUDGET_WINDOW`]; at most
    /// `bytes_per_hour / bytes` entries.
    spent: VecDeque<Instant>,
}

impl<K: Ord + Clone> Scheduler<K> {
    /// A scheduler with no relays.
    pub(crate) fn new(limits: Limits) -> Self {
        Scheduler {
            limits,
            relays: BTreeMap::new(),
            running: 0,
            spent: VecDeque::new(),
        }
    }

    /// Measurements running now.
    #[cfg(test)]
    pub(crate) fn running(&self) -> usize {
        self.running
    }

    /// Replaces the set of listed relays: new ones become due within `first_delay`, relays no
    /// longer listed are forgotten (once their running measurement, if any, finishes).
    pub(crate) fn set_relays<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        listed: impl IntoIterator<Item = K>,
        rng: &mut R,
    ) {
        for e in self.relays.values_mut() {
            e.listed = false;
        }
        for k in listed {
            match self.relays.get_mut(&k) {
                Some(e) => e.listed = true,
                None => {
                    let due = now + jitter(rng, Duration::ZERO, self.limits.first_delay);
                    let entry = Entry {
                        due,
                        measured: false,
                        running: false,
                        listed: true,
                    };
                    self.relays.insert(k, entry);
                }
            }
        }
        self.relays.retain(|_, e| e.listed || e.running);
    }

    /// The next thing to do at `now`.
    pub(crate) fn poll(&mut self, now: Instant) -> Action<K> {
        while self
            .spent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= BUDGET_WINDOW)
        {
            self.spent.pop_front();
        }
        if self.running >= self.limits.max_concurrent {
            return Action::Idle;
        }
        let budget_left = self
            .limits
            .bytes_per_hour
            .saturating_sub(self.limits.bytes.saturating_mul(self.spent.len() as u64));
        if budget_left < self.limits.bytes {
            return match self.spent.front() {
                Some(oldest) => Action::WaitUntil(*oldest + BUDGET_WINDOW),
                // A budget below one measurement: nothing can ever start.
                None => Action::Idle,
            };
        }
        // Never-measured relays first, then the earliest due.
        let due_now = self
            .relays
            .iter()
            .filter(|(_, e)| e.listed && !e.running && e.due <= now)
            .min_by_key(|(_, e)| (e.measured, e.due))
            .map(|(k, _)| k.clone());
        if let Some(k) = due_now {
            if let Some(e) = self.relays.get_mut(&k) {
                e.running = true;
            }
            self.running += 1;
            self.spent.push_back(now);
            return Action::Measure(k);
        }
        self.relays
            .values()
            .filter(|e| e.listed && !e.running)
            .map(|e| e.due)
            .min()
            .map_or(Action::Idle, Action::WaitUntil)
    }

    /// A measurement of `relay` started by [`Action::Measure`] ended at `now`; `ok` says
    /// whether it gave a result.
    pub(crate) fn finished<R: Rng + ?Sized>(
        &mut self,
        now: Instant,
        relay: &K,
        ok: bool,
        rng: &mut R,
    ) {
        let Some(e) = self.relays.get_mut(relay) else {
            return;
        };
        if !e.running {
            return;
        }
        e.running = false;
        self.running = self.running.saturating_sub(1);
        let interval = if ok {
            self.limits.interval
        } else {
            self.limits.interval / 4
        };
        e.due = now + jitter(rng, interval * 3 / 4, interval * 5 / 4);
        e.measured |= ok;
        if !e.listed {
            self.relays.remove(relay);
        }
    }
}

/// A random duration in `[low, high)` (`low` when the range is empty).
fn jitter<R: Rng + ?Sized>(rng: &mut R, low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    rng.random_range(low..high)
}
