//! Starts a simulated network: registries on 127.0.1.x (a Raft group, if the scenario has
//! any), relays on 127.0.0.x, a proxy, and local HTTP servers; kills relays and cuts links
//! for scenario faults.
//!
//! With registries, relays publish their descriptors to them and the proxy learns the network
//! from their signed snapshot, so its directory order is the snapshot's, not the scenario's:
//! [`SimNetwork::relay_path`] maps the directory indexes in the proxy's strand paths and stream
//! records to relay indexes. Without registries the harness hands the proxy a directory in
//! relay order, and the mapping is the identity.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use braid_directory::Directory;
use braid_node::config::{
    MeasureConfig, Registry, RegistryConfig, RegistryEntry, parse_registries,
};
use braid_node::registry_node::RegistryTimings;
use braid_node::{ProxyConfig, ProxyNode, RegistryNode, RelayConfig, RelayNode};
use braid_relay::service::Faults;
use braid_transport::{Identity, PeerId};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{Scenario, SimError};

/// A running simulated network.
#[derive(Debug)]
pub struct SimNetwork {
    /// The relays, exits first. A killed relay keeps its place (see [`SimNetwork::kill`]).
    pub relays: Vec<RelayNode>,
    /// The proxy.
    pub proxy: ProxyNode,
    /// The HTTP server on IPv4 loopback.
    pub http_v4: SocketAddr,
    /// The HTTP server on IPv6 loopback, if IPv6 loopback is available.
    pub http_v6: Option<SocketAddr>,
    /// Every relay's descriptor as signed at start (what the proxy's directory lists).
    pub directory: Directory,
    /// The registry nodes (empty when the harness hands out the directory).
    pub registries: Vec<RegistryNode>,
    /// With registries: from the relays' start to the proxy's directory listing them all.
    pub directory_ready: Option<Duration>,
    /// Relay `i`'s peer id.
    peer_ids: Vec<PeerId>,
    /// Registry data directories, removed on drop.
    _registry_data: Option<tempfile::TempDir>,
    /// The proxy's data directory (its entry guards), removed on drop.
    _proxy_data: tempfile::TempDir,
    /// The proxy's settings and the registries it follows, for [`SimNetwork::restart_proxy`].
    proxy_cfg: ProxyConfig,
    registry_list: Vec<Registry>,
    servers: Vec<JoinHandle<()>>,
    /// `killed[i]`: relay `i` was stopped by a fault.
    killed: Mutex<Vec<bool>>,
}

/// Exit-side braided stream counters of all relays together (see `RelayStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ExitCounters {
    /// Braided streams ended at exits.
    pub braids: u64,
    /// Fragments exits rejected.
    pub fragments_rejected: u64,
    /// Fragments exits sent again.
    pub fragments_resent: u64,
}

impl ExitCounters {
    /// What was counted since `earlier`.
    pub fn since(self, earlier: ExitCounters) -> ExitCounters {
        ExitCounters {
            braids: self.braids.saturating_sub(earlier.braids),
            fragments_rejected: self
                .fragments_rejected
                .saturating_sub(earlier.fragments_rejected),
            fragments_resent: self
                .fragments_resent
                .saturating_sub(earlier.fragments_resent),
        }
    }
}

/// Relay `i`'s settings in scenario `s`: [`relay_config`] with the scenario's rate limit for
/// its kind (`exit_rate` for the first `exits` relays, `relay_rate` for the others), which is
/// also its advertised bandwidth.
pub fn scenario_relay_config(s: &Scenario, i: usize) -> RelayConfig {
    let exit = i < s.exits;
    let mut cfg = relay_config(i, exit);
    if let Some(rate) = if exit { s.exit_rate } else { s.relay_rate } {
        cfg.bandwidth_rate = Some(rate);
        cfg.bandwidth = rate;
    }
    cfg
}

/// The relay settings the simulator uses for relay `i`.
pub fn relay_config(i: usize, exit: bool) -> RelayConfig {
    let ip = format!("127.0.0.{}", 10 + i);
    RelayConfig {
        nickname: format!("sim{i}"),
        data_dir: std::env::temp_dir(),
        listen: vec![
            format!("/ip4/{ip}/udp/0/quic-v1"),
            format!("/ip4/{ip}/tcp/0"),
        ],
        exit_policy: if exit {
            vec!["accept *:*".into()]
        } else {
            vec!["reject *:*".into()]
        },
        bandwidth: 10_000_000,
        ..RelayConfig::default()
    }
}

impl SimNetwork {
    /// Starts the scenario's network with no faults.
    pub async fn start(s: &Scenario) -> Result<Self, SimError> {
        Self::start_with(s, |_| Faults::default()).await
    }

