//! A running SOCKS5 proxy: client-only transport + circuit manager + SOCKS server, and where
//! its directory comes from: a directory file, or the registries' signed snapshot (fetched,
//! verified against the configured registry keys and refreshed by a `DirectoryFeed`). A
//! snapshot past its `valid_until` plus `stale_directory_grace_secs` stops new circuits until a
//! fresh one arrives (`freshness`).
//!
//! Start-up: the SOCKS port is bound first (a port in use fails at once), streams are served
//! from then on (each fails with a SOCKS error reply until circuits can be built), and
//! [`ProxyNode::wait_ready`] says every few seconds what the proxy still waits for
//! ("directory: 2 of 3 registries reached, no verified snapshot yet") until the verified
//! directory in use lists at least `hops` relays.

mod freshness;
mod status;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use braid_directory::Directory;
use braid_registry::service::{DirectoryFeed, FeedSettings, SnapshotReceiver};
use braid_router::CircuitManager;
use braid_transport::{Identity, Transport, TransportConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use freshness::{Change, StaleWatch};

use crate::config::{ProxyConfig, Registry, parse_registries};
use crate::error::NodeError;
use crate::registry_node::service_registries;

/// How long [`ProxyNode::start_with_registries`] callers usually wait for the first usable
/// directory (the proxy serves anyway after it; every stream fails until one arrives).
pub const FIRST_DIRECTORY_WAIT: Duration = Duration::from_secs(30);

/// How often a proxy that cannot build circuits yet says what it waits for.
pub const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Longest time between two checks of whether the directory snapshot went stale.
pub const STALE_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// Relays of the snapshot in use a proxy adds to each directory refresh's candidates.
pub const PROXY_RELAY_SOURCES: usize = 4;

/// A running proxy.
#[derive(Debug)]
pub struct ProxyNode {
    transport: Transport,
    manager: Arc<CircuitManager>,
    socks_addr: SocketAddr,
    task: JoinHandle<()>,
    /// The registries' directory and the task applying each new one, if configured.
    feed: Option<(FeedHandle, JoinHandle<()>)>,
    /// The HTTP CONNECT port's address and accept task, if `http_listen` is set.
    http: Option<(SocketAddr, JoinHandle<()>)>,
    /// The local HTTP API, once started (`start_api`).
    api: std::sync::Mutex<Option<crate::api::ApiServer>>,
    /// The registries' peer ids (empty with a directory file), for progress lines.
    registries: Vec<braid_transport::PeerId>,
    /// The directory applied to the circuit manager: `(issued_at, usable relays)`.
    applied: watch::Receiver<Option<(u64, usize)>>,
}

/// The directory feed, kept for shutdown.
struct FeedHandle(DirectoryFeed);

impl std::fmt::Debug for FeedHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryFeed").finish_non_exhaustive()
    }
}

impl ProxyNode {
    /// Starts a proxy from its config: from the registries when `registries` lists any,
    /// otherwise from the directory file named there.
    pub async fn from_config(cfg: &ProxyConfig) -> Result<Self, NodeError> {
        if !cfg.registries.is_empty() {
            let list =
                parse_registries(Path::new("<proxy config>"), "registries", &cfg.registries)?;
            let refresh = Duration::from_secs(cfg.directory_refresh_secs);
            // The caller waits (`wait_ready`), saying what for, as long as it likes.
            let node = Self::start_with_registries(cfg, &list, refresh, Duration::ZERO).await?;
            node.start_api(cfg).await?;
            return Ok(node);
        }
        let text = std::fs::read_to_string(&cfg.directory).map_err(|source| NodeError::Io {
            context: format!("reading directory {}", cfg.directory.display()),
            source,
        })?;
        let directory = Directory::from_text(&text)?;
        let node = Self::start(cfg, &directory).await?;
        node.start_api(cfg).await?;
        Ok(node)
    }

    /// Starts a proxy over `directory`. No identity is ever stored: the transport that fetches
    /// the directory has a fresh key every start, and circuits are built on one more fresh key
    /// per SOCKS isolation key (`braid_router::identities`).
    pub async fn start(cfg: &ProxyConfig, directory: &Directory) -> Result<Self, NodeError> {
        let ports = bind(cfg).await?;
        let (transport, manager) = Self::client(cfg).await?;
        let usable = manager.set_directory(directory).await?;
        if usable == 0 {
            warn!("the directory has no fresh relays; every stream will fail");
        }
        let (_, applied) = watch::channel(Some((0, usable)));
        Ok(Self::serve(
            cfg,
            ports,
            transport,
            manager,
            None,
            Vec::new(),
            applied,
        ))
    }

