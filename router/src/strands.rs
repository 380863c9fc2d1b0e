//! Strand sets: K circuits that end at the same exit and share no guard and no middle relay,
//! and the braided streams that run over them.
//!
//! A set is built for an isolation key and reused by later streams of that key while all its
//! circuits live and it is not too old. A braided stream opens on one strand (`BeginBraid`,
//! which carries the stream's secret to the exit) and, at the same time, links the others
//! (`Link` with the id derived from the secret), which carry fragments without waiting for
//! the exit's `Linked`; circuits of a set still being built are linked as they come, and wait
//! for `Linked`. When a strand's circuit dies mid-stream, [`Replacer`] builds a new
//! circuit to the same exit avoiding the relays of the live strands and links it; the set that
//! lost a circuit takes no new streams.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use braid_relay::Target;
use braid_relay::shared::braid::{self, StrandEvent, StrandSupply};
use braid_splitter::StrandId;
use rand::RngExt;
use tokio::sync::mpsc;
use tracing::debug;

use crate::circuit::Circuit;
use crate::error::RouterError;
use crate::manager::{CircuitManager, Refill};
use crate::path::PathConstraints;
use crate::socks5::IsolationKey;

/// Events queued towards one braided stream's engine.
pub const EVENT_QUEUE: usize = 64;

/// K circuits to one exit.
#[derive(Debug)]
pub struct StrandSet {
    pub(crate) isolation: Vec<u8>,
    /// Directory index of the shared exit.
    pub(crate) exit: usize,
    /// In strand order; grows while the set's later circuits are still being built.
    circuits: Mutex<Vec<Arc<Circuit>>>,
    /// Circuits are still being built for it (it takes no new stream until they are done).
    building: AtomicBool,
    closed: AtomicBool,
    pub(crate) built_at: Instant,
}

impl StrandSet {
    /// A set of `circuits` (at least one), with more to come if `building`.
    pub(crate) fn new(
        isolation: Vec<u8>,
        exit: usize,
        circuits: Vec<Arc<Circuit>>,
        built_at: Instant,
        building: bool,
    ) -> Self {
        StrandSet {
            isolation,
            exit,
            circuits: Mutex::new(circuits),
            building: AtomicBool::new(building),
            closed: AtomicBool::new(false),
            built_at,
        }
    }

    /// The circuits built so far, in strand order.
    pub(crate) fn circuits(&self) -> Vec<Arc<Circuit>> {
        self.circuits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Adds a circuit built after the set was first used; returns its strand index, or `None`
    /// (closing the circuit) when the set was closed meanwhile.
    pub(crate) fn push(&self, circuit: Arc<Circuit>) -> Option<usize> {
        let mut circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        if self.closed.load(Ordering::SeqCst) {
            circuits.push(circuit.clone());
            drop(circuits);
            circuit.close();
            return None;
        }
        circuits.push(circuit);
        Some(circuits.len() - 1)
    }

    /// Every circuit the set will have is in it.
    pub(crate) fn done_building(&self) {
        self.building.store(false, Ordering::SeqCst);
    }

    /// Whether circuits are still being built for it.
    pub(crate) fn is_building(&self) -> bool {
        self.building.load(Ordering::SeqCst)
    }

    /// Whether every circuit is built, lives and has room for one more stream.
    pub(crate) fn usable(&self) -> bool {
        !self.is_building() && self.circuits().iter().all(|c| c.has_room())
    }

    /// Whether a circuit of the set was closed.
    pub(crate) fn broken(&self) -> bool {
        self.circuits().iter().any(|c| c.is_closed())
    }

    /// Closes every circuit, and those still to come.
    pub(crate) fn close(&self) {
        let circuits = self.circuits.lock().unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::SeqCst);
        for c in circuits.iter() {
            c.close();
        }
    }

    /// Whether no stream uses the set.
    pub(crate) fn idle(&self) -> bool {
        self.circuits().iter().all(|c| c.stream_count() == 0)
    }
}

