//! The circuit manager's entry guards: the sans-IO [`Guards`] state behind a lock, fed with
//! the directory and every circuit's outcome, and its file in the proxy's data directory.
//!
//! The file (`RouterSettings::guard_file`) is read at start; a missing file is a fresh start,
//! an unreadable, corrupt or future-version one is moved aside to `<file>.bad` with a warning
//! and is a fresh start too. It is written after changes, atomically (a temporary file with
//! mode 0600, then a rename), at most once per [`SAVE_INTERVAL`]. Guards dropped by path bias
//! are logged at warn with their nickname.

use braid_directory::RelayFlags;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_transport::PeerId;
use tracing::{debug, info, warn};

use super::{CircuitManager, Relay, now_unix};
use crate::error::RouterError;
use crate::guards::{BiasKind, BuildOutcome, GuardAction, GuardSettings, Guards, ListedRelay};
use crate::path::Candidate;
use crate::path::weights::{Position, PositionWeights, WEIGHT_SCALE};

/// Least time between two writes of the guard file.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// Whether a listed relay with `flags` may be an entry guard: it has the registries' Guard
/// flag (measured bandwidth and uptime, see `braid_directory::listing`). While no listed relay
/// has it (a young network whose registries have measured nobody yet), every listed relay may
/// be one, as path selection does; a guard sampled then that never gets the flag counts as
/// unlisted once others have it and leaves the primaries.
pub fn guard_eligible(flags: RelayFlags, any_guard: bool) -> bool {
    flags.is_guard() || !any_guard
}

/// The guard state, its file and the save schedule.
#[derive(Debug)]
pub(super) struct Keeper {
    state: Guards,
    file: Option<PathBuf>,
    last_save: Option<Instant>,
    save_pending: bool,
    /// Saved at shutdown: no later write (a new proxy may own the file by then).
    closed: bool,
}

pub(super) type SharedKeeper = Arc<Mutex<Keeper>>;

/// The guard state saved in `file`, or a fresh one (see the module doc).
pub(super) fn load(settings: GuardSettings, file: Option<&Path>) -> SharedKeeper {
    let fresh = || Guards::new(settings.clone());
    let state = match file {
        None => fresh(),
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => match Guards::decode(settings.clone(), &bytes) {
                Ok(g) => {
                    info!(guards = g.sampled().len(), "entry guards loaded");
                    g
                }
                Err(e) => {
                    set_aside(path, &e.to_string());
                    fresh()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                info!(file = %path.display(), "no guard file: choosing entry guards afresh");
                fresh()
            }
            Err(e) => {
                set_aside(path, &e.to_string());
                fresh()
            }
        },
    };
    Arc::new(Mutex::new(Keeper {
        state,
        file: file.map(Path::to_path_buf),
        last_save: None,
        save_pending: false,
        closed: false,
    }))
}

fn set_aside(path: &Path, why: &str) {
    let bad = path.with_extension("bad");
    let moved = std::fs::rename(path, &bad).is_ok();
    warn!(
        file = %path.display(),
        error = why,
        moved_to = %if moved { bad.display().to_string() } else { "-".into() },
        "guard file unusable; choosing entry guards afresh"
    );
}

/// Writes `bytes` to `path` atomically with mode 0600.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Saves now if due (in a blocking task unless `inline`), otherwise schedules one save after
/// [`SAVE_INTERVAL`].
fn save(keeper: &SharedKeeper, inline: bool) {
    let Ok(mut k) = keeper.lock() else { return };
    let Some(file) = k.file.clone().filter(|_| !k.closed) else {
        return;
    };
    let due = k.last_save.is_none_or(|t| t.elapsed() >= SAVE_INTERVAL);
    if !due {
        if !k.save_pending {
            k.save_pending = true;
            let keeper = keeper.clone();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    tokio::time::sleep(SAVE_INTERVAL).await;
                    if let Ok(mut k) = keeper.lock() {
                        k.save_pending = false;
                        k.last_save = None;
                    }
                    save(&keeper, false);
                });
            }
        }
        return;
    }
    k.last_save = Some(Instant::now());
    let bytes = k.state.encode();
    drop(k);
    let write = move || {
        if let Err(e) = write_atomic(&file, &bytes) {
            // Warn once per process; a data dir that cannot be written stays so.
            static WARNED: AtomicBool = AtomicBool::new(false);
            if WARNED.swap(true, Ordering::Relaxed) {
                debug!(file = %file.display(), error = %e, "could not save the entry guards");
            } else {
                warn!(file = %file.display(), error = %e, "could not save the entry guards");
            }
        }
    };
    // The write syncs to disk: off the async workers when there are any. Writes are at most
    // one per SAVE_INTERVAL, so two never overlap in practice; each is atomic anyway.
    match tokio::runtime::Handle::try_current() {
        Ok(rt) if !inline => drop(rt.spawn_blocking(write)),
        _ => write(),
    }
}

fn apply(keeper: &SharedKeeper, actions: Vec<GuardAction>) {
    let mut changed = false;
    for a in actions {
        match a {
            GuardAction::Save => changed = true,
            GuardAction::Disabled {
                nickname,
                kind,
                good,
                total,
                ..
            } => {
                let what = match kind {
                    BiasKind::Builds => "circuits built",
                    BiasKind::Uses => "streams without a stall or loss",
                };
                warn!(
                    guard = %nickname,
                    "entry guard dropped by path bias: {good} of {total} {what}"
                );
                changed = true;
            }
        }
    }
    if changed {
        save(keeper, false);
    }
}