    /// Starts the scenario's network; `faults(i)` sets relay `i`'s injected faults.
    pub async fn start_with(
        s: &Scenario,
        faults: impl Fn(usize) -> Faults,
    ) -> Result<Self, SimError> {
        Self::start_configured(s, |i, _| faults(i)).await
    }

    /// Starts the scenario's network; `setup(i, config)` may change relay `i`'s settings and
    /// returns its injected faults.
    pub async fn start_configured(
        s: &Scenario,
        setup: impl Fn(usize, &mut RelayConfig) -> Faults,
    ) -> Result<Self, SimError> {
        Self::start_full(s, setup, |_| {}).await
    }

    /// As [`SimNetwork::start_configured`], and `proxy` may change the proxy's settings (its
    /// `data_dir` is a fresh temporary directory unless `proxy` sets one).
    pub async fn start_full(
        s: &Scenario,
        setup: impl Fn(usize, &mut RelayConfig) -> Faults,
        proxy: impl FnOnce(&mut ProxyConfig),
    ) -> Result<Self, SimError> {
        s.validate().map_err(|message| SimError::Scenario {
            path: s.name.clone(),
            message,
        })?;
        let (registries, list, registry_data) = start_registries(s.registries).await?;
        let started = Instant::now();
        let mut relays = Vec::with_capacity(s.relays);
        for i in 0..s.relays {
            let mut cfg = scenario_relay_config(s, i);
            let faults = setup(i, &mut cfg);
            let onion = Identity::generate().secret_bytes();
            let relay = RelayNode::start(&cfg, Identity::generate(), onion, faults).await?;
            if !list.is_empty() {
                relay
                    .join_registries(&list, SIM_REPUBLISH, SIM_REFRESH)
                    .await?;
            }
            relays.push(relay);
        }
        let directory = Directory::new(relays.iter().map(|r| r.descriptor().clone()).collect())
            .map_err(|e| SimError::NotReady(e.to_string()))?;
        let proxy_data = tempfile::tempdir().map_err(|source| SimError::Io {
            context: "proxy data directory".into(),
            source,
        })?;
        let mut proxy_cfg = ProxyConfig {
            socks_listen: "127.0.0.1:0"
                .parse()
                .map_err(|_| SimError::NotReady("addr".into()))?,
            hops: s.hops,
            strands: s.strands,
            client_identity_per_key: s.client_identity_per_key,
            data_dir: proxy_data.path().to_path_buf(),
            ..ProxyConfig::default()
        };
        proxy(&mut proxy_cfg);
        let (proxy, directory_ready) = if list.is_empty() {
            (ProxyNode::start(&proxy_cfg, &directory).await?, None)
        } else {
            let proxy =
                ProxyNode::start_with_registries(&proxy_cfg, &list, SIM_REFRESH, LISTED_TIMEOUT)
                    .await?;
            let deadline = started + LISTED_TIMEOUT;
            while proxy.manager().relay_count() < s.relays {
                if Instant::now() >= deadline {
                    return Err(SimError::NotReady(format!(
                        "the registries' directory lists {} of {} relays after {LISTED_TIMEOUT:?}",
                        proxy.manager().relay_count(),
                        s.relays
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (proxy, Some(started.elapsed()))
        };
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| SimError::Io {
                    context: format!("binding HTTP server {addr}"),
                    source,
                })
        };
        let l4 = bind(
            "127.0.0.1:0"
                .parse()
                .map_err(|_| SimError::NotReady("addr".into()))?,
        )
        .await?;
        let http_v4 = l4.local_addr().map_err(|source| SimError::Io {
            context: "HTTP address".into(),
            source,
        })?;
        let mut servers = vec![tokio::spawn(crate::http::serve(l4))];
        let http_v6 = match TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, 0))).await {
            Ok(l6) => {
                let a = l6.local_addr().ok();
                servers.push(tokio::spawn(crate::http::serve(l6)));
                a
            }
            Err(_) => None,
        };
        let killed = Mutex::new(vec![false; relays.len()]);
        let peer_ids = relays.iter().map(|r| r.transport().peer_id()).collect();
        Ok(SimNetwork {
            killed,
            relays,
            proxy,
            http_v4,
            http_v6,
            directory,
            registries,
            directory_ready,
            peer_ids,
            _registry_data: registry_data,
            _proxy_data: proxy_data,
            proxy_cfg,
            registry_list: list,
            servers,
        })
    }

    /// Stops the proxy and starts a new one with the same settings and data directory (so
    /// the same entry guards), over the same directory or registries; returns once it lists
    /// every relay.
    pub async fn restart_proxy(&mut self) -> Result<(), SimError> {
        self.restart_proxy_after(|_| {}).await
    }

