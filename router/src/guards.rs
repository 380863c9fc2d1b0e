//! Entry guards, as Tor keeps them (guard-spec, proposal 271), as a sans-IO state machine:
//! time (unix seconds) and the RNG are passed in, and every change comes back as
//! [`GuardAction`]s for the driver to carry out (save the file, log a dropped guard).
//!
//! - **Sampled guards**: a bandwidth-weighted sample, without replacement, of the
//!   guard-eligible relays of the directory, grown until `min_sample` of them are usable and
//!   bounded by `max(min_sample, sample_percent of the eligible relays)` and the hard cap
//!   `max_sample`. A sampled guard stays for `sampled_lifetime` (its start randomized up to a
//!   tenth of that into the past, as Tor does) or, once confirmed, at least
//!   `confirmed_lifetime` after its confirmation; one the directory no longer lists is removed
//!   after `unlisted_lifetime`.
//! - **Filtered**: sampled, listed now, and not disabled by path bias.
//! - **Confirmed**: a circuit through it was built; ordered by confirmation.
//! - **Primary**: the first `primary` filtered guards, confirmed ones first in confirmation
//!   order, then the others in sample order. Recomputed from the state after every change, so
//!   a restart from the saved state gives the same list. Every circuit's first hop is a
//!   primary guard; a strand set of K uses up to K distinct ones.
//! - **Reachability**: a primary whose link failed is tried again on Tor's schedule
//!   ([`retry_delay`]); when every primary is unreachable, all are retried at once.
//! - **Path bias**: per guard, circuit builds attempted and built, and uses (a stream or
//!   strand that ran) and use failures (a strand that stalled or died, a stream that could not
//!   open). A guard whose build rate falls below `min_circuit_percent` after `min_circuits`
//!   attempts, or whose use rate falls below `min_use_percent` after `min_uses` uses, is
//!   disabled ([`GuardAction::Disabled`]); counts are halved past `scale_at`, so old history
//!   weighs less.
//!
//! Not here: which relays are guard-eligible (the caller says, per relay), the file I/O (the
//! driver reads and writes [`Guards::encode`]'s bytes), and path selection (the caller forces
//! the first hop of a path to a guard this module returns).

use rand::{Rng, RngExt};

mod store;
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests;

pub use store::{GUARD_FILE_VERSION, GuardFileError, MAX_FILE_GUARDS, MAX_NICKNAME_LEN};

/// A relay's identity (its Ed25519 public key).
pub type GuardId = [u8; 32];

/// One day in seconds.
pub const DAY: u64 = 24 * 3600;

/// Tor's guard time scales and sample bounds, and the path-bias thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardSettings {
    /// Primary guards (Tor: 3); the router uses `max(this, strands)`.
    pub primary: usize,
    /// Usable sampled guards to aim for (Tor's MIN_FILTERED_SAMPLE: 20).
    pub min_sample: usize,
    /// Percent of the eligible relays the sample may grow to (Tor's MAX_SAMPLE_THRESHOLD: 20).
    pub sample_percent: usize,
    /// Hard cap on the sample (Tor's MAX_SAMPLE_SIZE: 60).
    pub max_sample: usize,
    /// Seconds a sampled guard is kept (Tor's GUARD_LIFETIME: 120 days).
    pub sampled_lifetime: u64,
    /// Seconds a guard is kept after its confirmation (Tor's GUARD_CONFIRMED_MIN_LIFETIME:
    /// 60 days).
    pub confirmed_lifetime: u64,
    /// Seconds an unlisted guard is kept (Tor's REMOVE_UNLISTED_GUARDS_AFTER: 20 days).
    pub unlisted_lifetime: u64,
    /// Path-bias thresholds.
    pub path_bias: PathBiasSettings,
}

/// When a guard's circuits fail or stall too often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathBiasSettings {
    /// Build attempts before the build rate is judged (Tor's pb_mincircs: 150).
    pub min_circuits: u32,
    /// Disable below this percent of attempts built (Tor's pb_extremepct: 30).
    pub min_circuit_percent: u32,
    /// Uses before the use rate is judged (Tor's pb_minuse: 20).
    pub min_uses: u32,
    /// Disable below this percent of uses without a stall or death (Tor's
    /// pb_extremeusepct: 60).
    pub min_use_percent: u32,
    /// Counts are halved when attempts (or uses) reach this (Tor's pb_scalecircs: 300).
    pub scale_at: u32,
}

