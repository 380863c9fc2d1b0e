//! A running relay: transport + relay service + dial-back server + its signed descriptor, and
//! (with `upnp = true`) the UPnP port mappings that make it reachable from behind a home
//! router. What it advertises, and the reachability self-test that decides it, are in
//! `reachability`.

pub mod accounting;
pub(crate) mod advert;
mod reachability;
pub(crate) mod registries;
mod reload;
mod status;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use braid_directory::{Descriptor, ExitPolicy, SignedDescriptor};
use braid_relay::service::{Faults, RelayService, RelayServiceConfig, RelayStats};
use braid_transport::dialback::{DialbackServer, DialbackServerConfig};
use braid_transport::upnp::{self, MapOutcome, MappingHandle, PortMapper};
use braid_transport::{Identity, Multiaddr, Transport, TransportConfig};
use tracing::{info, warn};

use crate::config::RelayConfig;
use crate::error::NodeError;
use crate::keys::{load_or_create_onion_key, onion_public};
use advert::{Advert, Status};

pub use reachability::reachability_peer;
pub use registries::RETRY_CAP;
pub use reload::{RELOADABLE_KEYS, ReloadLine, merged};

/// File name of the signed descriptor a relay writes into its data directory.
pub const DESCRIPTOR_FILE: &str = "descriptor";

