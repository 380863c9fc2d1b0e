//! Preemptive circuits, as Tor keeps them: clean circuits (K = 1) or strand sets (K > 1) built
//! ahead and bound to no isolation key. The first stream of a new key takes one whose exit
//! allows its target instead of waiting for its own builds, and the manager builds the next
//! one in the background, for targets like the last one (the port a new key is most likely to
//! ask for next).
//!
//! A clean circuit carries nothing until a key takes it, so keeping one links no streams.
//! Bounded: at most `RouterSettings::preemptive` ready or under way (so the circuits open
//! at once may exceed `max_circuits` by that many circuits, or sets of K). A clean circuit
//! older than `max_dirtiness`, or closed, is dropped instead of taken; all are dropped when the
//! relay list is compacted (their relay indexes no longer hold), and a build under way then is
//! closed when it ends.
//!
//! The next one is built once the stream that took one has its first answer ([`Refill`]), not
//! when it opens: K circuit builds (handshakes at every hop) compete for the same CPUs and
//! links as the stream's first round trip, and on a loaded machine that cost the new key
//! milliseconds of its time to first byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use braid_relay::Target;
use tracing::debug;

use super::{CircuitManager, Relay, exit_allows};
use crate::circuit::Circuit;
use crate::path::PathConstraints;

/// Longest a [`Refill`] waits for its stream's first answer.
pub const REFILL_WAIT: Duration = Duration::from_secs(1);

/// The build of the next clean circuit or set, held back until the stream that took (or built)
/// one has its first answer ([`Refill::answered`]), ends (drop), or [`REFILL_WAIT`] passed,
/// whichever comes first. Builds at most once.
#[derive(Debug)]
pub struct Refill {
    manager: Arc<CircuitManager>,
    target: Target,
    due: Arc<AtomicBool>,
}

impl Refill {
    fn new(manager: Arc<CircuitManager>, target: Target) -> Self {
        let due = Arc::new(AtomicBool::new(true));
        let (m, t, d) = (manager.clone(), target.clone(), due.clone());
        tokio::spawn(async move {
            tokio::time::sleep(REFILL_WAIT).await;
            if d.swap(false, Ordering::AcqRel) {
                m.refill(&t);
            }
        });
        Self {
            manager,
            target,
            due,
        }
    }

    /// The stream got its first answer: build now.
    pub fn answered(&self) {
        if self.due.swap(false, Ordering::AcqRel) {
            self.manager.refill(&self.target);
        }
    }
}

impl Drop for Refill {
    fn drop(&mut self) {
        self.answered();
    }
}

/// A clean strand set: its exit and circuits.
struct SpareSet {
    exit: usize,
    circuits: Vec<Arc<Circuit>>,
    built_at: Instant,
}

/// What is kept ahead.
#[derive(Default)]
pub(super) struct Spares {
    circuits: Vec<Arc<Circuit>>,
    sets: Vec<SpareSet>,
    /// Builds under way.
    building: usize,
    /// Bumped when the relay list is compacted; a build started before is not kept.
    generation: u64,
    /// How many streams took one.
    taken: u64,
}

impl Spares {
    fn ready(&self) -> usize {
        self.circuits.len() + self.sets.len()
    }
}

/// Whether the relay at `index` is listed and may take `target` as an exit.
fn exit_ok(relays: &[Relay], index: Option<&usize>, target: &Target) -> bool {
    index
        .and_then(|&i| relays.get(i))
        .filter(|r| r.listed)
        .is_some_and(|r| exit_allows(&r.desc, target))
}

impl CircuitManager {
    /// How many streams took a clean circuit or strand set built ahead.
    pub fn preemptive_taken(&self) -> u64 {
        self.spares.lock().map(|s| s.taken).unwrap_or(0)
    }

    /// How many clean circuits or strand sets are ready now.
    pub fn preemptive_ready(&self) -> usize {
        self.spares.lock().map(|s| s.ready()).unwrap_or(0)
    }