impl Default for PathBiasSettings {
    fn default() -> Self {
        PathBiasSettings {
            min_circuits: 150,
            min_circuit_percent: 30,
            min_uses: 20,
            min_use_percent: 60,
            scale_at: 300,
        }
    }
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            primary: 3,
            min_sample: 20,
            sample_percent: 20,
            max_sample: 60,
            sampled_lifetime: 120 * DAY,
            confirmed_lifetime: 60 * DAY,
            unlisted_lifetime: 20 * DAY,
            path_bias: PathBiasSettings::default(),
        }
    }
}

/// One relay of the directory, as the guard state sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRelay {
    /// Its identity.
    pub id: GuardId,
    /// Its nickname (for logs).
    pub nickname: String,
    /// Its bandwidth: the sampling weight.
    pub bandwidth: u64,
    /// Whether it may be a guard.
    pub eligible: bool,
}

/// Per-guard path-bias counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathBias {
    /// Circuit builds through the guard.
    pub attempts: u32,
    /// Of those, built.
    pub successes: u32,
    /// Streams or strands that ran over a circuit through it.
    pub uses: u32,
    /// Of those, stalled, died or could not open.
    pub use_failures: u32,
}

/// One sampled guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    /// Its identity.
    pub id: GuardId,
    /// Its nickname when sampled (at most [`MAX_NICKNAME_LEN`] bytes).
    pub nickname: String,
    /// When it was sampled (randomized into the past), unix seconds.
    pub added_at: u64,
    /// Its confirmation: order among the confirmed and unix time.
    pub confirmed: Option<(u32, u64)>,
    /// Since when the directory does not list it.
    pub unlisted_since: Option<u64>,
    /// When path bias disabled it.
    pub disabled_at: Option<u64>,
    /// Path-bias counts.
    pub bias: PathBias,
    /// Not saved: its link failed at `.0`; try again at `.1`.
    unreachable: Option<(u64, u64)>,
}

impl Guard {
    fn filtered(&self) -> bool {
        self.unlisted_since.is_none() && self.disabled_at.is_none()
    }
}

/// How a circuit build through a guard ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildOutcome {
    /// The circuit was built.
    Built,
    /// The guard was reached but the circuit failed or timed out (path bias).
    Failed,
    /// The guard could not be reached (a dial or stream open failed).
    Unreachable,
}

/// Why path bias disabled a guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BiasKind {
    /// Too few of its circuits were built.
    Builds,
    /// Too many of its streams or strands stalled or died.
    Uses,
}

/// What the driver must do after a change.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardAction {
    /// The saved state changed: write the file (rate-limited).
    Save,
    /// Path bias disabled this guard: log it at warn.
    Disabled {
        /// The guard.
        id: GuardId,
        /// Its nickname.
        nickname: String,
        /// Which rate was too low.
        kind: BiasKind,
        /// Good outcomes counted (built circuits or clean uses).
        good: u32,
        /// Outcomes counted.
        total: u32,
    },
}

/// The guard state of one client.
#[derive(Debug, Clone)]
pub struct Guards {
    settings: GuardSettings,
    /// Sampled guards in sample order.
    guards: Vec<Guard>,
    /// The primary guards, in order (derived).
    primary: Vec<GuardId>,
}

/// How long an unreachable guard waits before it is tried again (guard-spec §"retry
/// schedule"), by how long it has been unreachable: primaries every 10 minutes for the first 6
/// hours, every 90 minutes up to 4 days, every 4 hours up to 7 days, then every 9 hours;
/// others every hour, 4 hours, 18 hours, 36 hours.
pub fn retry_delay(primary: bool, unreachable_for: u64) -> u64 {
    const H: u64 = 3600;
    let steps: [u64; 4] = if primary {
        [10 * 60, 90 * 60, 4 * H, 9 * H]
    } else {
        [H, 4 * H, 18 * H, 36 * H]
    };
    match unreachable_for {
        t if t < 6 * H => steps[0],
        t if t < 4 * DAY => steps[1],
        t if t < 7 * DAY => steps[2],
        _ => steps[3],
    }
}

impl Guards {
    /// An empty guard state.
    pub fn new(settings: GuardSettings) -> Self {
        Self::with_guards(settings, Vec::new())
    }

    /// The state saved by [`Guards::encode`]; `Err` when the bytes are not a valid guard file
    /// of a version this build reads.
    pub fn decode(settings: GuardSettings, bytes: &[u8]) -> Result<Self, GuardFileError> {
        Ok(Self::with_guards(settings, store::decode(bytes)?))
    }

