//! The relay service: accepts circuit-hop streams on the transport and runs each circuit.
//!
//! This is the thin I/O driver around the sans-IO core: one task per circuit, one libp2p stream
//! per circuit hop, QUIC flow control as hop-by-hop backpressure. It enforces the limits on
//! circuits (total and per peer) and streams per circuit, paces relayed cells to the configured
//! bandwidth, hibernates when the accounting budget is spent, and can inject faults for
//! simulations.
//!
//! Buffered bytes per circuit are bounded: a middle hop holds two streams, each with a 64 KiB
//! read and a 64 KiB write buffer ([`IO_BUFFER`](crate::shared::io::IO_BUFFER)); an exit holds one such stream, its
//! `circuit_queue` messages towards the client and `stream_queue` messages per exit stream.

mod exit;
mod exit_braid;
mod hop;
mod limit;
mod measure;

pub use measure::MEASURE_CIRCUIT_LIFETIME;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use braid_directory::ExitPolicy;
use braid_transport::{PeerId, Transport};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::cell::DestroyReason;
use crate::error::RelayError;
use crate::ratelimit::{AccountingLimit, BandwidthLimit};
use crate::shared::{CIRCUIT_PROTOCOL, io};
use crate::stats::{LatencyHistogram, RefusalReason};
pub use limit::AccountingState;

/// Limits a relay enforces. Every field is a real bound; none means "unlimited".
#[derive(Debug, Clone)]
pub struct RelayLimits {
    /// Circuits open at once through this relay.
    pub max_circuits: usize,
    /// Circuits open at once from one previous-hop peer.
    pub max_circuits_per_peer: usize,
    /// Streams open at once on one exit circuit.
    pub max_streams_per_circuit: usize,
    /// Time allowed for the first cell and for extending to the next hop.
    pub handshake_timeout: Duration,
    /// Time allowed for an exit's TCP connect (and name resolution).
    pub connect_timeout: Duration,
    /// Messages queued towards one stream's socket at the exit.
    pub stream_queue: usize,
    /// Messages queued towards the client on one exit circuit.
    pub circuit_queue: usize,
    /// Braided streams open at once at this exit.
    pub max_braids: usize,
    /// Measurement circuits (PROTOCOL.md §6.2) open at once through this relay; more are
    /// refused with `Destroy(ResourceLimit)`.
    pub max_measure_circuits: usize,
}

impl Default for RelayLimits {
    fn default() -> Self {
        RelayLimits {
            max_circuits: 4096,
            max_circuits_per_peer: 256,
            max_streams_per_circuit: 128,
            handshake_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            stream_queue: 16,
            circuit_queue: 64,
            max_braids: 1024,
            max_measure_circuits: 4,
        }
    }
}

/// Faults a simulated relay injects into forwarded cells (never set by configuration files).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Flip one bit of the n-th (1-based) forward relay cell after peeling it.
    pub flip_bit_at_cell: Option<u64>,
    /// Send the n-th (1-based) forward relay cell twice.
    pub replay_at_cell: Option<u64>,
    /// How many more circuits get the faults; each affected circuit takes one.
    pub remaining: Arc<AtomicU64>,
    /// At an exit: corrupt every n-th (`.1`) data fragment this relay sends on strand `.0`
    /// (0 is a braided stream's first strand) before onion encryption, so the client's
    /// splitter must reject and recover it. Applies to every braided stream.
    pub corrupt_strand: Option<(u32, u32)>,
    /// While set: take every circuit's `Create` and never answer it, holding the stream open
    /// until the client gives up (a relay that accepts circuits and stalls them).
    pub stall: Arc<std::sync::atomic::AtomicBool>,
}

/// What the relay service needs.
#[derive(Debug, Clone)]
pub struct RelayServiceConfig {
    /// This relay's X25519 onion secret key.
    pub onion_secret: [u8; 32],
    /// Which exit connections are allowed (default: none; the relay is not an exit).
    pub exit_policy: ExitPolicy,
    /// Bounds.
    pub limits: RelayLimits,
    /// Fault injection for simulations.
    pub faults: Faults,
    /// Rate and burst for all relayed cells together; `None`: not rate limited.
    pub bandwidth: Option<BandwidthLimit>,
    /// Relayed bytes allowed per day or month before hibernating; `None`: no budget.
    pub accounting: Option<AccountingLimit>,
}

