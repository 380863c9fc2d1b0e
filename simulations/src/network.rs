//! Starts a simulated network: relays on 127.0.0.x, a proxy, and local HTTP servers; kills
//! relays for scenario faults.
//!
//! Relay `i` of the scenario is entry `i` of the directory the proxy gets, so the directory
//! indexes in the proxy's strand paths and stream records are relay indexes here.

use std::net::{Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use braid_node::{ProxyConfig, ProxyNode, RelayConfig, RelayNode};
use braid_registry::Directory;
use braid_relay::service::Faults;
use braid_transport::Identity;
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
    /// The directory the proxy was given.
    pub directory: Directory,
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
        s.validate().map_err(|message| SimError::Scenario {
            path: s.name.clone(),
            message,
        })?;
        let mut relays = Vec::with_capacity(s.relays);
        for i in 0..s.relays {
            let mut cfg = relay_config(i, i < s.exits);
            let faults = setup(i, &mut cfg);
            let onion = Identity::generate().secret_bytes();
            relays.push(RelayNode::start(&cfg, Identity::generate(), onion, faults).await?);
        }
        let directory = Directory::new(relays.iter().map(|r| r.descriptor().clone()).collect())
            .map_err(|e| SimError::NotReady(e.to_string()))?;
        let proxy_cfg = ProxyConfig {
            socks_listen: "127.0.0.1:0"
                .parse()
                .map_err(|_| SimError::NotReady("addr".into()))?,
            hops: s.hops,
            strands: s.strands,
            ..ProxyConfig::default()
        };
        let proxy = ProxyNode::start(&proxy_cfg, &directory).await?;
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
        Ok(SimNetwork {
            killed,
            relays,
            proxy,
            http_v4,
            http_v6,
            directory,
            servers,
        })
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
    }
}
