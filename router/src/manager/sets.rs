//! Building strand sets: K circuits to one exit with no guard or middle relay in common. A
//! set for a waiting stream is handed over as soon as its first circuit is built (the stream
//! opens on it), and the others join the set, and the stream, as they are built.

use std::sync::Arc;
use std::time::Instant;

use braid_relay::Target;
use futures::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::CircuitManager;
use crate::circuit::Circuit;
use crate::error::RouterError;
use crate::path::{Candidate, PathConstraints, select_path};
use crate::socks5::IsolationKey;
use crate::strands::StrandSet;

/// Each strand build's outcome, as it ends.
type Builds = mpsc::Receiver<Result<Arc<Circuit>, RouterError>>;

/// A set for a new stream: the set, the circuits to use at once, and the rest as they are
/// built (`None` when all are there).
pub(crate) type NewSet = (
    Arc<StrandSet>,
    Vec<Arc<Circuit>>,
    Option<mpsc::Receiver<Arc<Circuit>>>,
);

impl CircuitManager {
    /// A strand set for a new stream of `isolation`: a clean one kept ahead, or K circuits to
    /// one exit built now, no two sharing a guard or middle relay (fewer when the directory
    /// has too few relays for K disjoint paths; at least one). Returns the set, the circuits
    /// to use at once and, for a set built now, the rest as they are built: the stream opens
    /// on the first circuit built instead of waiting for the slowest.
    pub(crate) async fn build_set(
        self: &Arc<Self>,
        target: &Target,
        isolation: &IsolationKey,
    ) -> Result<NewSet, RouterError> {
        let (set, now, late) = match self.take_spare_set(target) {
            Some((exit, circuits, built_at)) => {
                for c in &circuits {
                    self.identities.bind(c, &isolation.0).await;
                }
                let now = circuits.clone();
                let set = StrandSet::new(isolation.0.clone(), exit, circuits, built_at, false);
                (Arc::new(set), now, None)
            }
            None => {
                let (exit, mut builds) = self.start_strands(target, Some(isolation))?;
                let mut last_err = None;
                let first = loop {
                    match builds.recv().await {
                        Some(Ok(c)) => break c,
                        Some(Err(e)) => last_err = Some(e),
                        None => return Err(last_err.unwrap_or(RouterError::CircuitClosed)),
                    }
                };
                let set = StrandSet::new(
                    isolation.0.clone(),
                    exit,
                    vec![first.clone()],
                    Instant::now(),
                    true,
                );
                let set = Arc::new(set);
                // Only the first circuit is the caller's to link now: the others come through
                // the channel (taking the set's circuits here could race a late one in and
                // link it twice).
                (set.clone(), vec![first], Some(self.finish_set(set, builds)))
            }
        };
        for (i, c) in now.iter().enumerate() {
            self.log_strand(i, c);
        }
        let mut sets = self
            .sets
            .lock()
            .map_err(|_| RouterError::Directory("lock poisoned".into()))?;
        let max_sets = (self.settings.max_circuits / self.settings.strands.max(1)).max(1);
        if sets.len() >= max_sets {
            match sets.iter().position(|s| s.idle()) {
                Some(i) => sets.remove(i).close(),
                None => {
                    set.close();
                    return Err(RouterError::Limit("strand sets"));
                }
            }
        }
        sets.push(set.clone());
        Ok((set, now, late))
    }

    /// Adds the circuits still coming out of `builds` to `set` and hands each on through the
    /// returned channel (to the stream that opened on the set's first circuit).
    fn finish_set(
        self: &Arc<Self>,
        set: Arc<StrandSet>,
        mut builds: Builds,
    ) -> mpsc::Receiver<Arc<Circuit>> {
        let (tx, rx) = mpsc::channel(self.settings.strands.max(1));
        let manager = self.clone();
        tokio::spawn(async move {
            while let Some(built) = builds.recv().await {
                let Ok(c) = built else { continue };
                if let Some(i) = set.push(c.clone()) {
                    manager.log_strand(i, &c);
                    // The stream may be gone already: the circuit stays in the set for reuse.
                    let _ = tx.send(c).await;
                }
            }
            set.done_building();
        });
        rx
    }

