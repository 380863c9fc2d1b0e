//! The exposure experiment: with an adversary running a share of the relays, how often are a
//! stream's first hop and exit both the adversary's (the position from which it can link the
//! client to its destination by traffic timing)?
//!
//! It runs the router's real entry-guard state ([`braid_router::guards::Guards`]) and real path
//! selection ([`braid_router::path::select_path`]: position weights, families, networks) over a
//! synthetic directory, for many clients, each making many streams on fresh isolation keys,
//! each stream split over K strands. It builds no circuit and sends no packet: it measures the
//! choice of relays, which is what exposure depends on. Time does not pass (no guard
//! rotation): it is the exposure of one guard lifetime.
//!
//! Three client kinds are compared: guards with K = 1, guards with K strands, and no guards
//! (every strand, and every rebuild of a strand, on a fresh first hop: braid before guards).
//! Formulas for comparison, with g the adversary's share of guard-position weight and e of exit
//! weight: without guards a stream is exposed with probability about `e·(1−(1−g)^n)` for n
//! first hops; with P primary guards a client is exposed at all with probability about
//! `1−(1−g)^P`, and then each stream with probability about e.

use braid_router::guards::{GuardSettings, Guards, ListedRelay};
use braid_router::path::{Candidate, PathConstraints, select_path};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr};

/// The most relays, clients or streams per client an experiment may ask for (it runs in
/// memory, in one thread).
pub const MAX_EXPOSURE_SIZE: usize = 100_000;

/// What to simulate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureParams {
    /// Relays in the directory (each in its own /16, no families).
    pub relays: usize,
    /// How many of them are exits (Exit flag only; the others have the Guard flag only).
    pub exits: usize,
    /// The share of relays the adversary runs, chosen at random (0.0..=1.0).
    pub adversary: f64,
    /// Clients, each with its own guards.
    pub clients: usize,
    /// Streams per client, each on a fresh isolation key.
    pub streams: usize,
    /// Strands per stream (K) for the guarded K-strand clients.
    pub strands: usize,
    /// Strands rebuilt per stream (after a failure or a stall) by clients without guards,
    /// each on a fresh first hop; the issue that brought guards assumed 6 (9 first hops).
    pub rebuilds: usize,
    /// Seed: the same seed gives the same network, adversary and choices.
    pub seed: u64,
}

impl Default for ExposureParams {
    fn default() -> Self {
        ExposureParams {
            relays: 1000,
            exits: 250,
            adversary: 0.05,
            clients: 500,
            streams: 100,
            strands: 3,
            rebuilds: 6,
            seed: 1,
        }
    }
}

/// One client kind's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureRow {
    /// Which clients: "guards K=1", "guards K=3", "no guards K=3 (+6 rebuilds)".
    pub kind: String,
    /// First hops per stream.
    pub first_hops: usize,
    /// Fraction of all streams whose exit and some first hop are the adversary's.
    pub streams_exposed: f64,
    /// Fraction of clients with at least one exposed stream.
    pub clients_exposed: f64,
    /// The formula's stream exposure for this kind.
    pub formula_streams: f64,
    /// The formula's client exposure for this kind.
    pub formula_clients: f64,
}

/// The experiment's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExposureReport {
    /// What was simulated.
    pub params: ExposureParams,
    /// The adversary's share of guard-position weight (g).
    pub g: f64,
    /// The adversary's share of exit weight (e).
    pub e: f64,
    /// Guards K = 1, guards K = strands, no guards.
    pub rows: Vec<ExposureRow>,
}

impl ExposureReport {
    /// The report as a text table.
    pub fn table(&self) -> String {
        let p = &self.params;
        let mut out = format!(
            "exposure: {} relays ({} exits), adversary runs {:.1} % of them: g = {:.4} of guard \
             weight, e = {:.4} of exit weight; {} clients x {} streams, seed {}\n",
            p.relays,
            p.exits,
            p.adversary * 100.0,
            self.g,
            self.e,
            p.clients,
            p.streams,
            p.seed
        );
        out.push_str(&format!(
            "{:<32} {:>10} {:>16} {:>16} {:>16} {:>16}\n",
            "clients", "first hops", "streams exposed", "formula", "clients exposed", "formula"
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "{:<32} {:>10} {:>15.4}% {:>15.4}% {:>15.2}% {:>15.2}%\n",
                r.kind,
                r.first_hops,
                r.streams_exposed * 100.0,
                r.formula_streams * 100.0,
                r.clients_exposed * 100.0,
                r.formula_clients * 100.0
            ));
        }
        out
    }
}