    /// Starts a proxy that learns the network from `registries`: it fetches their signed
    /// directory snapshot (from any of them), uses it only when it verifies against their
    /// keys, and refreshes it every `refresh`, keeping the last good one when a fetched one
    /// is bad. Binds the SOCKS port first, serves at once (streams fail with a SOCKS error
    /// until circuits can be built), then waits up to `first_wait` for the first verified
    /// directory to be in use (`Duration::ZERO`: not at all; [`ProxyNode::wait_ready`] waits
    /// until circuits can be built, saying what for).
    pub async fn start_with_registries(
        cfg: &ProxyConfig,
        registries: &[Registry],
        refresh: Duration,
        first_wait: Duration,
    ) -> Result<Self, NodeError> {
        let ports = bind(cfg).await?;
        let (transport, manager) = Self::client(cfg).await?;
        let feed = DirectoryFeed::start(
            &transport,
            service_registries(registries)?,
            Vec::new(),
            FeedSettings {
                refresh_interval: refresh,
                retry_interval: refresh.min(crate::relay_node::RETRY_CAP),
                // Relays cache and serve the snapshot: ask a few of them as well.
                relay_sources: PROXY_RELAY_SOURCES,
                // A forming network: ask again soon while paths cannot be made disjoint.
                bootstrap_relays: cfg.hops.saturating_mul(cfg.strands.max(1)),
                ..FeedSettings::default()
            },
        )
        .await
        .map_err(|e| NodeError::Service(e.to_string()))?;
        let snapshots = feed.subscribe();
        let grace = cfg.stale_directory_grace_secs;
        let (applied_tx, applied) = watch::channel(None);
        let follower = tokio::spawn(follow(manager.clone(), snapshots, grace, applied_tx));
        let peers = registries.iter().map(|r| r.peer).collect();
        let node = Self::serve(
            cfg,
            ports,
            transport,
            manager,
            Some((FeedHandle(feed), follower)),
            peers,
            applied,
        );
        let mut applied = node.applied.clone();
        let arrived = first_wait.is_zero()
            || tokio::time::timeout(first_wait, applied.wait_for(|a| a.is_some()))
                .await
                .is_ok_and(|r| r.is_ok());
        if !arrived {
            warn!(
                "no verified directory within {first_wait:?}: {}; serving anyway, every stream \
                 fails until circuits can be built",
                node.waiting_for().await.unwrap_or_default()
            );
        }
        Ok(node)
    }

    /// What the proxy still waits for before circuits can be built (`None`: nothing, it is
    /// ready): a verified directory, or enough relays in it for a path of `hops`.
    pub async fn waiting_for(&self) -> Option<String> {
        let hops = self.manager.settings().hops;
        let applied = *self.applied.borrow();
        if let Some((_, relays)) = applied
            && relays >= hops
        {
            return None;
        }
        let mut reached = 0;
        for peer in &self.registries {
            if self
                .transport
                .connected_addresses(*peer)
                .await
                .is_ok_and(|a| !a.is_empty())
            {
                reached += 1;
            }
        }
        let directory = match applied {
            None => "no verified snapshot yet".to_string(),
            Some((_, relays)) => {
                format!("{relays} relays, verified; waiting for at least {hops} (one path)")
            }
        };
        Some(format!(
            "directory: {reached} of {} registries reached, {directory}",
            self.registries.len()
        ))
    }