/// Counters a relay keeps (read by metrics and the simulator).
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Circuits open now.
    pub circuits_open: AtomicU64,
    /// Circuits accepted since start.
    pub circuits_total: AtomicU64,
    /// Cells that failed authentication.
    pub integrity_failures: AtomicU64,
    /// Relay cells received and accepted (the `in` direction: authenticated at this hop).
    pub cells: AtomicU64,
    /// Relay cells sent on (towards the next hop or back towards the client).
    pub cells_out: AtomicU64,
    /// Circuits refused by a limit.
    pub refused: AtomicU64,
    /// Circuits refused, per [`RefusalReason`] (indexed by [`RefusalReason::index`]).
    pub refused_by: [AtomicU64; RefusalReason::ALL.len()],
    /// Time from a `Create` cell read to the `Created` answer sent (an extend included).
    pub handshake_latency: LatencyHistogram,
    /// Braided streams finished or failed at this exit.
    pub braids: AtomicU64,
    /// Fragments this exit rejected (forged, altered, replayed, duplicated).
    pub fragments_rejected: AtomicU64,
    /// Fragments this exit sent again (after a timeout or a lost strand).
    pub fragments_resent: AtomicU64,
}

impl RelayStats {
    pub(crate) fn inc_integrity(&self) {
        self.integrity_failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn inc_cells(&self) {
        self.cells.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn inc_cells_out(&self) {
        self.cells_out.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn refuse(&self, reason: RefusalReason) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.refused_by.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Circuits refused for `reason` since start.
    pub fn refused_for(&self, reason: RefusalReason) -> u64 {
        self.refused_by
            .get(reason.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// How a circuit ended, as seen by this relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The previous hop sent Destroy.
    DestroyedFromUp(DestroyReason),
    /// The next hop sent Destroy.
    DestroyedFromDown(DestroyReason),
    /// A forward cell failed authentication.
    Integrity,
    /// A peer broke the protocol.
    Protocol,
    /// A stream closed without Destroy.
    Closed,
}

/// Reads the next cell to relay; a `Destroy`, an unexpected cell or the end of the stream
/// becomes the circuit's outcome instead. `from_upstream` says which side `r` faces.
pub(crate) async fn next_relay_cell<R: tokio::io::AsyncRead + Unpin>(
    r: &mut io::CellReader<R>,
    from_upstream: bool,
) -> Result<crate::cell::Cell, Outcome> {
    let cell = match r.read().await {
        Ok(Some(c)) => c,
        Ok(None) | Err(_) => return Err(Outcome::Closed),
    };
    match cell.kind {
        crate::cell::CellKind::Relay => Ok(cell),
        crate::cell::CellKind::Destroy if from_upstream => {
            Err(Outcome::DestroyedFromUp(cell.destroy_reason()))
        }
        crate::cell::CellKind::Destroy => Err(Outcome::DestroyedFromDown(cell.destroy_reason())),
        _ => Err(Outcome::Protocol),
    }
}

/// A running relay service.
pub struct RelayService {
    stats: Arc<RelayStats>,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// Reads a relay's accounting budget on demand (cheap to clone; keeps the service's shared
/// state alive, not its task).
#[derive(Clone)]
pub struct AccountingProbe(Arc<Shared>);

impl AccountingProbe {
    /// The accounting budget now (`None`: no budget configured).
    pub fn state(&self) -> Option<AccountingState> {
        self.0.limiter.accounting_state()
    }
}

impl std::fmt::Debug for AccountingProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountingProbe").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RelayService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayService")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    transport: Transport,
    config: RelayServiceConfig,
    stats: Arc<RelayStats>,
    circuits: Arc<Semaphore>,
    measures: Arc<Semaphore>,
    per_peer: Mutex<HashMap<PeerId, usize>>,
    exit: Arc<exit::ExitContext>,
    limiter: Arc<limit::Limiter>,
}

impl RelayService {
    /// Starts accepting circuits on `transport`.
    pub fn start(transport: Transport, config: RelayServiceConfig) -> Result<Self, RelayError> {
        let mut incoming = transport.accept(CIRCUIT_PROTOCOL)?;
        let resolver = if config.exit_policy.is_exit() {
            match hickory_resolver::TokioResolver::builder_tokio().and_then(|b| b.build()) {
                Ok(r) => Some(r),
                Err(e) => {
                    warn!(error = %e, "no DNS resolver: hostname targets will fail");
                    None
                }
            }
        } else {
            None
        };
        let limits = &config.limits;
        let stats = Arc::new(RelayStats::default());
        let exit = Arc::new(exit::ExitContext {
            stats: stats.clone(),
            policy: std::sync::RwLock::new(config.exit_policy.clone()),
            resolver,
            connect_timeout: limits.connect_timeout,
            max_streams: limits.max_streams_per_circuit,
            stream_queue: limits.stream_queue,
            circuit_queue: limits.circuit_queue,
            braids: exit_braid::BraidTable::new(limits.max_braids),
            braid: crate::braid::BraidSettings {
                corrupt: config
                    .faults
                    .corrupt_strand
                    .map(|(s, n)| (braid_splitter::StrandId(s), n)),
                ..crate::braid::BraidSettings::default()
            },
        });
        let limiter = Arc::new(limit::Limiter::new(config.bandwidth, config.accounting));
        let shared = Arc::new(Shared {
            transport,
            circuits: Arc::new(Semaphore::new(limits.max_circuits)),
            measures: Arc::new(Semaphore::new(limits.max_measure_circuits)),
            per_peer: Mutex::new(HashMap::new()),
            stats: stats.clone(),
            limiter,
            config,
            exit,
        });
        let held = shared.clone();
        let task = tokio::spawn(async move {
            while let Some((peer, stream)) = incoming.next().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    hop::handle(shared, peer, stream).await;
                });
            }
            debug!("circuit listener ended");
        });
        Ok(RelayService {
            stats,
            shared: held,
            task,
        })
    }

    /// The relay's counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        self.stats.clone()
    }