    /// Relay identities are public; tests use this line to find the relays of a stream's
    /// strands (logged when a stream's key takes the set, or when a late circuit joins it, so
    /// a clean set built ahead is logged by the stream that uses it).
    fn log_strand(&self, strand: usize, c: &Circuit) {
        if let Ok(relays) = self.relays() {
            let peers: Vec<String> = c
                .path
                .iter()
                .filter_map(|&r| relays.get(r).map(|r| r.peer.to_string()))
                .collect();
            debug!(strand, path = %peers.join(","), "strand path chosen");
        }
    }

    /// Chooses K disjoint paths to one exit for `target` and builds them all; returns the
    /// exit's index and the circuits that were built (at least one).
    pub(crate) async fn build_strands(
        self: &Arc<Self>,
        target: &Target,
        isolation: Option<&IsolationKey>,
    ) -> Result<(usize, Vec<Arc<Circuit>>), RouterError> {
        let (exit, mut builds) = self.start_strands(target, isolation)?;
        let (mut circuits, mut last_err) = (Vec::new(), None);
        while let Some(built) = builds.recv().await {
            match built {
                Ok(c) => circuits.push(c),
                Err(e) => last_err = Some(e),
            }
        }
        if circuits.is_empty() {
            return Err(last_err.unwrap_or(RouterError::CircuitClosed));
        }
        Ok((exit, circuits))
    }

    /// Chooses K disjoint paths to one exit for `target`, each from its own primary guard,
    /// and builds them at once in a task; each build's outcome comes out of the returned
    /// channel as it ends (bounded: at most 2K outcomes), which closes when all ended. A failed
    /// build is tried once more on a fresh disjoint path from a primary guard no built strand
    /// uses, so a set has K strands when the guards and the directory allow: never more
    /// strands than usable primary guards. A circuit nobody takes any more is closed.
    /// The circuits are built on `isolation`'s client identity (`None`: a clean set's own).
    fn start_strands(
        self: &Arc<Self>,
        target: &Target,
        isolation: Option<&IsolationKey>,
    ) -> Result<(usize, Builds), RouterError> {
        let isolation = isolation.cloned();
        let relays = self.relays()?;
        let candidates = Self::candidates(&relays, target)?;
        let hops = self.settings.hops;
        let want = self.settings.strands.max(1);
        let guards = self.guard_indexes(&relays);
        if guards.is_empty() {
            return Err(RouterError::NoGuard);
        }
        let exit = choose_exit(&candidates, &guards)?;
        // Relays already in a path (not as exit): no two strands share one.
        let mut used: Vec<usize> = Vec::new();
        let paths = guarded_paths(&candidates, hops, exit, &guards, &mut used, &[], want);
        if paths.is_empty() {
            return Err(RouterError::NoGuard);
        }
        let (tx, rx) = mpsc::channel(2 * want);
        let manager = self.clone();
        tokio::spawn(async move {
            let mut paths = paths;
            // Relays (not the exit) of the circuits built so far, and their guards.
            let mut built: Vec<usize> = Vec::new();
            let mut built_guards: Vec<usize> = Vec::new();
            let mut count = 0;
            for round in 0..2 {
                let mut failed: Vec<usize> = Vec::new();
                let mut builds: FuturesUnordered<_> = paths
                    .into_iter()
                    .map(|p| {
                        let manager = &manager;
                        let relays = &relays;
                        let isolation = isolation.as_ref();
                        async move { (p.clone(), manager.build_on(relays, p, isolation).await) }
                    })
                    .collect();
                while let Some((path, result)) = builds.next().await {
                    let outcome = match result {
                        Ok(c) => {
                            count += 1;
                            built.extend_from_slice(&c.path[..c.path.len().saturating_sub(1)]);
                            built_guards.extend(c.path.first());
                            Ok(c)
                        }
                        Err(e) => {
                            debug!(round, error = %e, "strand circuit build failed");
                            // Its middles (the relay that failed is not known).
                            failed.extend_from_slice(&path[1..path.len().saturating_sub(1)]);
                            Err(e)
                        }
                    };
                    if let Err(mpsc::error::SendError(Ok(c))) = tx.send(outcome).await {
                        c.close();
                    }
                }
                drop(builds);
                let missing = want.saturating_sub(count);
                if missing == 0 || failed.is_empty() || round == 1 {
                    break;
                }
                // Primary guards no built strand uses (a failed one may be tried again unless
                // it is unreachable now); middles avoid the built strands' relays, and the
                // failed paths' too when enough others are left.
                let guards = manager.guard_indexes(&relays);
                paths = Vec::new();
                for keep_failed_out in [true, false] {
                    let mut avoid = built.clone();
                    if keep_failed_out {
                        avoid.extend_from_slice(&failed);
                    }
                    paths = guarded_paths(
                        &candidates,
                        hops,
                        exit,
                        &guards,
                        &mut avoid,
                        &built_guards,
                        missing,
                    );
                    if paths.len() >= missing {
                        break;
                    }
                }
                if paths.is_empty() {
                    break;
                }
            }
        });
        Ok((exit, rx))
    }
}