/// A braided stream opened at the exit, before its engine runs.
pub struct BraidedStream {
    /// Events for the engine (the first strand's `Up` is already queued).
    pub events: mpsc::Receiver<StrandEvent>,
    /// The engine's splitter state.
    pub state: braid::Braid,
    /// Finds replacement strands and links the set's other circuits.
    pub supply: Replacer,
}

/// Opens a braided stream to `target` on a strand set for `isolation`.
pub(crate) async fn open(
    manager: &Arc<CircuitManager>,
    target: &Target,
    isolation: &IsolationKey,
) -> Result<BraidedStream, RouterError> {
    let mut last_err = RouterError::CircuitClosed;
    for _ in 0..manager.settings.build_attempts.max(1) {
        let mut fresh = false;
        // `now`: the circuits to link at once; `late`: circuits of a set still being built,
        // as they come (the stream opens on the first one built).
        let (set, now, late) = match manager.reusable_set(target, isolation) {
            Some(s) => {
                let now = s.circuits();
                (s, now, None)
            }
            None => match manager.build_set(target, isolation).await {
                Ok(built) => {
                    fresh = true;
                    built
                }
                // A relay on the chosen paths died or a handshake failed: choose again.
                Err(e) if e.is_transient() => {
                    debug!(error = %e, "strand set build failed; retrying");
                    last_err = e;
                    continue;
                }
                Err(e) => return Err(e),
            },
        };
        let Some(first) = now.first().cloned() else {
            set.close();
            continue;
        };
        let mut secret = [0u8; 32];
        rand::rng().fill(&mut secret[..]);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let mut paths = BTreeMap::new();
        for (i, c) in now.iter().enumerate() {
            paths.insert(StrandId(i as u32), c.path.clone());
        }
        let mut supply = Replacer {
            manager: manager.clone(),
            target: target.clone(),
            exit: set.exit,
            link: braid::link_id(&secret),
            events: events_tx.clone(),
            // Strand ids below K are the set's own (late ones included); replacements follow.
            next: manager.settings.strands.max(now.len()) as u32,
            budget: manager.settings.strands.saturating_mul(2),
            paths: Arc::new(Mutex::new(paths)),
            spares: Arc::new(Mutex::new(Vec::new())),
            inflight: Arc::new(AtomicUsize::new(0)),
            refill: None,
            isolation: isolation.clone(),
            lost: std::collections::BTreeSet::new(),
        };
        // The other strands link beside the `BeginBraid`, not after its answer, and carry
        // fragments without waiting for theirs: the exit keeps a `Link` that comes first until
        // its stream begins, so every strand is up when the app's first bytes come and the
        // request is split like the rest (not sent whole on the first strand).
        for (i, c) in now.iter().enumerate().skip(1) {
            let strand = StrandId(i as u32);
            let event = match c.link_now(supply.link, strand, events_tx.clone()).await {
                Ok(link) => StrandEvent::Up { strand, link },
                Err(e) => {
                    debug!(strand = strand.0, error = %e, "strand link failed");
                    StrandEvent::Down {
                        strand,
                        ended: None,
                    }
                }
            };
            let _ = events_tx.try_send(event);
        }
        if let Some(late) = late {
            supply.spawn_late(late, now.len() as u32);
        }
        let link = match first
            .open_braid(
                target.clone(),
                secret,
                StrandId(0),
                events_tx.clone(),
                manager.settings.stream_timeout,
            )
            .await
        {
            Ok(l) => l,
            // The first strand died before the exit answered: nothing reached the app yet, so
            // the stream may start over on a fresh set.
            Err(e) if e.is_transient() => {
                debug!(error = %e, "braided stream open failed; retrying");
                first.close();
                last_err = e;
                continue;
            }
            Err(e) => return Err(e),
        };
        // A new key took a clean set or built one: get the next ready once this stream is
        // answered (not competing with its round trip).
        supply.refill = fresh.then(|| manager.deferred_refill(target));
        let state = braid::Braid::new(&manager.settings.braid, &secret, braid::Role::Client, {
            first.max_data()
        })
        .map_err(|e| RouterError::BuildFailed(format!("splitter: {e}")))?;
        let up = StrandEvent::Up {
            strand: StrandId(0),
            link,
        };
        events_tx
            .send(up)
            .await
            .map_err(|_| RouterError::CircuitClosed)?;
        return Ok(BraidedStream {
            events,
            state,
            supply,
        });
    }
    Err(last_err)
}