    /// Waits until circuits can be built (a verified directory with at least `hops` usable
    /// relays), at most `bound` (`None`: for ever), logging what it waits for every
    /// [`WAITING_LOG_INTERVAL`]. Returns whether the proxy is ready.
    pub async fn wait_ready(&self, bound: Option<Duration>) -> bool {
        let deadline = bound.map(|b| tokio::time::Instant::now() + b);
        let mut applied = self.applied.clone();
        let mut next_log = tokio::time::Instant::now() + WAITING_LOG_INTERVAL;
        loop {
            let Some(waiting) = self.waiting_for().await else {
                return true;
            };
            let now = tokio::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return false;
            }
            if now >= next_log {
                info!("not ready: {waiting}");
                next_log = now + WAITING_LOG_INTERVAL;
            }
            let until = deadline.map_or(next_log, |d| d.min(next_log));
            // Woken by every directory applied, and at least every log interval.
            let _ = tokio::time::timeout_at(until, applied.changed()).await;
        }
    }

    /// The client-only transport and the circuit manager.
    async fn client(cfg: &ProxyConfig) -> Result<(Transport, Arc<CircuitManager>), NodeError> {
        if !cfg.socks_listen.ip().is_loopback() {
            warn!("SOCKS5 port is not on loopback: anyone who can reach it can use your circuits");
        }
        let transport = Transport::start(
            Identity::generate(),
            TransportConfig {
                listen: Vec::new(),
                ..Default::default()
            },
        )
        .await?;
        let manager = Arc::new(CircuitManager::new(
            transport.clone(),
            cfg.router_settings(),
        ));
        Ok((transport, manager))
    }

    fn serve(
        cfg: &ProxyConfig,
        ports: Ports,
        transport: Transport,
        manager: Arc<CircuitManager>,
        feed: Option<(FeedHandle, JoinHandle<()>)>,
        registries: Vec<braid_transport::PeerId>,
        applied: watch::Receiver<Option<(u64, usize)>>,
    ) -> Self {
        let (listener, socks_addr) = ports.socks;
        let task = tokio::spawn(braid_router::proxy::serve(
            listener,
            manager.clone(),
            cfg.proxy_settings(),
        ));
        info!(%socks_addr, "SOCKS5 port open");
        let http = ports.http.map(|(listener, bound)| {
            let task = tokio::spawn(braid_router::proxy::serve_http_connect(
                listener,
                manager.clone(),
                cfg.proxy_settings(),
            ));
            info!(%bound, "HTTP CONNECT port open");
            (bound, task)
        });
        ProxyNode {
            transport,
            manager,
            socks_addr,
            task,
            feed,
            http,
            api: std::sync::Mutex::new(None),
            registries,
            applied,
        }
    }

    /// Starts the local HTTP API `cfg`'s `api_*` keys describe (token and address files in
    /// `cfg.data_dir`); returns where it listens. Replaces an earlier call's server.
    pub async fn start_api(&self, cfg: &ProxyConfig) -> Result<SocketAddr, NodeError> {
        let source = status::ProxyStatus {
            peer_id: self.transport.peer_id().to_string(),
            manager: self.manager.clone(),
            registries: cfg.registries.len(),
            snapshots: self.feed.as_ref().map(|(f, _)| f.0.subscribe()),
        };
        let server =
            crate::api::ApiServer::start(&cfg.api(), &cfg.data_dir, Arc::new(source)).await?;
        let metrics = crate::metrics::NodeMetrics::for_proxy(self);
        server.set_metrics(Arc::new(move || metrics.encode()));
        let addr = server.local_addr();
        let old = self
            .api
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(server);
        if let Some(old) = old {
            old.shutdown();
        }
        Ok(addr)
    }

    /// Where the local HTTP API listens (`None`: not started).
    pub fn api_addr(&self) -> Option<SocketAddr> {
        let guard = self.api.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|a| a.local_addr())
    }

    /// The local HTTP API's state (e.g. to set its metrics text), if started.
    pub fn api_state(&self) -> Option<crate::api::ApiState> {
        let guard = self.api.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|a| a.state().clone())
    }

    /// Where apps that speak HTTP CONNECT connect, if `http_listen` is set.
    pub fn http_connect_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|(addr, _)| *addr)
    }

    /// Where apps connect.
    pub fn socks_addr(&self) -> SocketAddr {
        self.socks_addr
    }

    /// The circuit manager (for reports).
    pub fn manager(&self) -> &Arc<CircuitManager> {
        &self.manager
    }

    /// What the metrics collector reads (`crate::metrics`).
    pub(crate) fn metrics_sources(&self) -> crate::metrics::proxy::ProxySources {
        crate::metrics::proxy::ProxySources {
            manager: Arc::clone(&self.manager),
            snapshots: self.feed.as_ref().map(|(f, _)| f.0.subscribe()),
        }
    }

    /// Stops serving, stops following the registries, closes circuits, shuts the transport
    /// down.
    pub async fn shutdown(&self) {
        let api = self.api.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(api) = api {
            api.shutdown();
        }
        self.task.abort();
        if let Some((_, http)) = &self.http {
            http.abort();
        }
        if let Some((feed, follower)) = &self.feed {
            feed.0.stop();
            follower.abort();
        }
        self.manager.close_all();
        self.manager.save_guards();
        self.manager.client_identities().close_all().await;
        self.transport.shutdown().await;
    }
}