/// The exit of a new strand set: bandwidth-weighted among the exits for the target, one that
/// is not a usable primary guard when there is one (so every guard can start a strand).
fn choose_exit(candidates: &[Candidate], guards: &[usize]) -> Result<usize, RouterError> {
    let mut rng = rand::rng();
    let one_hop = |exclude: Vec<usize>| PathConstraints {
        hops: 1,
        exclude,
        ..PathConstraints::default()
    };
    let path = select_path(candidates, &one_hop(guards.to_vec()), &mut rng)
        .or_else(|_| select_path(candidates, &one_hop(Vec::new()), &mut rng))?;
    path.first()
        .copied()
        .ok_or(RouterError::BuildFailed("empty path".into()))
}

/// Up to `n` paths to `exit`, each from a distinct guard of `guards` (in order) that is not
/// in `busy`, avoiding every relay in `used` (which they are added to) and, where possible,
/// the other guards as middles; fewer when guards or relays run out.
fn guarded_paths(
    candidates: &[Candidate],
    hops: usize,
    exit: usize,
    guards: &[usize],
    used: &mut Vec<usize>,
    busy: &[usize],
    n: usize,
) -> Vec<Vec<usize>> {
    let mut rng = rand::rng();
    let mut paths = Vec::new();
    for &g in guards {
        if paths.len() >= n {
            break;
        }
        if g == exit || busy.contains(&g) || used.contains(&g) {
            continue;
        }
        let with = PathConstraints {
            hops,
            exit: Some(exit),
            guard: Some(g),
            // The relays of the other strands are siblings: never reused, and no family or
            // (when the relays allow) network shared with them.
            siblings: used.clone(),
            ..PathConstraints::default()
        };
        let mut apart = with.clone();
        apart
            .exclude
            .extend(guards.iter().filter(|&&o| o != g && o != exit));
        match select_path(candidates, &apart, &mut rng)
            .or_else(|_| select_path(candidates, &with, &mut rng))
        {
            Ok(p) => {
                used.extend_from_slice(&p[..p.len() - 1]);
                paths.push(p);
            }
            Err(e) => debug!(error = %e, guard = g, "no strand path from this guard"),
        }
    }
    if paths.len() < n {
        info!(
            chosen = paths.len(),
            asked = n,
            "fewer disjoint strands than asked: primary guards or relays ran out"
        );
    }
    paths
}