/// Links extra strands to one braided stream and replaces lost ones (bounded by a budget).
#[derive(Debug)]
pub struct Replacer {
    manager: Arc<CircuitManager>,
    target: Target,
    exit: usize,
    link: [u8; 32],
    events: mpsc::Sender<StrandEvent>,
    next: u32,
    budget: usize,
    paths: Arc<Mutex<BTreeMap<StrandId, Vec<usize>>>>,
    /// Circuits built for this stream alone; closed when it ends.
    spares: Arc<Mutex<Vec<Arc<Circuit>>>>,
    /// Link and replacement tasks under way.
    inflight: Arc<AtomicUsize>,
    /// The next clean set's build, held until this stream is answered (or dropped with it).
    refill: Option<Refill>,
    /// The stream's isolation key: replacements are built on its client identity.
    isolation: IsolationKey,
    /// Strands reported lost (their guards were charged a use failure).
    lost: std::collections::BTreeSet<StrandId>,
}

/// Counts a task under way until dropped.
struct Inflight(Arc<AtomicUsize>);

impl Inflight {
    fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Inflight(counter.clone())
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Replacer {
    /// The relay path (directory indexes, guard first) of every strand the stream had.
    pub fn paths(&self) -> BTreeMap<StrandId, Vec<usize>> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Links the set's circuits still being built as they come, as strands `first_id`, ...
    /// (their indexes in the set). Counts as under way until the last build ended.
    fn spawn_late(&self, mut late: mpsc::Receiver<Arc<Circuit>>, first_id: u32) {
        let guard = Inflight::start(&self.inflight);
        let (events, link) = (self.events.clone(), self.link);
        let timeout = self.manager.settings.stream_timeout;
        let (inflight, paths) = (self.inflight.clone(), self.paths.clone());
        tokio::spawn(async move {
            let mut id = first_id;
            while let Some(circuit) = late.recv().await {
                let strand = StrandId(id);
                id += 1;
                if let Ok(mut p) = paths.lock() {
                    p.insert(strand, circuit.path.clone());
                }
                let one = Inflight::start(&inflight);
                spawn_link(events.clone(), link, timeout, one, circuit, strand);
            }
            drop(guard);
        });
    }
}

/// Links `circuit` to the stream as `strand` in a task and reports the outcome to its engine.
fn spawn_link(
    events: mpsc::Sender<StrandEvent>,
    link: [u8; 32],
    timeout: std::time::Duration,
    guard: Inflight,
    circuit: Arc<Circuit>,
    strand: StrandId,
) {
    tokio::spawn(async move {
        let linked = match circuit.link(link, strand, events.clone(), timeout).await {
            Ok(l) => Some(l),
            Err(e) => {
                debug!(strand = strand.0, error = %e, "strand link failed");
                None
            }
        };
        report(guard, &events, strand, linked).await;
    });
}

/// Hands a linked strand to the engine, or (after the in-flight count dropped) wakes it with a
/// `Down` for the strand that never came, so it can tell whether any strand is left to wait for.
async fn report(
    guard: Inflight,
    events: &mpsc::Sender<StrandEvent>,
    strand: StrandId,
    linked: Option<braid::StrandLink>,
) {
    match linked {
        Some(link) => {
            let _ = events.send(StrandEvent::Up { strand, link }).await;
            drop(guard);
        }
        None => {
            drop(guard);
            let down = StrandEvent::Down {
                strand,
                ended: None,
            };
            let _ = events.send(down).await;
        }
    }
}

impl StrandSupply for Replacer {
    fn answered(&mut self) {
        if let Some(refill) = self.refill.take() {
            refill.answered();
        }
    }