    /// As [`SimNetwork::restart_proxy`], calling `between` with the proxy's settings after the
    /// old proxy stopped (and saved its guards) and before the new one starts.
    pub async fn restart_proxy_after(
        &mut self,
        between: impl FnOnce(&ProxyConfig),
    ) -> Result<(), SimError> {
        self.proxy.shutdown().await;
        between(&self.proxy_cfg);
        let relays = self.relays.len();
        self.proxy = if self.registry_list.is_empty() {
            ProxyNode::start(&self.proxy_cfg, &self.directory).await?
        } else {
            let proxy = ProxyNode::start_with_registries(
                &self.proxy_cfg,
                &self.registry_list,
                SIM_REFRESH,
                LISTED_TIMEOUT,
            )
            .await?;
            let deadline = Instant::now() + LISTED_TIMEOUT;
            while proxy.manager().relay_count() < relays && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            proxy
        };
        Ok(())
    }

    /// The proxy's settings (its `data_dir` holds the entry guard file).
    pub fn proxy_config(&self) -> &ProxyConfig {
        &self.proxy_cfg
    }

    /// Relay `i`'s peer id.
    pub fn peer_id(&self, i: usize) -> Option<PeerId> {
        self.peer_ids.get(i).copied()
    }

    /// A path of the proxy's directory indexes (a strand path, a stream record's path) as
    /// relay indexes; `None` if an index is not a relay of this network.
    pub fn relay_path(&self, path: &[usize]) -> Option<Vec<usize>> {
        let order = self.proxy.manager().relay_peers();
        path.iter()
            .map(|&i| {
                let peer = order.get(i)?;
                self.peer_ids.iter().position(|p| p == peer)
            })
            .collect()
    }

    /// The proxy's strand circuits that carry a stream now, with their paths in relay indexes
    /// and the cells each has received so far.
    pub fn strand_activity(&self) -> Vec<braid_router::StrandActivity> {
        self.proxy
            .manager()
            .strand_activity()
            .into_iter()
            .filter_map(|mut a| {
                a.path = self.relay_path(&a.path)?;
                Some(a)
            })
            .collect()
    }

    /// The proxy's SOCKS5 address.
    pub fn socks_addr(&self) -> SocketAddr {
        self.proxy.socks_addr()
    }

    /// Total cells that failed authentication at any relay.
    pub fn integrity_failures(&self) -> u64 {
        self.relays
            .iter()
            .map(|r| r.stats().integrity_failures.load(Ordering::Relaxed))
            .sum()
    }

    /// Relay cells each relay has processed so far, by relay index.
    pub fn relay_cells(&self) -> Vec<u64> {
        self.relays
            .iter()
            .map(|r| r.stats().cells.load(Ordering::Relaxed))
            .collect()
    }

    /// The exits' braided stream counters, summed over every relay.
    pub fn exit_counters(&self) -> ExitCounters {
        let mut c = ExitCounters::default();
        for r in &self.relays {
            let s = r.stats();
            c.braids += s.braids.load(Ordering::Relaxed);
            c.fragments_rejected += s.fragments_rejected.load(Ordering::Relaxed);
            c.fragments_resent += s.fragments_resent.load(Ordering::Relaxed);
        }
        c
    }

    /// Stops relay `i` as a fault: its transport shuts down, so every circuit through it dies
    /// and its neighbours see their connections to it close. It keeps its index; the
    /// proxy's directory still lists it (like a client with a stale directory), so builds
    /// through it fail and are retried elsewhere.
    pub async fn kill(&self, i: usize) -> Result<(), SimError> {
        let relay = self.relays.get(i).ok_or_else(|| {
            SimError::Fault(format!(
                "no relay {i} (relays are 0..{})",
                self.relays.len()
            ))
        })?;
        {
            let mut killed = self
                .killed
                .lock()
                .map_err(|_| SimError::Fault("lock poisoned".into()))?;
            if killed[i] {
                return Err(SimError::Fault(format!("relay {i} is already dead")));
            }
            killed[i] = true;
        }
        relay.shutdown().await;
        Ok(())
    }

    /// Cuts the link between relays `a` and `b` as a fault: each blocks the other, so their
    /// connection closes, every circuit over it dies, and they cannot connect again; both keep
    /// serving everyone else.
    pub async fn cut(&self, a: usize, b: usize) -> Result<(), SimError> {
        let relay = |i: usize| {
            self.relays.get(i).ok_or_else(|| {
                SimError::Fault(format!(
                    "no relay {i} (relays are 0..{})",
                    self.relays.len()
                ))
            })
        };
        let (ra, rb) = (relay(a)?, relay(b)?);
        if self.is_killed(a) || self.is_killed(b) {
            return Err(SimError::Fault(format!("link {a}-{b}: a relay is dead")));
        }
        let fail = |e: braid_transport::Error| SimError::Fault(format!("cutting {a}-{b}: {e}"));
        ra.transport()
            .block(rb.transport().peer_id())
            .await
            .map_err(fail)?;
        rb.transport()
            .block(ra.transport().peer_id())
            .await
            .map_err(fail)?;
        Ok(())
    }

