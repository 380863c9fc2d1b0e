//! The circuit manager: picks paths from the directory, builds circuits, reuses them per
//! isolation key, and opens streams on them.
//!
//! Isolation: streams whose SOCKS credentials differ never share a circuit (like Tor's
//! IsolateSOCKSAuth). A circuit takes new streams until it is `max_dirtiness` old, then is
//! closed once idle. The number of circuits is bounded.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use braid_directory::{Directory, Families, ListedRelay, RelayFlags};
use braid_relay::Target;
use braid_relay::handshake::HopSpec;
use braid_transport::{Multiaddr, PeerId, Transport, peer_id_from_public};
use tracing::{debug, info};

use braid_relay::braid::{BraidReport, BraidSettings};
use braid_splitter::StrandId;

use crate::circuit::{Circuit, CircuitSettings, OpenStream};
use crate::error::RouterError;
use crate::identities::ClientIdentities;
use crate::path::{Candidate, PathConstraints, select_path};
use crate::socks5::IsolationKey;
use crate::stats::RouterStats;
use crate::strands::StrandSet;

mod guarded;
mod preemptive;
mod sets;
mod summary;

pub use guarded::{SAVE_INTERVAL, guard_eligible};
pub use preemptive::{REFILL_WAIT, Refill};
pub use summary::CircuitSummary;

/// Client-side settings.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Hops per circuit.
    pub hops: usize,
    /// Per-circuit settings.
    pub circuit: CircuitSettings,
    /// Time allowed for the exit to answer a stream's `Begin`.
    pub stream_timeout: Duration,
    /// Circuits open at once.
    pub max_circuits: usize,
    /// A circuit older than this takes no new streams.
    pub max_dirtiness: Duration,
    /// Build attempts per stream before giving up.
    pub build_attempts: usize,
    /// Strands per stream (K, 1..=8): 1 carries each stream on one circuit; more split it
    /// over K circuits to one exit (see [`crate::strands`]).
    pub strands: usize,
    /// Settings of braided streams (K > 1).
    pub braid: BraidSettings,
    /// Clean circuits (K = 1) or strand sets (K > 1) kept built ahead for streams of a new
    /// isolation key (see `preemptive`); 0: none, every new key waits for its own builds.
    pub preemptive: usize,
    /// Client identities (libp2p swarms with fresh keys, see [`crate::identities`]) at once:
    /// one per isolation key and per clean circuit built ahead, never shared across keys.
    pub max_client_identities: usize,
    /// Build circuits on a client identity per isolation key (see [`crate::identities`]),
    /// the default; `false`: on the manager's own transport, one identity for everything.
    pub identity_per_key: bool,
    /// Entry guard settings; the primary guards are `max(guards.primary, strands)`.
    pub guards: crate::guards::GuardSettings,
    /// Where the entry guards are kept across restarts; `None`: in memory only.
    pub guard_file: Option<std::path::PathBuf>,
}

impl Default for RouterSettings {
    fn default() -> Self {
        RouterSettings {
            hops: 3,
            circuit: CircuitSettings {
                build_timeout: Duration::from_secs(15),
                max_streams: 64,
                stream_queue: 16,
                circuit_queue: 64,
                traffic: Default::default(),
            },
            stream_timeout: Duration::from_secs(20),
            max_circuits: 64,
            max_dirtiness: Duration::from_secs(600),
            build_attempts: 3,
            strands: 3,
            braid: BraidSettings::default(),
            preemptive: 1,
            max_client_identities: 64,
            identity_per_key: true,
            guards: crate::guards::GuardSettings::default(),
            guard_file: None,
        }
    }
}

/// One relay from the directory. Indexes into the relay list are stable for the manager's
/// life (circuit paths and stream records hold them): a relay that leaves the directory stays
/// as an unlisted entry until the list is compacted.
#[derive(Debug, Clone)]
struct Relay {
    /// Whether the directory in use lists it; unlisted relays are never chosen.
    listed: bool,
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    spec: HopSpec,
    desc: braid_directory::Descriptor,
    /// Its selection weight in the directory ([`ListedRelay::weight`]).
    weight: u64,
    /// Its registry-assigned flags.
    flags: RelayFlags,
}

struct Entry {
    isolation: Vec<u8>,
    circuit: Arc<Circuit>,
}