/// A running relay.
#[derive(Debug)]
pub struct RelayNode {
    transport: Transport,
    service: RelayService,
    /// Answers other nodes' reachability self-tests.
    dialback: DialbackServer,
    /// Signed at start with every claimed address.
    descriptor: SignedDescriptor,
    /// What is advertised now (shared with the reachability monitor).
    advert: Arc<Advert>,
    /// The periodic reachability re-test, stopped on shutdown.
    monitor: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The UPnP mappings, removed on shutdown (shared with the metrics collector).
    mappings: Arc<Mutex<Option<MappingHandle>>>,
    /// Publication to and directory from the registries, if configured (shared with the
    /// metrics collector).
    registry: Arc<Mutex<Option<registries::RelayRegistry>>>,
    /// The local HTTP API, once started (`start_api`).
    api: Mutex<Option<crate::api::ApiServer>>,
    /// The data directory and the task persisting the accounting count into it (only for a
    /// relay started from its config), stopped and saved once more on shutdown.
    accounting_saver: Mutex<Option<(std::path::PathBuf, tokio::task::JoinHandle<()>)>>,
    /// Where the advertised descriptor is written (only for a relay started from its config).
    descriptor_path: Mutex<Option<std::path::PathBuf>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RelayNode {
    /// Starts a relay from its config file settings: keys from `data_dir` (created 0600 if
    /// missing), then decides what to advertise and writes the signed descriptor to
    /// `data_dir/descriptor`, or removes an old one so nobody publishes an unreachable address:
    /// - UPnP failed (`upnp = true`): not advertised;
    /// - `reachability_peers` set: those peers dial the claimed addresses back; only confirmed
    ///   addresses are advertised, none confirmed means not advertised; re-tested every
    ///   `reachability_interval_secs` (the descriptor is removed on loss, written on recovery);
    /// - otherwise every claimed address is advertised, untested.
    ///
    /// Each case logs one line saying what happened (`reachability: ...`).
    pub async fn from_config(cfg: &RelayConfig) -> Result<Self, NodeError> {
        Self::from_config_or_stop(cfg, std::future::pending())
            .await?
            .ok_or_else(|| NodeError::Service("start-up stopped".into()))
    }

    /// [`RelayNode::from_config`], stopped cleanly when `stop` completes first: a stop during
    /// the UPnP step lets that step finish and then removes its mappings; a stop during the
    /// reachability test or the first contact with the registries shuts the relay down at
    /// once. `Ok(None)` means it was stopped (and is shut down).
    pub async fn from_config_or_stop(
        cfg: &RelayConfig,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<Option<Self>, NodeError> {
        let mut stop = std::pin::pin!(stop);
        let identity = Identity::load_or_create(&cfg.data_dir)?;
        let onion = load_or_create_onion_key(&cfg.data_dir)?;
        let mut start = std::pin::pin!(Self::start(cfg, identity, onion, Faults::default()));
        let node = tokio::select! {
            node = &mut start => node?,
            () = &mut stop => {
                info!("stop requested during start-up: finishing the UPnP step to undo it");
                let node = start.await?;
                node.shutdown().await;
                return Ok(None);
            }
        };
        node.start_accounting(&cfg.data_dir);
        let path = cfg.data_dir.join(DESCRIPTOR_FILE);
        *node
            .descriptor_path
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(path.clone());
        let published = tokio::select! {
            r = reachability::publish(&node.advert, cfg, &node.transport, path) => r,
            () = &mut stop => {
                info!("stop requested during the reachability test: shutting down");
                node.shutdown().await;
                return Ok(None);
            }
        };
        let monitor = match published {
            Ok(m) => m,
            Err(e) => {
                node.shutdown().await;
                return Err(e);
            }
        };
        *node.monitor.lock().unwrap_or_else(|p| p.into_inner()) = monitor;
        if !cfg.registries.is_empty() {
            let joined = async {
                let list = crate::config::parse_registries(
                    Path::new("<relay config>"),
                    "registries",
                    &cfg.registries,
                )?;
                node.join_registries(
                    &list,
                    Duration::from_secs(cfg.republish_interval_secs),
                    Duration::from_secs(crate::config::default_directory_refresh_secs()),
                )
                .await
            };
            let joined = tokio::select! {
                r = joined => r,
                () = &mut stop => {
                    info!("stop requested while contacting the registries: shutting down");
                    node.shutdown().await;
                    return Ok(None);
                }
            };
            if let Err(e) = joined {
                node.shutdown().await;
                return Err(e);
            }
        }
        if let Err(e) = node.start_api(cfg).await {
            node.shutdown().await;
            return Err(e);
        }
        Ok(Some(node))
    }

    /// Resumes the accounting count saved in `data_dir` (when a budget is configured), logs
    /// where the budget stands, and keeps saving the count every minute.
    fn start_accounting(&self, data_dir: &Path) {
        if self.service.accounting().is_some() {
            if let Some(saved) = accounting::load(data_dir) {
                self.service
                    .resume_accounting(saved.period_start, saved.used);
            }
            if let Some(state) = self.service.accounting() {
                accounting::log_state(&state);
            }
        }
        let task = tokio::spawn(accounting::keep_saving(
            data_dir.to_path_buf(),
            self.service.accounting_source(),
        ));
        *self
            .accounting_saver
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((data_dir.to_path_buf(), task));
    }

    /// The accounting budget's state now (`None`: no budget configured).
    pub fn accounting(&self) -> Option<braid_relay::service::AccountingState> {
        self.service.accounting()
    }

    /// Starts the local HTTP API `cfg`'s `api_*` keys describe (token and address files in
    /// `data_dir`); returns where it listens. Replaces an earlier call's server.
    pub async fn start_api(&self, cfg: &RelayConfig) -> Result<std::net::SocketAddr, NodeError> {
        let (publish, snapshots) = {
            let guard = self.registry.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(r) => (Some(r.publish_status()), Some(r.snapshots())),
                None => (None, None),
            }
        };
        let mapped = self.mappings.lock().map(|m| m.is_some()).unwrap_or(false);
        let source = status::RelayStatus {
            peer_id: self.transport.peer_id().to_string(),
            nickname: cfg.nickname.clone(),
            stats: self.stats(),
            advert: Arc::clone(&self.advert),
            upnp: match (cfg.upnp, mapped) {
                (false, _) => "off".into(),
                (true, true) => "mapped".into(),
                (true, false) => "not mapped (see the UPnP log line)".into(),
            },
            registries: cfg.registries.len(),
            publish,
            snapshots,
            accounting: self.service.accounting_probe(),
            period: cfg.accounting_period,
        };
        let server =
            crate::api::ApiServer::start(&cfg.api(), &cfg.data_dir, Arc::new(source)).await?;
        let metrics = crate::metrics::NodeMetrics::for_relay(self);
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
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        let guard = self.api.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|a| a.local_addr())
    }