    /// Changes the rate limit while circuits run (`None`: no limit); open circuits continue
    /// at the new rate.
    pub fn set_bandwidth(&self, bandwidth: Option<BandwidthLimit>) {
        self.shared.limiter.set_bandwidth(bandwidth);
    }

    /// Changes the accounting budget while circuits run (`None`: no budget); the bytes
    /// counted in this period are kept while the period length is unchanged.
    pub fn set_accounting(&self, accounting: Option<AccountingLimit>) {
        self.shared.limiter.set_accounting(accounting);
    }

    /// Resumes the accounting count persisted before a restart: `used` bytes in the period
    /// that began at `period_start` (ignored if that is not the current period).
    pub fn resume_accounting(&self, period_start: u64, used: u64) {
        self.shared.limiter.resume_accounting(period_start, used);
    }

    /// Replaces the exit policy while circuits run: streams opened from now on are checked
    /// against `policy`. `Err` (and no change) when it would turn the relay into an exit or
    /// back, which needs a restart (the exit's resolver and circuit handling start with it).
    pub fn set_exit_policy(&self, policy: ExitPolicy) -> Result<(), String> {
        let mut current = self
            .shared
            .exit
            .policy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if current.is_exit() != policy.is_exit() {
            return Err(if policy.is_exit() {
                "would make this relay an exit: needs a restart".into()
            } else {
                "would stop this exit from exiting: needs a restart".into()
            });
        }
        *current = policy;
        Ok(())
    }

    /// A function giving the accounting state at any time, for a task that persists it.
    pub fn accounting_source(&self) -> impl Fn() -> Option<AccountingState> + Send + 'static {
        let shared = self.shared.clone();
        move || shared.limiter.accounting_state()
    }

    /// The accounting budget now (`None`: no budget configured).
    pub fn accounting(&self) -> Option<AccountingState> {
        self.shared.limiter.accounting_state()
    }

    /// A handle that reads the accounting budget later (for a metrics collector).
    pub fn accounting_probe(&self) -> AccountingProbe {
        AccountingProbe(self.shared.clone())
    }

    /// Stops accepting circuits. Open circuits end when the transport shuts down.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Releases a per-peer circuit slot when dropped.
pub(crate) struct PeerSlot {
    shared: Arc<Shared>,
    peer: PeerId,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        if let Ok(mut map) = self.shared.per_peer.lock()
            && let Some(n) = map.get_mut(&self.peer)
        {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.peer);
            }
        }
        self.shared
            .stats
            .circuits_open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Shared {
    /// Takes a per-peer slot, or `None` if the peer is at its limit.
    pub(crate) fn peer_slot(self: &Arc<Self>, peer: PeerId) -> Option<PeerSlot> {
        let mut map = self.per_peer.lock().ok()?;
        let n = map.entry(peer).or_insert(0);
        if *n >= self.config.limits.max_circuits_per_peer {
            return None;
        }
        *n += 1;
        self.stats.circuits_open.fetch_add(1, Ordering::Relaxed);
        self.stats.circuits_total.fetch_add(1, Ordering::Relaxed);
        Some(PeerSlot {
            shared: self.clone(),
            peer,
        })
    }
}