/// One strand circuit's activity (see `CircuitManager::strand_activity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrandActivity {
    /// Identifies the circuit between two samples (its address while it lives).
    pub circuit: usize,
    /// Its path (directory indexes, guard first).
    pub path: Vec<usize>,
    /// Cells it has received so far.
    pub cells_in: u64,
}

/// What one braided stream did, for reports.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// The engine's report (bytes per strand, resends, rejected fragments).
    pub report: BraidReport,
    /// Each strand's path (directory indexes, guard first, exit last).
    pub paths: std::collections::BTreeMap<StrandId, Vec<usize>>,
}

impl StreamRecord {
    /// The largest share of the stream's fragment bytes that any one non-exit relay carried
    /// (0 when nothing was carried).
    pub fn max_relay_share(&self) -> f64 {
        let mut per_relay: std::collections::BTreeMap<usize, u64> = Default::default();
        let mut total = 0u64;
        for t in &self.report.strands {
            let bytes = t.bytes_sent + t.bytes_received;
            total += bytes;
            if let Some(path) = self.paths.get(&t.strand) {
                for &r in &path[..path.len().saturating_sub(1)] {
                    *per_relay.entry(r).or_default() += bytes;
                }
            }
        }
        if total == 0 {
            return 0.0;
        }
        per_relay.values().copied().max().unwrap_or(0) as f64 / total as f64
    }
}

/// Builds and hands out circuits.
pub struct CircuitManager {
    transport: Transport,
    pub(crate) settings: RouterSettings,
    relays: RwLock<Arc<Vec<Relay>>>,
    circuits: Mutex<Vec<Entry>>,
    sets: Mutex<Vec<Arc<StrandSet>>>,
    build_times: Mutex<VecDeque<Duration>>,
    built_paths: Mutex<VecDeque<Vec<usize>>>,
    records: Mutex<VecDeque<StreamRecord>>,
    spares: Mutex<preemptive::Spares>,
    /// Why no circuit may be built now (the directory is stale), if so.
    stale: RwLock<Option<String>>,
    /// The identities circuits are built on (never `transport`'s).
    identities: ClientIdentities,
    guards: guarded::SharedKeeper,
    /// Counters for metrics.
    stats: Arc<RouterStats>,
}

impl std::fmt::Debug for CircuitManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitManager").finish_non_exhaustive()
    }
}