    /// Takes a clean circuit whose exit may take `target`.
    pub(super) fn take_spare_circuit(&self, target: &Target) -> Option<Arc<Circuit>> {
        let relays = self.relays.read().ok()?.clone();
        let mut spares = self.spares.lock().ok()?;
        let max_age = self.settings.max_dirtiness;
        spares.circuits.retain(|c| {
            let keep = !c.is_closed() && c.built_at.elapsed() <= max_age;
            if !keep {
                c.close();
            }
            keep
        });
        let i = spares
            .circuits
            .iter()
            .position(|c| c.has_room() && exit_ok(&relays, c.path.last(), target))?;
        spares.taken += 1;
        debug!("stream took a preemptive circuit");
        Some(spares.circuits.remove(i))
    }

    /// Takes a clean strand set whose exit may take `target`: its exit, circuits and build
    /// time.
    pub(super) fn take_spare_set(
        &self,
        target: &Target,
    ) -> Option<(usize, Vec<Arc<Circuit>>, Instant)> {
        let relays = self.relays.read().ok()?.clone();
        let mut spares = self.spares.lock().ok()?;
        let max_age = self.settings.max_dirtiness;
        spares.sets.retain(|s| {
            let keep = s.built_at.elapsed() <= max_age
                && s.circuits.iter().all(|c| !c.is_closed() && c.has_room());
            if !keep {
                s.circuits.iter().for_each(|c| c.close());
            }
            keep
        });
        let i = spares
            .sets
            .iter()
            .position(|s| exit_ok(&relays, Some(&s.exit), target))?;
        spares.taken += 1;
        debug!("stream took a preemptive strand set");
        let s = spares.sets.remove(i);
        Some((s.exit, s.circuits, s.built_at))
    }

    /// A [`Refill`] for targets like `target`, to fire once the stream that needs it was
    /// answered.
    pub(crate) fn deferred_refill(self: &Arc<Self>, target: &Target) -> Refill {
        Refill::new(self.clone(), target.clone())
    }

    /// Starts building a clean circuit (K = 1) or strand set (K > 1) for targets like
    /// `target`, unless `preemptive` are ready or under way already.
    pub(crate) fn refill(self: &Arc<Self>, target: &Target) {
        let generation = {
            let Ok(mut spares) = self.spares.lock() else {
                return;
            };
            if spares.ready() + spares.building >= self.settings.preemptive {
                return;
            }
            spares.building += 1;
            spares.generation
        };
        let manager = self.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let built = if manager.settings.strands > 1 {
                manager
                    .build_strands(&target, None)
                    .await
                    .map(|(exit, circuits)| SpareSet {
                        exit,
                        circuits,
                        built_at: Instant::now(),
                    })
            } else {
                let constraints = PathConstraints {
                    hops: manager.settings.hops,
                    ..PathConstraints::default()
                };
                manager
                    .build_path(&target, constraints, None)
                    .await
                    .map(|c| SpareSet {
                        exit: c.path.last().copied().unwrap_or(usize::MAX),
                        circuits: vec![c],
                        built_at: Instant::now(),
                    })
            };
            let Ok(mut spares) = manager.spares.lock() else {
                return;
            };
            spares.building = spares.building.saturating_sub(1);
            match built {
                Ok(set) if spares.generation == generation => {
                    if manager.settings.strands > 1 {
                        spares.sets.push(set);
                    } else {
                        spares.circuits.extend(set.circuits);
                    }
                }
                Ok(set) => set.circuits.iter().for_each(|c| c.close()),
                Err(e) => debug!(error = %e, "preemptive build failed"),
            }
        });
    }

    /// Closes and forgets every clean circuit; builds under way are not kept.
    pub(super) fn drop_spares(&self) {
        if let Ok(mut spares) = self.spares.lock() {
            spares.generation += 1;
            for c in spares.circuits.drain(..) {
                c.close();
            }
            for s in spares.sets.drain(..) {
                s.circuits.iter().for_each(|c| c.close());
            }
        }
    }
}