    /// The saved form of the state (see [`GUARD_FILE_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        store::encode(&self.guards)
    }

    fn with_guards(settings: GuardSettings, guards: Vec<Guard>) -> Self {
        let mut g = Guards {
            settings,
            guards,
            primary: Vec::new(),
        };
        g.update_primary();
        g
    }

    /// The settings in use.
    pub fn settings(&self) -> &GuardSettings {
        &self.settings
    }

    /// The sampled guards, in sample order.
    pub fn sampled(&self) -> &[Guard] {
        &self.guards
    }

    /// The primary guards, in order.
    pub fn primary(&self) -> &[GuardId] {
        &self.primary
    }

    /// The guard `id`, if sampled.
    pub fn get(&self, id: &GuardId) -> Option<&Guard> {
        self.guards.iter().find(|g| &g.id == id)
    }

    /// The primary guards a circuit may start at `now`, in order: those not marked
    /// unreachable, or whose retry is due. When none is, every primary is retried (their
    /// marks are cleared), as Tor does.
    pub fn usable_primary(&mut self, now: u64) -> Vec<GuardId> {
        let usable: Vec<GuardId> = self
            .primary
            .iter()
            .filter(|id| {
                self.get(id)
                    .is_some_and(|g| g.unreachable.is_none_or(|(_, retry)| now >= retry))
            })
            .copied()
            .collect();
        if !usable.is_empty() {
            return usable;
        }
        for g in &mut self.guards {
            if self.primary.contains(&g.id) {
                g.unreachable = None;
            }
        }
        self.primary.clone()
    }

    /// The directory changed: marks guards listed or unlisted, removes expired and long
    /// unlisted ones, samples more if needed, and recomputes the primary guards.
    pub fn update_listing<R: Rng + ?Sized>(
        &mut self,
        relays: &[ListedRelay],
        now: u64,
        rng: &mut R,
    ) -> Vec<GuardAction> {
        let before = self.encode();
        for g in &mut self.guards {
            let listed = relays.iter().any(|r| r.id == g.id && r.eligible);
            match (listed, g.unlisted_since) {
                (true, Some(_)) => g.unlisted_since = None,
                (false, None) => g.unlisted_since = Some(now),
                _ => {}
            }
        }
        let s = &self.settings;
        self.guards.retain(|g| {
            let sampled_end = g.added_at.saturating_add(s.sampled_lifetime);
            let end = match g.confirmed {
                Some((_, at)) => sampled_end.max(at.saturating_add(s.confirmed_lifetime)),
                None => sampled_end,
            };
            let unlisted_end = g
                .unlisted_since
                .map_or(u64::MAX, |t| t.saturating_add(s.unlisted_lifetime));
            now < end && now < unlisted_end
        });
        self.sample(relays, now, rng);
        self.update_primary();
        if self.encode() == before {
            Vec::new()
        } else {
            vec![GuardAction::Save]
        }
    }

    /// The most guards the sample may hold with `eligible` eligible relays.
    pub fn max_sample(&self, eligible: usize) -> usize {
        let s = &self.settings;
        (eligible * s.sample_percent / 100)
            .max(s.min_sample)
            .min(s.max_sample)
    }

    fn sample<R: Rng + ?Sized>(&mut self, relays: &[ListedRelay], now: u64, rng: &mut R) {
        let eligible = relays.iter().filter(|r| r.eligible).count();
        let max = self.max_sample(eligible);
        let mut pool: Vec<&ListedRelay> = relays
            .iter()
            .filter(|r| r.eligible && self.get(&r.id).is_none())
            .collect();
        // Guards the directory no longer lists do not count against the sample's size (they
        // would otherwise keep a proxy whose network changed from sampling any listed relay for
        // `unlisted_lifetime`); they count against the file's bound, and the longest unlisted
        // goes first when that is reached.
        while self
            .guards
            .iter()
            .filter(|g| g.unlisted_since.is_none())
            .count()
            < max
            && self.guards.iter().filter(|g| g.filtered()).count() < self.settings.min_sample
            && !pool.is_empty()
        {
            if self.guards.len() >= MAX_FILE_GUARDS {
                let oldest = self
                    .guards
                    .iter()
                    .enumerate()
                    .filter_map(|(i, g)| g.unlisted_since.map(|t| (t, i)))
                    .min();
                match oldest {
                    Some((_, i)) => {
                        self.guards.remove(i);
                    }
                    None => break,
                }
            }
            let i = pick_weighted(&pool, rng);
            let r = pool.swap_remove(i);
            let spread = self.settings.sampled_lifetime / 10;
            let back = if spread == 0 {
                0
            } else {
                rng.random_range(0..spread)
            };
            self.guards.push(Guard {
                id: r.id,
                nickname: store::clip_nickname(&r.nickname),
                added_at: now.saturating_sub(back),
                confirmed: None,
                unlisted_since: None,
                disabled_at: None,
                bias: PathBias::default(),
                unreachable: None,
            });
        }
    }

    fn update_primary(&mut self) {
        let mut confirmed: Vec<&Guard> = self
            .guards
            .iter()
            .filter(|g| g.filtered() && g.confirmed.is_some())
            .collect();
        confirmed.sort_by_key(|g| g.confirmed.map(|(order, _)| order));
        let rest = self
            .guards
            .iter()
            .filter(|g| g.filtered() && g.confirmed.is_none());
        self.primary = confirmed
            .into_iter()
            .chain(rest)
            .take(self.settings.primary)
            .map(|g| g.id)
            .collect();
    }

    /// A circuit build through guard `id` ended with `outcome`.
    pub fn record_build(
        &mut self,
        id: &GuardId,
        outcome: BuildOutcome,
        now: u64,
    ) -> Vec<GuardAction> {
        let primary = self.primary.contains(id);
        let next_order = self
            .guards
            .iter()
            .filter_map(|g| g.confirmed.map(|(o, _)| o + 1))
            .max()
            .unwrap_or(0);
        let Some(g) = self.guards.iter_mut().find(|g| &g.id == id) else {
            return Vec::new();
        };
        match outcome {
            BuildOutcome::Built => {
                g.unreachable = None;
                g.bias.attempts += 1;
                g.bias.successes += 1;
                if g.confirmed.is_none() {
                    g.confirmed = Some((next_order, now));
                }
            }
            BuildOutcome::Failed => g.bias.attempts += 1,
            BuildOutcome::Unreachable => {
                let since = g.unreachable.map_or(now, |(since, _)| since);
                let retry = now.saturating_add(retry_delay(primary, now.saturating_sub(since)));
                g.unreachable = Some((since, retry));
                return Vec::new();
            }
        }
        let scale = self.settings.path_bias.scale_at;
        if g.bias.attempts >= scale {
            g.bias.attempts /= 2;
            g.bias.successes /= 2;
        }
        // A confirmation may reorder the primaries.
        self.update_primary();
        let mut actions = vec![GuardAction::Save];
        actions.extend(self.judge(id, now));
        actions
    }

    /// A stream or strand over a circuit through guard `id` ended: `ok` unless it stalled,
    /// died or could not open.
    pub fn record_use(&mut self, id: &GuardId, ok: bool, now: u64) -> Vec<GuardAction> {
        let scale = self.settings.path_bias.scale_at;
        let Some(g) = self.guards.iter_mut().find(|g| &g.id == id) else {
            return Vec::new();
        };
        g.bias.uses += 1;
        if !ok {
            g.bias.use_failures += 1;
        }
        if g.bias.uses >= scale {
            g.bias.uses /= 2;
            g.bias.use_failures /= 2;
        }
        let mut actions = vec![GuardAction::Save];
        actions.extend(self.judge(id, now));
        actions
    }

    /// Disables guard `id` if a path-bias rate is below its threshold.
    fn judge(&mut self, id: &GuardId, now: u64) -> Option<GuardAction> {
        let pb = self.settings.path_bias.clone();
        let g = self.guards.iter_mut().find(|g| &g.id == id)?;
        if g.disabled_at.is_some() {
            return None;
        }
        let b = g.bias;
        let below = |good: u32, total: u32, min: u32, percent: u32| {
            total >= min.max(1) && u64::from(good) * 100 < u64::from(total) * u64::from(percent)
        };
        let uses_good = b.uses - b.use_failures;
        let (kind, good, total) = if below(
            b.successes,
            b.attempts,
            pb.min_circuits,
            pb.min_circuit_percent,
        ) {
            (BiasKind::Builds, b.successes, b.attempts)
        } else if below(uses_good, b.uses, pb.min_uses, pb.min_use_percent) {
            (BiasKind::Uses, uses_good, b.uses)
        } else {
            return None;
        };
        g.disabled_at = Some(now);
        let action = GuardAction::Disabled {
            id: g.id,
            nickname: g.nickname.clone(),
            kind,
            good,
            total,
        };
        self.update_primary();
        Some(action)
    }
}

/// Index into `pool` picked with probability proportional to bandwidth (uniform when all are
/// 0); `pool` is not empty.
fn pick_weighted<R: Rng + ?Sized>(pool: &[&ListedRelay], rng: &mut R) -> usize {
    let total: u128 = pool.iter().map(|r| u128::from(r.bandwidth)).sum();
    if total == 0 {
        return rng.random_range(0..pool.len());
    }
    let mut point = rng.random_range(0..total);
    for (i, r) in pool.iter().enumerate() {
        let w = u128::from(r.bandwidth);
        if point < w {
            return i;
        }
        point -= w;
    }
    pool.len() - 1
}