    /// The local HTTP API's state (e.g. to set its metrics text), if started.
    pub fn api_state(&self) -> Option<crate::api::ApiState> {
        let guard = self.api.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|a| a.state().clone())
    }

    /// Starts a relay with the given keys (the simulator passes fresh ones).
    pub async fn start(
        cfg: &RelayConfig,
        identity: Identity,
        onion_secret: [u8; 32],
        faults: Faults,
    ) -> Result<Self, NodeError> {
        let policy = ExitPolicy::parse_rules(&cfg.exit_policy)?;
        let listen: Vec<Multiaddr> = crate::config::listen_addrs(&cfg.listen)?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&identity.secret_bytes());
        let transport = Transport::start(
            identity,
            TransportConfig {
                listen,
                ..Default::default()
            },
        )
        .await?;
        let (mapped, mapped_ok, mappings) = match cfg.upnp {
            true => map_ports(cfg, &transport).await,
            false => (None, true, None),
        };
        let addresses: Vec<String> = if let Some(mapped) = mapped {
            mapped
        } else if cfg.advertise.is_empty() {
            transport
                .listen_addrs()
                .iter()
                .filter(|a| advertisable(a))
                .map(|a| a.to_string())
                .collect()
        } else {
            cfg.advertise.clone()
        };
        let now = now_unix();
        let template = Descriptor {
            identity: signing.verifying_key().to_bytes(),
            onion_key: onion_public(&onion_secret),
            addresses: addresses.into_iter().take(8).collect(),
            nickname: cfg.nickname.clone(),
            bandwidth: cfg.bandwidth,
            exit_policy: policy.clone(),
            family: cfg.family_keys().map_err(|reason| NodeError::ConfigValue {
                path: "<built-in>".into(),
                key: "family",
                reason,
            })?,
            published: now,
            expires: now + cfg.descriptor_lifetime_secs,
        };
        let descriptor = template.sign(&signing)?;
        let status = if mapped_ok {
            Status::Advertised {
                descriptor: Box::new(descriptor.clone()),
            }
        } else {
            Status::NotAdvertised {
                why: "not advertised; see the UPnP log line".into(),
            }
        };
        let advert = Arc::new(Advert::new(
            template,
            signing,
            cfg.descriptor_lifetime_secs,
            status,
        ));
        let dialback = DialbackServer::start(&transport, DialbackServerConfig::default())?;
        let service = RelayService::start(
            transport.clone(),
            RelayServiceConfig {
                onion_secret,
                exit_policy: policy,
                limits: cfg.relay_limits(),
                faults,
                bandwidth: cfg.bandwidth_limit(),
                accounting: cfg.accounting_limit(),
            },
        )?;
        info!(
            nickname = %cfg.nickname,
            peer_id = %transport.peer_id(),
            exit = descriptor.descriptor().is_exit(),
            "relay started"
        );
        Ok(RelayNode {
            transport,
            service,
            dialback,
            descriptor,
            advert,
            monitor: Mutex::new(None),
            mappings: Arc::new(Mutex::new(mappings)),
            registry: Arc::new(Mutex::new(None)),
            api: Mutex::new(None),
            accounting_saver: Mutex::new(None),
            descriptor_path: Mutex::new(None),
        })
    }

    /// Publishes the advertised descriptor to `registries` now and every `republish` (a
    /// registry dials the relay back before listing it), and fetches, verifies, caches and
    /// serves their directory snapshot, refreshed every `refresh`. Replaces an earlier call's.
    pub async fn join_registries(
        &self,
        registries: &[crate::config::Registry],
        republish: Duration,
        refresh: Duration,
    ) -> Result<(), NodeError> {
        let joined = registries::RelayRegistry::start(
            &self.transport,
            Arc::clone(&self.advert),
            registries,
            republish,
            refresh,
        )
        .await?;
        let old = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(joined);
        if let Some(old) = old {
            old.stop();
        }
        Ok(())
    }

    /// How the last publication to the registries went (`None`: no registries configured).
    pub fn publish_status(&self) -> Option<braid_registry::service::PublishStatus> {
        let guard = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(|r| r.publish_status().borrow().clone())
    }

    /// Whether the relay's descriptor may be published now: false when `upnp = true` and no
    /// port mapping was possible, or when `reachability_peers` could not confirm any address
    /// (the relay then serves without advertising itself). It can change while the relay
    /// runs (reachability re-tests).
    pub fn advertises(&self) -> bool {
        self.advert.advertised().is_some()
    }

    /// Why the relay does not advertise itself now (`None` while it does), e.g. "reachability
    /// not confirmed; see the reachability log line". For `braid relay`'s `ready` line.
    pub fn why_not_advertised(&self) -> Option<String> {
        self.advert.why_not()
    }

    /// The descriptor advertised now, with only the confirmed addresses (`None` while not
    /// advertised); the file `data_dir/descriptor` holds the same.
    pub fn advertised_descriptor(&self) -> Option<SignedDescriptor> {
        self.advert.advertised()
    }

    /// The relay's descriptor as signed at start, with every address it claims, tested or not
    /// (with `advertises() == false` it names addresses others cannot reach; do not publish
    /// it: see `advertised_descriptor`).
    pub fn descriptor(&self) -> &SignedDescriptor {
        &self.descriptor
    }

    /// The relay's counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        self.service.stats()
    }

    /// What the metrics collector reads (`crate::metrics`).
    pub(crate) fn metrics_sources(&self) -> crate::metrics::relay::RelaySources {
        crate::metrics::relay::RelaySources {
            stats: self.service.stats(),
            accounting: self.service.accounting_probe(),
            upnp_enabled: self.mappings_configured(),
            mappings: Arc::clone(&self.mappings),
            registry: Arc::clone(&self.registry),
            advert: Arc::clone(&self.advert),
        }
    }

    /// Whether UPnP mapping was asked for and made at start.
    fn mappings_configured(&self) -> bool {
        self.mappings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// The transport (for tests and the simulator).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Writes the descriptor signed at start (every claimed address) as hex text.
    pub fn write_descriptor(&self, path: &Path) -> Result<(), NodeError> {
        advert::write_descriptor_file(path, &self.descriptor)
    }

    /// Stops the relay: no more reachability re-tests or dial-back answers, no new circuits,
    /// UPnP mappings removed, transport closed.
    pub async fn shutdown(&self) {
        let api = self.api.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(api) = api {
            api.shutdown();
        }
        let monitor = match self.monitor.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(task) = monitor {
            task.abort();
        }
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(r) = registry {
            r.stop();
        }
        self.dialback.stop();
        self.service.stop();
        let saver = self
            .accounting_saver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((dir, task)) = saver {
            task.abort();
            if let Some(state) = self.service.accounting()
                && let Err(e) = accounting::save(&dir, &state)
            {
                warn!(dir = %dir.display(), error = %e, "accounting: cannot save the count");
            }
        }
        let mappings = match self.mappings.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = mappings {
            handle.remove().await;
            info!("UPnP: mappings removed");
        }
        self.transport.shutdown().await;
    }
}

