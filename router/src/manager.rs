//! The circuit manager: picks paths from the directory, builds circuits, reuses them per
//! isolation key, and opens streams on them.
//!
//! Isolation: streams whose SOCKS credentials differ never share a circuit (like Tor's
//! IsolateSOCKSAuth). A circuit takes new streams until it is `max_dirtiness` old, then is
//! closed once idle. The number of circuits is bounded.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use braid_registry::{Directory, SignedDescriptor};
use braid_relay::Target;
use braid_relay::handshake::HopSpec;
use braid_transport::{Multiaddr, PeerId, Transport, peer_id_from_public};
use tracing::{debug, info};

use crate::circuit::{Circuit, CircuitSettings, OpenStream};
use crate::error::RouterError;
use crate::path::{Candidate, PathConstraints, select_path};
use crate::socks5::IsolationKey;

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
            },
            stream_timeout: Duration::from_secs(20),
            max_circuits: 64,
            max_dirtiness: Duration::from_secs(600),
            build_attempts: 3,
        }
    }
}

/// One usable relay from the directory.
#[derive(Debug, Clone)]
struct Relay {
    peer: PeerId,
    addrs: Vec<Multiaddr>,
    spec: HopSpec,
    desc: braid_registry::Descriptor,
}

struct Entry {
    isolation: Vec<u8>,
    circuit: Arc<Circuit>,
}

/// Builds and hands out circuits.
pub struct CircuitManager {
    transport: Transport,
    settings: RouterSettings,
    relays: RwLock<Arc<Vec<Relay>>>,
    circuits: Mutex<Vec<Entry>>,
    build_times: Mutex<VecDeque<Duration>>,
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
    pub fn new(transport: Transport, settings: RouterSettings) -> Self {
        CircuitManager {
            transport,
            settings,
            relays: RwLock::new(Arc::new(Vec::new())),
            circuits: Mutex::new(Vec::new()),
            build_times: Mutex::new(VecDeque::new()),
        }
    }

    /// Replaces the relay set with the fresh descriptors of `directory`; returns how many are
    /// usable. Invalid or expired entries are skipped.
    pub async fn set_directory(&self, directory: &Directory) -> Result<usize, RouterError> {
        let now = now_unix();
        let mut relays = Vec::new();
        for sd in directory.fresh(now) {
            if let Some(r) = relay_from(sd) {
                self.transport
                    .add_addresses(r.peer, r.addrs.clone())
                    .await?;
                relays.push(r);
            }
        }
        let n = relays.len();
        if let Ok(mut w) = self.relays.write() {
            *w = Arc::new(relays);
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

    /// Opens a stream to `target` on a circuit for `isolation`, reusing one when allowed.
    pub async fn connect(
        &self,
        target: &Target,
        isolation: &IsolationKey,
    ) -> Result<(Arc<Circuit>, OpenStream), RouterError> {
        let mut last_err = RouterError::CircuitClosed;
        for _ in 0..self.settings.build_attempts.max(1) {
            let circuit = match self.reusable(target, isolation) {
                Some(c) => c,
                None => self.build_for(target, isolation).await?,
            };
            match circuit
                .open_stream(target.clone(), self.settings.stream_timeout)
                .await
            {
                Ok(s) => return Ok((circuit, s)),
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
                        .is_some_and(|r| exit_allows(&r.desc, target))
            })
            .map(|e| e.circuit.clone())
    }

    async fn build_for(
        &self,
        target: &Target,
        isolation: &IsolationKey,
    ) -> Result<Arc<Circuit>, RouterError> {
        let relays = self
            .relays
            .read()
            .map_err(|_| RouterError::Directory("lock poisoned".into()))?
            .clone();
        if relays.is_empty() {
            return Err(RouterError::Directory("no relays known".into()));
        }
        let candidates: Vec<Candidate> = relays
            .iter()
            .enumerate()
            .map(|(i, r)| Candidate {
                index: i,
                ip: first_ip(&r.addrs),
                bandwidth: r.desc.bandwidth,
                exit_for_target: exit_allows(&r.desc, target),
            })
            .collect();
        if !candidates.iter().any(|c| c.exit_for_target) {
            return Err(RouterError::NoExit(target.port()));
        }
        let constraints = PathConstraints {
            hops: self.settings.hops,
            ..PathConstraints::default()
        };
        let path = select_path(&candidates, &constraints, &mut rand::rng())?;
        let specs: Vec<HopSpec> = path.iter().map(|&i| relays[i].spec.clone()).collect();
        let guard = relays[path[0]].peer;
        let circuit = Circuit::build(
            &self.transport,
            guard,
            &specs,
            path,
            self.settings.circuit.clone(),
        )
        .await?;
        debug!(ms = circuit.build_time.as_secs_f64() * 1e3, "circuit built");
        if let Ok(mut b) = self.build_times.lock() {
            if b.len() >= MAX_BUILD_SAMPLES {
                b.pop_front();
            }
            b.push_back(circuit.build_time);
        }
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

    /// Closes every circuit.
    pub fn close_all(&self) {
        if let Ok(mut c) = self.circuits.lock() {
            for e in c.drain(..) {
                e.circuit.close();
            }
        }
    }
}

fn relay_from(sd: &SignedDescriptor) -> Option<Relay> {
    let d = sd.descriptor();
    let peer = peer_id_from_public(&d.identity).ok()?;
    let addrs: Vec<Multiaddr> = d.addresses.iter().filter_map(|a| a.parse().ok()).collect();
    if addrs.is_empty() {
        return None;
    }
    Some(Relay {
        peer,
        spec: HopSpec {
            peer_id: peer.to_bytes(),
            addresses: d.addresses.iter().take(4).cloned().collect(),
            onion_key: d.onion_key,
        },
        addrs,
        desc: d.clone(),
    })
}

fn exit_allows(d: &braid_registry::Descriptor, target: &Target) -> bool {
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