/// Why an experiment could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("exposure experiment: {0}")]
pub struct ExposureError(String);

/// Runs the experiment.
pub fn run(p: &ExposureParams) -> Result<ExposureReport, ExposureError> {
    check(p)?;
    let mut rng = StdRng::seed_from_u64(p.seed);
    let candidates: Vec<Candidate> = (0..p.relays)
        .map(|i| {
            let exit = i < p.exits;
            // Bandwidths spread over two orders of magnitude, as in a real network.
            let bandwidth = 10f64.powf(rng.random_range(5.0..7.0)) as u64;
            let [a, b] = u16::try_from(i).unwrap_or(u16::MAX).to_be_bytes();
            Candidate {
                index: i,
                ip: Some(IpAddr::V4(Ipv4Addr::new(a.wrapping_add(1), b, 0, 1))),
                bandwidth,
                exit_for_target: exit,
                guard: !exit,
                exit,
                family: Vec::new(),
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..p.relays).collect();
    order.shuffle(&mut rng);
    let bad_count = (p.adversary * p.relays as f64).round() as usize;
    let mut adversary = vec![false; p.relays];
    for &i in order.iter().take(bad_count) {
        adversary[i] = true;
    }
    let share = |pick: &dyn Fn(&Candidate) -> bool| {
        let total: u64 = candidates
            .iter()
            .filter(|c| pick(c))
            .map(|c| c.bandwidth)
            .sum();
        let bad: u64 = candidates
            .iter()
            .filter(|c| pick(c) && adversary[c.index])
            .map(|c| c.bandwidth)
            .sum();
        bad as f64 / total.max(1) as f64
    };
    let g = share(&|c| c.guard);
    let e = share(&|c| c.exit);
    let listed: Vec<ListedRelay> = candidates
        .iter()
        .map(|c| ListedRelay {
            id: id_of(c.index),
            nickname: format!("r{}", c.index),
            bandwidth: c.bandwidth,
            eligible: c.guard,
        })
        .collect();
    let world = World {
        candidates: &candidates,
        adversary: &adversary,
        listed: &listed,
    };
    let k = p.strands;
    let rows = vec![
        world
            .guarded(p, 1, &mut rng)?
            .with_formulas(g, e, p.streams),
        world
            .guarded(p, k, &mut rng)?
            .with_formulas(g, e, p.streams),
        world
            .unguarded(p, k, p.rebuilds, &mut rng)?
            .with_formulas(g, e, p.streams),
    ];
    Ok(ExposureReport {
        params: p.clone(),
        g,
        e,
        rows,
    })
}

fn check(p: &ExposureParams) -> Result<(), ExposureError> {
    let bad = |what: &str| Err(ExposureError(what.into()));
    if p.relays > MAX_EXPOSURE_SIZE || p.clients > MAX_EXPOSURE_SIZE {
        return bad("too many relays or clients");
    }
    if p.streams > MAX_EXPOSURE_SIZE {
        return bad("too many streams per client");
    }
    if p.exits == 0 || p.exits >= p.relays || p.relays - p.exits < 2 * p.strands.max(1) + 3 {
        return bad("need at least one exit and enough non-exits for K guards and middles");
    }
    if !(0.0..=1.0).contains(&p.adversary) {
        return bad("adversary must be a share in 0..=1");
    }
    if !(1..=8).contains(&p.strands) || p.rebuilds > 64 {
        return bad("strands must be 1..=8 and rebuilds at most 64");
    }
    Ok(())
}

/// A stable identity per relay index for the guard state.
fn id_of(index: usize) -> [u8; 32] {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(index as u64).to_be_bytes());
    id
}

/// Counts of one client kind.
struct Tally {
    kind: String,
    guards: bool,
    first_hops: usize,
    streams: usize,
    exposed_streams: usize,
    clients: usize,
    exposed_clients: usize,
}

impl Tally {
    fn with_formulas(self, g: f64, e: f64, streams: usize) -> ExposureRow {
        // A stream is exposed when its exit and one of its first hops are bad. Without guards
        // every stream draws fresh first hops; with guards the same K primaries serve every
        // stream, so a client is exposed at all only through a bad primary, and then each
        // stream through it with probability e.
        let any_bad = 1.0 - (1.0 - g).powi(self.first_hops as i32);
        let formula_streams = e * any_bad;
        let formula_clients = if self.guards {
            any_bad * (1.0 - (1.0 - e).powi(streams as i32))
        } else {
            1.0 - (1.0 - formula_streams).powi(streams as i32)
        };
        ExposureRow {
            kind: self.kind,
            first_hops: self.first_hops,
            streams_exposed: self.exposed_streams as f64 / self.streams.max(1) as f64,
            clients_exposed: self.exposed_clients as f64 / self.clients.max(1) as f64,
            formula_streams,
            formula_clients,
        }
    }
}

struct World<'a> {
    candidates: &'a [Candidate],
    adversary: &'a [bool],
    listed: &'a [ListedRelay],
}