/// Maps the listen ports by UPnP and logs one line saying what happened. Returns the addresses
/// to advertise (`None`: none mapped), whether to advertise at all, and the mappings' handle.
async fn map_ports(
    cfg: &RelayConfig,
    transport: &Transport,
) -> (Option<Vec<String>>, bool, Option<MappingHandle>) {
    let (local_ip, ports) = upnp::listen_ports(&transport.listen_addrs());
    if ports.is_empty() {
        warn!(
            "UPnP: no mapping, no IPv4 QUIC or TCP listen port to map; not advertising this relay"
        );
        return (None, false, None);
    }
    let lease = std::time::Duration::from_secs(cfg.upnp_lease_secs);
    let description = format!("braid relay {}", cfg.nickname);
    let outcome = PortMapper::default()
        .map(local_ip, &ports, lease, &description)
        .await;
    if outcome.is_mapped() {
        info!("{outcome}");
    } else {
        warn!("{outcome}; serving without advertising this relay (no descriptor written)");
    }
    match outcome {
        MapOutcome::Mapped {
            external_ip,
            mappings,
            handle,
        } => {
            let addrs = upnp::mapped_addrs(external_ip, &mappings)
                .iter()
                .map(|a| a.to_string())
                .collect();
            (Some(addrs), true, Some(handle))
        }
        _ => (None, false, None),
    }
}

/// Whether an address can be given to others (has a specific IP).
fn advertisable(a: &Multiaddr) -> bool {
    let text = a.to_string();
    let mut parts = text.split('/').skip(1);
    match (
        parts.next(),
        parts.next().and_then(|ip| ip.parse::<IpAddr>().ok()),
    ) {
        (Some("ip4") | Some("ip6"), Some(ip)) => !ip.is_unspecified(),
        _ => false,
    }
}

/// Reads a descriptor file written by [`RelayNode::write_descriptor`].
pub fn read_descriptor(path: &Path) -> Result<SignedDescriptor, NodeError> {
    let bad = |reason: String| NodeError::Descriptor {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let bytes = hex::decode(text.trim()).map_err(|e| bad(format!("not hex: {e}")))?;
    SignedDescriptor::decode(&bytes).map_err(|e| bad(e.to_string()))
}