    fn pending(&self) -> Option<usize> {
        Some(self.inflight.load(Ordering::SeqCst))
    }

    fn lost(&mut self, strand: StrandId, _live: usize) {
        // Path bias: the strand's guard is charged a use failure (stalled or died).
        let lost_path = self.paths().get(&strand).cloned().unwrap_or_default();
        if self.lost.insert(strand)
            && let Some(&guard) = lost_path.first()
        {
            self.manager.report_use(guard, false);
        }
        if self.budget == 0 || self.events.is_closed() {
            return;
        }
        self.budget -= 1;
        // Guards of the strands still live: a replacement starts at the lost strand's guard
        // if it is still usable, else at a primary guard no live strand uses.
        let live_guards: Vec<usize> = self
            .paths()
            .iter()
            .filter(|(id, _)| !self.lost.contains(id))
            .filter_map(|(_, p)| p.first().copied())
            .collect();
        let own_guard = lost_path.first().copied();
        let id = StrandId(self.next);
        self.next += 1;
        let manager = self.manager.clone();
        let target = self.target.clone();
        let exit = self.exit;
        let paths = self.paths.clone();
        let spares = self.spares.clone();
        let events = self.events.clone();
        let link = self.link;
        let timeout = manager.settings.stream_timeout;
        let guard = Inflight::start(&self.inflight);
        let isolation = self.isolation.clone();
        tokio::spawn(async move {
            let linked = async {
                // Avoid every non-exit relay of the other strands, the lost one's included: it
                // may be the relay that died; only its guard may be used again.
                let Some(guard) = manager.replacement_guard(own_guard, &live_guards) else {
                    debug!(lost = strand.0, "no primary guard for a replacement strand");
                    return None;
                };
                let exclude: Vec<usize> = paths
                    .lock()
                    .map(|p| {
                        p.values()
                            .flat_map(|path| path.iter().copied())
                            .filter(|&i| i != exit && i != guard)
                            .collect()
                    })
                    .unwrap_or_default();
                // They are siblings: no family or (when possible) network shared with them.
                let constraints = PathConstraints {
                    hops: manager.settings.hops,
                    exit: Some(exit),
                    siblings: exclude,
                    guard: Some(guard),
                    ..PathConstraints::default()
                };
                let circuit = match manager
                    .build_path(&target, constraints, Some(&isolation))
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        debug!(lost = strand.0, error = %e, "no replacement strand");
                        return None;
                    }
                };
                if events.is_closed() {
                    // The stream ended while the circuit was being built.
                    circuit.close();
                    return None;
                }
                if let Ok(mut s) = spares.lock() {
                    s.push(circuit.clone());
                }
                if let Ok(mut p) = paths.lock() {
                    p.insert(id, circuit.path.clone());
                }
                match circuit.link(link, id, events.clone(), timeout).await {
                    Ok(l) => {
                        debug!(lost = strand.0, new = id.0, "replacement strand linked");
                        Some(l)
                    }
                    Err(e) => {
                        debug!(error = %e, "replacement strand link failed");
                        None
                    }
                }
            }
            .await;
            report(guard, &events, id, linked).await;
        });
    }
}

impl Drop for Replacer {
    fn drop(&mut self) {
        // Path bias: every strand not lost ran clean.
        for (id, path) in self.paths() {
            if !self.lost.contains(&id)
                && let Some(&guard) = path.first()
            {
                self.manager.report_use(guard, true);
            }
        }
        if let Ok(mut s) = self.spares.lock() {
            for c in s.drain(..) {
                c.close();
            }
        }
    }
}