/// Build times kept for reports.
const MAX_BUILD_SAMPLES: usize = 10_000;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl CircuitManager {
    /// A manager over `transport` with no relays yet.
    pub fn new(transport: Transport, mut settings: RouterSettings) -> Self {
        settings.guards.primary = settings.guards.primary.max(settings.strands);
        let guards = guarded::load(settings.guards.clone(), settings.guard_file.as_deref());
        CircuitManager {
            guards,
            transport,
            relays: RwLock::new(Arc::new(Vec::new())),
            circuits: Mutex::new(Vec::new()),
            sets: Mutex::new(Vec::new()),
            build_times: Mutex::new(VecDeque::new()),
            built_paths: Mutex::new(VecDeque::new()),
            records: Mutex::new(VecDeque::new()),
            spares: Mutex::new(preemptive::Spares::default()),
            stale: RwLock::new(None),
            identities: ClientIdentities::new(
                settings_identities(&settings),
                settings.max_dirtiness,
            ),
            settings,
            stats: Arc::new(RouterStats::default()),
        }
    }

    /// The proxy side's counters (circuits, streams, strands, fragments).
    pub fn stats(&self) -> &Arc<RouterStats> {
        &self.stats
    }

    /// The transport circuits for `isolation` are built on: that key's own client identity
    /// (`None`: a new one for a clean circuit built ahead). Never the manager's transport,
    /// which fetches the directory.
    async fn client_transport(
        &self,
        isolation: Option<&IsolationKey>,
    ) -> Result<Transport, RouterError> {
        if !self.settings.identity_per_key {
            return Ok(self.transport.clone());
        }
        self.identities
            .transport_for(isolation.map(|k| k.0.as_slice()))
            .await
    }

    /// The client identities in use (for tests and diagnostics).
    pub fn client_identities(&self) -> &ClientIdentities {
        &self.identities
    }

    /// Stops (`Some(why)`) or allows again (`None`) building new circuits: the proxy says
    /// why when its directory is past its validity and grace. Circuits already built carry
    /// on; every build fails with `RouterError::Directory(why)` meanwhile.
    pub fn set_directory_stale(&self, why: Option<String>) {
        if let Ok(mut stale) = self.stale.write() {
            *stale = why;
        }
    }

    /// Why new circuits are not built now, if they are not.
    pub fn directory_stale(&self) -> Option<String> {
        self.stale.read().ok().and_then(|s| s.clone())
    }

    /// The settings in use.
    pub fn settings(&self) -> &RouterSettings {
        &self.settings
    }

    /// Records a finished braided stream (bounded; the oldest are dropped).
    pub fn record(&self, record: StreamRecord) {
        self.stats.add_report(&record.report);
        if let Ok(mut r) = self.records.lock() {
            if r.len() >= MAX_BUILD_SAMPLES {
                r.pop_front();
            }
            r.push_back(record);
        }
    }

    /// Braided streams recorded so far (oldest first, bounded).
    pub fn stream_records(&self) -> Vec<StreamRecord> {
        self.records
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Paths (directory indexes, guard first) of the open circuits that carry a stream now, in
    /// every strand set (idle circuits, e.g. of a set kept for reuse, are left out).
    pub fn strand_paths(&self) -> Vec<Vec<usize>> {
        self.strand_activity().into_iter().map(|s| s.path).collect()
    }

    /// The open circuits of every strand set that carry a stream now, each with its path and
    /// the cells it has received so far (sample twice to see which strands are busy).
    pub fn strand_activity(&self) -> Vec<StrandActivity> {
        self.sets
            .lock()
            .map(|sets| {
                sets.iter()
                    .flat_map(|s| s.circuits())
                    .filter(|c| !c.is_closed() && c.stream_count() > 0)
                    .map(|c| StrandActivity {
                        circuit: Arc::as_ptr(&c) as usize,
                        path: c.path.clone(),
                        cells_in: c.cells_in(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The relay paths (directory indexes, guard first) of every strand set kept for reuse,
    /// one list per set in strand order, with whether circuits are still being built for it.
    pub fn strand_sets(&self) -> Vec<(Vec<Vec<usize>>, bool)> {
        self.sets
            .lock()
            .map(|sets| {
                sets.iter()
                    .map(|s| {
                        let paths = s.circuits().iter().map(|c| c.path.clone()).collect();
                        (paths, s.is_building())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Replaces the relay set with the fresh descriptors of `directory`; returns how many are
    /// usable. Invalid or expired entries are skipped.
    ///
    /// Relays keep their index across updates (circuits and records refer to relays by index):
    /// an updated descriptor replaces the old one in place, a new relay is appended, and a
    /// relay no longer listed stays as an unlisted entry that is never chosen. When unlisted
    /// entries outnumber listed ones (and exceed [`MAX_UNLISTED`]), the list is compacted and
    /// every circuit closed, since their indexes no longer hold.
    pub async fn set_directory(&self, directory: &Directory) -> Result<usize, RouterError> {
        let now = now_unix();
        let mut fresh = Vec::new();
        for listed in directory.fresh_relays(now) {
            if let Some(r) = relay_from(listed) {
                self.transport
                    .add_addresses(r.peer, r.addrs.clone())
                    .await?;
                fresh.push(r);
            }
        }
        let n = fresh.len();
        let old = self.relays.read().map(|r| r.clone()).unwrap_or_default();
        let mut merged: Vec<Relay> = old
            .iter()
            .map(|r| match fresh.iter().position(|f| f.peer == r.peer) {
                Some(i) => fresh[i].clone(),
                None => Relay {
                    listed: false,
                    ..r.clone()
                },
            })
            .collect();
        for f in fresh {
            if !merged.iter().any(|r| r.peer == f.peer) {
                merged.push(f);
            }
        }
        let unlisted = merged.iter().filter(|r| !r.listed).count();
        let compact = unlisted > MAX_UNLISTED && unlisted > n;
        if compact {
            merged.retain(|r| r.listed);
        }
        self.update_guards(&merged);
        if let Ok(mut w) = self.relays.write() {
            *w = Arc::new(merged);
        }
        if compact {
            info!(
                dropped = unlisted,
                "directory: many relays left; relay list compacted, circuits closed"
            );
            self.close_all();
        }
        info!(relays = n, "directory loaded");
        Ok(n)
    }

    /// Circuit build times recorded so far (most recent last, bounded).
    pub fn build_times(&self) -> Vec<Duration> {
        self.build_times
            .lock()
            .map(|b| b.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The path (directory indexes, guard first) of every circuit built so far, of every
    /// kind (single, strand, clean, replacement), oldest first (bounded).
    pub fn built_paths(&self) -> Vec<Vec<usize>> {
        self.built_paths
            .lock()
            .map(|b| b.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Opens a stream to `target` on a circuit for `isolation`, reusing one when allowed. A
    /// stream of a new key (that took a clean circuit or built one) also gets the [`Refill`]
    /// that builds the next clean circuit: call `answered` on the first bytes from the exit.
    pub async fn connect(
        self: &Arc<Self>,
        target: &Target,
        isolation: &IsolationKey,
    ) -> Result<(Arc<Circuit>, OpenStream, Option<Refill>), RouterError> {
        let mut last_err = RouterError::CircuitClosed;
        for _ in 0..self.settings.build_attempts.max(1) {
            let mut fresh = false;
            let circuit = match self.reusable(target, isolation) {
                Some(c) => c,
                None => match self.build_for(target, isolation).await {
                    Ok(c) => {
                        fresh = true;
                        c
                    }
                    // A relay on the chosen path died or a handshake failed: choose again.
                    Err(e) if e.is_transient() => {
                        debug!(error = %e, "circuit build failed; retrying");
                        last_err = e;
                        continue;
                    }
                    Err(e) => return Err(e),
                },
            };
            let opened = circuit
                .open_stream(target.clone(), self.settings.stream_timeout)
                .await;
            if let Some(&guard) = circuit.path.first() {
                match &opened {
                    Ok(_) => self.report_use(guard, true),
                    Err(RouterError::CircuitClosed | RouterError::Timeout(_)) => {
                        self.report_use(guard, false)
                    }
                    Err(_) => {}
                }
            }
            match opened {
                Ok(s) => {
                    // A new key took a clean circuit or built one: get the next ready once
                    // this stream is answered (not competing with its round trip).
                    let refill = fresh.then(|| self.deferred_refill(target));
                    return Ok((circuit, s, refill));
                }
                // The circuit died under us: try a fresh one.
                Err(RouterError::CircuitClosed) => {
                    circuit.close();
                    last_err = RouterError::CircuitClosed;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err)
    }

    fn reusable(&self, target: &Target, isolation: &IsolationKey) -> Option<Arc<Circuit>> {
        let relays = self.relays.read().ok()?.clone();
        let mut circuits = self.circuits.lock().ok()?;
        circuits.retain(|e| {
            let old = e.circuit.built_at.elapsed() > self.settings.max_dirtiness;
            if e.circuit.is_closed() || (old && e.circuit.stream_count() == 0) {
                e.circuit.close();
                false
            } else {
                true
            }
        });
        circuits
            .iter()
            .find(|e| {
                e.isolation == isolation.0
                    && e.circuit.has_room()
                    && e.circuit.built_at.elapsed() <= self.settings.max_dirtiness
                    && e.circuit
                        .path
                        .last()
                        .and_then(|&i| relays.get(i))
                        .filter(|r| r.listed)
                        .is_some_and(|r| exit_allows(&r.desc, target))
            })
            .map(|e| e.circuit.clone())
    }

    async fn build_for(
        &self,
        target: &Target,
        isolation: &IsolationKey,
    ) -> Result<Arc<Circuit>, RouterError> {
        let circuit = match self.take_spare_circuit(target) {
            Some(c) => {
                self.identities.bind(&c, &isolation.0).await;
                c
            }
            None => {
                let constraints = PathConstraints {
                    hops: self.settings.hops,
                    ..PathConstraints::default()
                };
                self.build_path(target, constraints, Some(isolation))
                    .await?
            }
        };
        let mut circuits = self
            .circuits
            .lock()
            .map_err(|_| RouterError::Directory("lock poisoned".into()))?;
        if circuits.len() >= self.settings.max_circuits {
            // Make room by closing the oldest idle circuit, or refuse.
            match circuits.iter().position(|e| e.circuit.stream_count() == 0) {
                Some(i) => circuits.remove(i).circuit.close(),
                None => {
                    circuit.close();
                    return Err(RouterError::Limit("circuits"));
                }
            }
        }
        circuits.push(Entry {
            isolation: isolation.0.clone(),
            circuit: circuit.clone(),
        });
        Ok(circuit)
    }

    /// The peer ids of the relays in use, in directory order (the indexes of strand paths and
    /// stream records).
    pub fn relay_peers(&self) -> Vec<PeerId> {
        self.relays
            .read()
            .map(|r| r.iter().map(|relay| relay.peer).collect())
            .unwrap_or_default()
    }

    /// How many usable relays the directory in use lists.
    pub fn relay_count(&self) -> usize {
        self.relays
            .read()
            .map(|r| r.iter().filter(|relay| relay.listed).count())
            .unwrap_or(0)
    }

    /// The relays to build circuits over (every build goes through here), unless the
    /// directory is stale.
    fn relays(&self) -> Result<Arc<Vec<Relay>>, RouterError> {
        if let Some(why) = self.directory_stale() {
            return Err(RouterError::Directory(why));
        }
        let relays = self
            .relays
            .read()
            .map_err(|_| RouterError::Directory("lock poisoned".into()))?
            .clone();
        if !relays.iter().any(|r| r.listed) {
            return Err(RouterError::Directory("no relays known".into()));
        }
        Ok(relays)
    }

    /// The listed relays as path candidates for `target`: weight and flags from the directory;
    /// declared families count only when both relays list each other ([`Families`]). While no
    /// listed relay has the Guard flag (a young network, nothing measured yet), every relay may
    /// be a guard: a network without guards would build no circuit at all.
    fn candidates(relays: &[Relay], target: &Target) -> Result<Vec<Candidate>, RouterError> {
        let listed = || relays.iter().enumerate().filter(|(_, r)| r.listed);
        let any_guard = listed().any(|(_, r)| r.flags.is_guard());
        let families = Families::new(listed().map(|(_, r)| &r.desc));
        let index_of: HashMap<[u8; 32], usize> = if families.is_empty() {
            HashMap::new()
        } else {
            listed().map(|(i, r)| (r.desc.identity, i)).collect()
        };
        let candidates: Vec<Candidate> = listed()
            .map(|(i, r)| Candidate {
                index: i,
                ip: first_ip(&r.addrs),
                bandwidth: r.weight,
                exit_for_target: r.flags.is_exit() && exit_allows(&r.desc, target),
                guard: r.flags.is_guard() || !any_guard,
                exit: r.flags.is_exit(),
                family: families
                    .members(&r.desc.identity)
                    .iter()
                    .filter_map(|id| index_of.get(id).copied())
                    .collect(),
            })
            .collect();
        if !candidates.iter().any(|c| c.exit_for_target) {
            return Err(RouterError::NoExit(target.port()));
        }
        Ok(candidates)
    }

    /// Chooses a path under `constraints` and builds a circuit along it (not kept in any pool).
    /// Without a forced guard the first hop is the first usable primary guard that gives a
    /// path (other primaries are kept out of the middle when possible).
    /// Built on `isolation`'s client identity (`None`: a clean circuit's own).
    pub(crate) async fn build_path(
        &self,
        target: &Target,
        constraints: PathConstraints,
        isolation: Option<&IsolationKey>,
    ) -> Result<Arc<Circuit>, RouterError> {
        let relays = self.relays()?;
        let candidates = Self::candidates(&relays, target)?;
        let path = match constraints.guard {
            Some(_) => select_path(&candidates, &constraints, &mut rand::rng())?,
            None => self.guarded_path(&relays, &candidates, &constraints)?,
        };
        self.build_on(&relays, path, isolation).await
    }

    fn guarded_path(
        &self,
        relays: &[Relay],
        candidates: &[Candidate],
        constraints: &PathConstraints,
    ) -> Result<Vec<usize>, RouterError> {
        let guards = self.guard_indexes(relays);
        let mut last = None;
        for &g in &guards {
            let mut apart = PathConstraints {
                guard: Some(g),
                ..constraints.clone()
            };
            apart.exclude.extend(guards.iter().filter(|&&o| o != g));
            let with = PathConstraints {
                guard: Some(g),
                ..constraints.clone()
            };
            let mut rng = rand::rng();
            match select_path(candidates, &apart, &mut rng)
                .or_else(|_| select_path(candidates, &with, &mut rng))
            {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or(RouterError::NoGuard, RouterError::NoPath))
    }

    async fn build_on(
        &self,
        relays: &[Relay],
        path: Vec<usize>,
        isolation: Option<&IsolationKey>,
    ) -> Result<Arc<Circuit>, RouterError> {
        let specs: Vec<HopSpec> = path.iter().map(|&i| relays[i].spec.clone()).collect();
        let first = path[0];
        let guard = relays[first].peer;
        let transport = self.client_transport(isolation).await?;
        transport
            .add_addresses(guard, relays[first].addrs.clone())
            .await?;
        let built = Circuit::build(
            &transport,
            guard,
            &specs,
            path,
            self.settings.circuit.clone(),
        )
        .await;
        self.report_build(relays, first, built.as_ref().map(|_| ()));
        let circuit = match built {
            Ok(c) => {
                self.stats.circuits_built.fetch_add(1, Ordering::Relaxed);
                self.stats.build_latency.observe(c.build_time);
                c
            }
            Err(e) => {
                self.stats
                    .circuit_build_failures
                    .fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        self.identities.track(transport.peer_id(), &circuit).await;
        debug!(ms = circuit.build_time.as_secs_f64() * 1e3, "circuit built");
        if let Ok(mut b) = self.build_times.lock() {
            if b.len() >= MAX_BUILD_SAMPLES {
                b.pop_front();
            }
            b.push_back(circuit.build_time);
        }
        if let Ok(mut b) = self.built_paths.lock() {
            if b.len() >= MAX_BUILD_SAMPLES {
                b.pop_front();
            }
            b.push_back(circuit.path.clone());
        }
        Ok(circuit)
    }

    /// A strand set for `isolation` whose exit may take `target`, if one can take a stream.
    pub(crate) fn reusable_set(
        &self,
        target: &Target,
        isolation: &IsolationKey,
    ) -> Option<Arc<StrandSet>> {
        let relays = self.relays.read().ok()?.clone();
        let mut sets = self.sets.lock().ok()?;
        sets.retain(|s| {
            let old = s.built_at.elapsed() > self.settings.max_dirtiness;
            let broken = s.broken();
            if (old || broken) && s.idle() {
                s.close();
                false
            } else {
                true
            }
        });
        sets.iter()
            .find(|s| {
                s.isolation == isolation.0
                    && s.usable()
                    && s.built_at.elapsed() <= self.settings.max_dirtiness
                    && relays
                        .get(s.exit)
                        .is_some_and(|r| exit_allows(&r.desc, target))
            })
            .cloned()
    }

    /// Closes every circuit, the clean ones kept ahead included.
    pub fn close_all(&self) {
        self.drop_spares();
        if let Ok(mut c) = self.circuits.lock() {
            for e in c.drain(..) {
                e.circuit.close();
            }
        }
        if let Ok(mut s) = self.sets.lock() {
            for set in s.drain(..) {
                set.close();
            }
        }
    }
}

fn settings_identities(settings: &RouterSettings) -> usize {
    settings.max_client_identities.max(1)
}

/// Unlisted relays kept for stable indexes before the list may be compacted.
pub const MAX_UNLISTED: usize = 256;

fn relay_from(listed: &ListedRelay) -> Option<Relay> {
    let d = listed.descriptor.descriptor();
    let peer = peer_id_from_public(&d.identity).ok()?;
    let addrs: Vec<Multiaddr> = d.addresses.iter().filter_map(|a| a.parse().ok()).collect();
    if addrs.is_empty() {
        return None;
    }
    Some(Relay {
        listed: true,
        peer,
        spec: HopSpec {
            peer_id: peer.to_bytes(),
            addresses: d.addresses.iter().take(4).cloned().collect(),
            onion_key: d.onion_key,
        },
        addrs,
        desc: d.clone(),
        weight: listed.weight(),
        flags: listed.flags,
    })
}

fn exit_allows(d: &braid_directory::Descriptor, target: &Target) -> bool {
    match target {
        Target::Ip(sa) => d.exit_policy.allows(sa.ip(), sa.port()),
        Target::Domain(_, port) => d.exit_policy.may_allow_port(*port),
    }
}

fn first_ip(addrs: &[Multiaddr]) -> Option<IpAddr> {
    use libp2p_multiaddr_ip::ip_of;
    addrs.iter().find_map(ip_of)
}

mod libp2p_multiaddr_ip {
    //! The IP address inside a multiaddr, for the /16 family test.
    use std::net::IpAddr;

    use braid_transport::Multiaddr;

    pub(super) fn ip_of(a: &Multiaddr) -> Option<IpAddr> {
        let text = a.to_string();
        let mut parts = text.split('/').skip(1);
        match (parts.next(), parts.next()) {
            (Some("ip4") | Some("ip6"), Some(ip)) => ip.parse().ok(),
            _ => None,
        }
    }
}