/// Binds the HTTP CONNECT port (`http_listen`), if set.
async fn bind_http(cfg: &ProxyConfig) -> Result<Option<(TcpListener, SocketAddr)>, NodeError> {
    let Some(addr) = cfg.http_listen else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Io {
            context: format!("binding the HTTP CONNECT port {addr} (http_listen)"),
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| NodeError::Io {
        context: "reading the HTTP CONNECT address".into(),
        source,
    })?;
    Ok(Some((listener, bound)))
}

/// The proxy's bound ports.
struct Ports {
    socks: (TcpListener, SocketAddr),
    http: Option<(TcpListener, SocketAddr)>,
}

/// Binds the SOCKS port (and the HTTP CONNECT port, if set): first of all, so a port in use
/// fails the start at once.
async fn bind(cfg: &ProxyConfig) -> Result<Ports, NodeError> {
    let socks = bind_socks(cfg).await?;
    let http = bind_http(cfg).await?;
    Ok(Ports { socks, http })
}

/// Binds the SOCKS port.
async fn bind_socks(cfg: &ProxyConfig) -> Result<(TcpListener, SocketAddr), NodeError> {
    let listener = TcpListener::bind(cfg.socks_listen)
        .await
        .map_err(|source| NodeError::Io {
            context: format!("binding SOCKS5 port {}", cfg.socks_listen),
            source,
        })?;
    let socks_addr = listener.local_addr().map_err(|source| NodeError::Io {
        context: "reading the SOCKS5 address".into(),
        source,
    })?;
    Ok((listener, socks_addr))
}

/// Applies each verified snapshot to the circuit manager (and tells `applied` what it
/// applied), and stops new circuits while the snapshot held is past its validity plus `grace`
/// seconds (checked on every snapshot and at least every [`STALE_CHECK_INTERVAL`]).
async fn follow(
    manager: Arc<CircuitManager>,
    mut snapshots: SnapshotReceiver,
    grace: u64,
    applied: watch::Sender<Option<(u64, usize)>>,
) {
    let mut watch = StaleWatch::new(grace);
    let check_every = STALE_CHECK_INTERVAL.min(Duration::from_secs(grace.max(1)));
    let mut tick = tokio::time::interval(check_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changed = true;
    loop {
        let snapshot = snapshots.borrow_and_update().clone();
        if changed && let Some(s) = &snapshot {
            match manager.set_directory(&s.to_directory()).await {
                Ok(n) => {
                    info!(relays = n, issued_at = s.issued_at(), "directory in use");
                    applied.send_replace(Some((s.issued_at(), n)));
                }
                Err(e) => warn!(error = %e, "a verified directory could not be used"),
            }
        }
        let valid_until = snapshot.as_ref().map(|s| s.valid_until());
        match watch.observe(valid_until, unix_now()) {
            Some(Change::BecameStale {
                valid_until,
                late_by,
            }) => {
                let why = format!(
                    "the directory is stale: its snapshot was valid until {valid_until} \
                     ({late_by} s ago, past the {grace} s grace); waiting for a fresh snapshot \
                     from the registries or relays before building circuits"
                );
                warn!("{why}; new streams fail until then");
                manager.set_directory_stale(Some(why));
            }
            Some(Change::FreshAgain { valid_until }) => {
                info!(
                    valid_until,
                    "a fresh directory snapshot arrived; circuits are allowed again"
                );
                manager.set_directory_stale(None);
            }
            None => {}
        }
        tokio::select! {
            result = snapshots.changed() => {
                if result.is_err() {
                    break;
                }
                changed = true;
            }
            _ = tick.tick() => changed = false,
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