/// How a circuit build error reflects on its guard.
fn outcome_of(result: &Result<(), &RouterError>) -> Option<BuildOutcome> {
    match result {
        Ok(()) => Some(BuildOutcome::Built),
        Err(RouterError::Transport(_)) => Some(BuildOutcome::Unreachable),
        Err(
            RouterError::Timeout(_)
            | RouterError::BuildFailed(_)
            | RouterError::Cell(_)
            | RouterError::Relay(_)
            | RouterError::CircuitClosed,
        ) => Some(BuildOutcome::Failed),
        Err(_) => None,
    }
}

impl CircuitManager {
    /// The directory changed: sample and re-filter the guards.
    pub(super) fn update_guards(&self, relays: &[Relay]) {
        let any_guard = relays.iter().any(|r| r.listed && r.flags.is_guard());
        let listed: Vec<&Relay> = relays.iter().filter(|r| r.listed).collect();
        // Guards are sampled by their weight in the guard position (Tor's Wgg/Wgd): when exit
        // bandwidth is scarce an exit weighs 0 there and is never a guard, so every primary can
        // start a strand to an exit.
        let as_candidates: Vec<Candidate> = listed
            .iter()
            .enumerate()
            .map(|(index, r)| Candidate {
                index,
                ip: None,
                bandwidth: r.weight,
                exit_for_target: false,
                guard: guard_eligible(r.flags, any_guard),
                exit: r.flags.is_exit(),
                family: Vec::new(),
            })
            .collect();
        let weights = PositionWeights::of(&as_candidates.iter().collect::<Vec<_>>());
        let listed: Vec<ListedRelay> = listed
            .iter()
            .zip(&as_candidates)
            .map(|(r, c)| {
                let weight = weights.weight(Position::Guard, c);
                ListedRelay {
                    id: r.desc.identity,
                    nickname: r.desc.nickname.clone(),
                    // The registries' weight (measured, capped by the claim) in the guard
                    // position, never the claim.
                    bandwidth: u64::try_from(weight / u128::from(WEIGHT_SCALE)).unwrap_or(u64::MAX),
                    eligible: c.guard && weight > 0,
                }
            })
            .collect();
        let actions = match self.guards.lock() {
            Ok(mut k) => k
                .state
                .update_listing(&listed, now_unix(), &mut rand::rng()),
            Err(_) => return,
        };
        apply(&self.guards, actions);
    }

    /// The directory indexes of the primary guards a circuit may start at now, in order.
    pub(super) fn guard_indexes(&self, relays: &[Relay]) -> Vec<usize> {
        let ids = match self.guards.lock() {
            Ok(mut k) => k.state.usable_primary(now_unix()),
            Err(_) => return Vec::new(),
        };
        ids.iter()
            .filter_map(|id| {
                relays
                    .iter()
                    .position(|r| r.listed && &r.desc.identity == id)
            })
            .collect()
    }

    /// The first hop of a replacement strand: `own` (the lost strand's guard) if it is still
    /// a usable primary guard, else the first usable primary guard not in `live`.
    pub(crate) fn replacement_guard(&self, own: Option<usize>, live: &[usize]) -> Option<usize> {
        let relays = self.relays.read().ok()?.clone();
        let guards = self.guard_indexes(&relays);
        own.filter(|g| guards.contains(g))
            .or_else(|| guards.iter().copied().find(|g| !live.contains(g)))
    }

    /// A circuit build whose first hop is relay `guard` ended.
    pub(super) fn report_build(
        &self,
        relays: &[Relay],
        guard: usize,
        result: Result<(), &RouterError>,
    ) {
        let (Some(r), Some(outcome)) = (relays.get(guard), outcome_of(&result)) else {
            return;
        };
        debug!(?outcome, "guard build outcome");
        let actions = match self.guards.lock() {
            Ok(mut k) => k.state.record_build(&r.desc.identity, outcome, now_unix()),
            Err(_) => return,
        };
        apply(&self.guards, actions);
    }

    /// A stream or strand over a circuit whose first hop is relay `guard` ended: `ok` unless
    /// it stalled, died or could not open.
    pub(crate) fn report_use(&self, guard: usize, ok: bool) {
        let Ok(relays) = self.relays.read().map(|r| r.clone()) else {
            return;
        };
        let Some(r) = relays.get(guard) else { return };
        let actions = match self.guards.lock() {
            Ok(mut k) => k.state.record_use(&r.desc.identity, ok, now_unix()),
            Err(_) => return,
        };
        apply(&self.guards, actions);
    }

    /// The peer ids of the primary guards the directory in use lists, in order.
    pub fn primary_guards(&self) -> Vec<PeerId> {
        let ids = match self.guards.lock() {
            Ok(k) => k.state.primary().to_vec(),
            Err(_) => return Vec::new(),
        };
        self.peers_of(&ids)
    }

    /// The peer ids of the sampled guards path bias disabled (those the directory lists).
    pub fn disabled_guards(&self) -> Vec<PeerId> {
        let ids: Vec<_> = match self.guards.lock() {
            Ok(k) => k
                .state
                .sampled()
                .iter()
                .filter(|g| g.disabled_at.is_some())
                .map(|g| g.id)
                .collect(),
            Err(_) => return Vec::new(),
        };
        self.peers_of(&ids)
    }

    fn peers_of(&self, ids: &[[u8; 32]]) -> Vec<PeerId> {
        let relays = self.relays.read().map(|r| r.clone()).unwrap_or_default();
        ids.iter()
            .filter_map(|id| relays.iter().find(|r| &r.desc.identity == id))
            .map(|r| r.peer)
            .collect()
    }

    /// Writes the guard file now, if there is one, and no more after (call it at shutdown);
    /// returns once it is written.
    pub fn save_guards(&self) {
        if let Ok(mut k) = self.guards.lock() {
            k.last_save = None;
        }
        save(&self.guards, true);
        if let Ok(mut k) = self.guards.lock() {
            k.closed = true;
        }
    }
}