impl World<'_> {
    /// Clients with guards: each stream's K strands start at K distinct primary guards.
    fn guarded(
        &self,
        p: &ExposureParams,
        k: usize,
        rng: &mut StdRng,
    ) -> Result<Tally, ExposureError> {
        let mut t = Tally {
            kind: format!("guards K={k}"),
            guards: true,
            first_hops: k,
            streams: 0,
            exposed_streams: 0,
            clients: p.clients,
            exposed_clients: 0,
        };
        let now = 1_700_000_000;
        for _ in 0..p.clients {
            let mut guards = Guards::new(GuardSettings {
                primary: k.max(3),
                ..GuardSettings::default()
            });
            let _ = guards.update_listing(self.listed, now, rng);
            let primary: Vec<usize> = guards
                .usable_primary(now)
                .iter()
                .filter_map(|id| self.listed.iter().position(|r| &r.id == id))
                .take(k)
                .collect();
            if primary.is_empty() {
                return Err(ExposureError("no primary guard".into()));
            }
            let forced: Vec<Option<usize>> = primary.iter().map(|&g| Some(g)).collect();
            self.client(&mut t, p.streams, &forced, rng)?;
        }
        Ok(t)
    }

    /// One client's `streams` streams, each with first hops `guards`, counted into `t`.
    fn client(
        &self,
        t: &mut Tally,
        streams: usize,
        guards: &[Option<usize>],
        rng: &mut StdRng,
    ) -> Result<(), ExposureError> {
        let mut exposed = false;
        for _ in 0..streams {
            t.streams += 1;
            if self.stream(guards, rng)? {
                t.exposed_streams += 1;
                exposed = true;
            }
        }
        t.exposed_clients += usize::from(exposed);
        Ok(())
    }

    /// Clients without guards: K fresh first hops per stream, and `rebuilds` more.
    fn unguarded(
        &self,
        p: &ExposureParams,
        k: usize,
        rebuilds: usize,
        rng: &mut StdRng,
    ) -> Result<Tally, ExposureError> {
        let mut t = Tally {
            kind: format!("no guards K={k} (+{rebuilds} rebuilds)"),
            guards: false,
            first_hops: k + rebuilds,
            streams: 0,
            exposed_streams: 0,
            clients: p.clients,
            exposed_clients: 0,
        };
        let fresh = vec![None; k + rebuilds];
        for _ in 0..p.clients {
            self.client(&mut t, p.streams, &fresh, rng)?;
        }
        Ok(t)
    }

    /// Chooses one stream's strand paths (one per entry of `guards`: forced or fresh) to one
    /// exit, as the router's strand sets do (other guards kept out of the middles where
    /// possible, a guard already used by another strand skipped), and says whether the exit
    /// and some first hop are the adversary's.
    fn stream(&self, guards: &[Option<usize>], rng: &mut StdRng) -> Result<bool, ExposureError> {
        let mut exit = None;
        let mut siblings: Vec<usize> = Vec::new();
        let mut firsts: Vec<usize> = Vec::new();
        for &guard in guards {
            if guard.is_some_and(|g| siblings.contains(&g)) {
                continue;
            }
            let with = PathConstraints {
                guard,
                exit,
                siblings: siblings.clone(),
                ..PathConstraints::default()
            };
            let mut apart = with.clone();
            apart
                .exclude
                .extend(guards.iter().flatten().filter(|&&o| Some(o) != guard));
            let path = select_path(self.candidates, &apart, rng)
                .or_else(|_| select_path(self.candidates, &with, rng))
                .map_err(|e| ExposureError(format!("path: {e}")))?;
            let (last, rest) = path
                .split_last()
                .ok_or_else(|| ExposureError("empty path".into()))?;
            exit = Some(*last);
            firsts.extend(rest.first());
            // Every earlier strand (rebuilt ones included) binds the next: the stricter choice.
            siblings.extend_from_slice(rest);
        }
        let bad_exit = exit.is_some_and(|e| self.adversary[e]);
        Ok(bad_exit && firsts.iter().any(|&f| self.adversary[f]))
    }
}