    /// Whether relay `i` was killed.
    pub fn is_killed(&self, i: usize) -> bool {
        self.killed
            .lock()
            .map(|k| k.get(i).copied().unwrap_or(false))
            .unwrap_or(false)
    }

    /// Stops everything.
    pub async fn shutdown(self) {
        for s in &self.servers {
            s.abort();
        }
        self.proxy.shutdown().await;
        for (i, r) in self.relays.iter().enumerate() {
            if !self.is_killed(i) {
                r.shutdown().await;
            }
        }
        for r in &self.registries {
            r.shutdown().await;
        }
    }
}

/// How often simulated relays republish (their descriptors last a day).
const SIM_REPUBLISH: Duration = Duration::from_secs(600);
/// How often simulated relays and the proxy refresh the directory.
const SIM_REFRESH: Duration = Duration::from_secs(1);
/// How long the registries' directory may take to list every relay.
const LISTED_TIMEOUT: Duration = Duration::from_secs(60);
/// Relays the simulated registries list per /24 and /48: all of the simulator's relays share
/// 127.0.0.0/24, so the cap is set far above any scenario's relay count.
const SIM_MAX_PER_SUBNET: usize = 10_000;

/// Starts `n` registries on 127.0.1.(1 + i), each on a free QUIC port, as one Raft group that
/// builds a snapshot every second. Returns them, their list for the relays and the proxy, and
/// the directory holding their data.
/// Bytes of one bandwidth measurement in the simulator (256 KiB each way).
const SIM_MEASURE_BYTES: u64 = 256 * 1024;

async fn start_registries(
    n: usize,
) -> Result<(Vec<RegistryNode>, Vec<Registry>, Option<tempfile::TempDir>), SimError> {
    if n == 0 {
        return Ok((Vec::new(), Vec::new(), None));
    }
    let data = tempfile::tempdir().map_err(|source| SimError::Io {
        context: "creating the registries' data directory".into(),
        source,
    })?;
    let mut entries = Vec::new();
    let mut identities = Vec::new();
    for i in 0..n {
        let ip = Ipv4Addr::new(127, 0, 1, 1 + i as u8);
        let port = UdpSocket::bind((ip, 0))
            .and_then(|s| s.local_addr())
            .map_err(|source| SimError::Io {
                context: format!("finding a free port on {ip}"),
                source,
            })?
            .port();
        let identity = Identity::generate();
        entries.push(RegistryEntry {
            peer: identity.peer_id().to_string(),
            address: format!("/ip4/{ip}/udp/{port}/quic-v1"),
        });
        identities.push(identity);
    }
    let list = parse_registries(std::path::Path::new("<sim>"), "registries", &entries)?;
    let mut nodes = Vec::with_capacity(n);
    for (i, identity) in identities.into_iter().enumerate() {
        let cfg = RegistryConfig {
            data_dir: data.path().join(format!("registry{i}")),
            listen: vec![entries[i].address.clone()],
            registries: entries.clone(),
            snapshot_interval_secs: 1,
            snapshot_validity_secs: 600,
            // Registries measure every relay soon after it is listed (the Guard flag needs a
            // measurement), with small transfers: they share the relays' rate limits and
            // budgets with the workloads being measured.
            measure: MeasureConfig {
                bytes: SIM_MEASURE_BYTES,
                ..MeasureConfig::default()
            },
            // Every simulated relay is on 127.0.0.x (one /24) and fresh: no subnet cap to
            // speak of, Guard without uptime and for any measured bandwidth.
            max_relays_per_ipv4_24: SIM_MAX_PER_SUBNET,
            max_relays_per_ipv6_48: SIM_MAX_PER_SUBNET,
            guard_min_uptime_secs: 0,
            guard_min_bandwidth: 1,
            // Everything runs on loopback.
            allow_private_addresses: true,
            ..RegistryConfig::default()
        };
        let timings = RegistryTimings::from_config(&cfg);
        nodes.push(RegistryNode::start(&cfg, identity, timings).await?);
    }
    // Registries run long before relays come and go: wait for a leader and a first signed
    // (empty) snapshot before any relay publishes.
    let deadline = Instant::now() + LISTED_TIMEOUT;
    while !(nodes.iter().filter(|r| r.is_leader()).count() == 1
        && nodes.iter().all(|r| r.snapshot().is_some()))
    {
        if Instant::now() >= deadline {
            return Err(SimError::NotReady(format!(
                "the registries elected no leader or signed no snapshot within {LISTED_TIMEOUT:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((nodes, list, Some(data)))
}
