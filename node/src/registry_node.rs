//! A running registry: transport + Raft group member (`braid_registry::raft`) + the registry
//! service (`braid_registry::service::RegistryRole`: publication with dial-back, expiry,
//! co-signed directory snapshots), all on one swarm and port.
//!
//! Not here: the Raft log and state (registry crate) and what the service checks (its README).

mod replica;
mod status;

use std::sync::Arc;
use std::time::Duration;

use braid_directory::VerifiedSnapshot;
use braid_registry::raft::{RaftConfig, RaftMember, RaftStatus, RegistryRaft};
use braid_registry::service::{PeerAddresses, Registries, RegistryRole, RegistrySettings};
use braid_registry::store::StoreLimits;
use braid_transport::dialback::{DialbackServer, DialbackServerConfig};
use braid_transport::{Identity, Multiaddr, PeerId, Transport, TransportConfig};
use tracing::info;

use crate::config::{Registry, RegistryConfig, parse_registries};
use crate::error::NodeError;
use replica::RaftReplica;

/// Timings a registry runs with; the config gives the defaults, tests and the simulator
/// shorten them.
#[derive(Debug, Clone)]
pub struct RegistryTimings {
    /// Between directory snapshots.
    pub snapshot_interval: Duration,
    /// A snapshot's validity.
    pub snapshot_validity: Duration,
    /// Raft heartbeat and election timeouts, ms.
    pub raft_heartbeat_ms: u64,
    /// Raft election timeout range, ms.
    pub raft_election_ms: (u64, u64),
}

impl RegistryTimings {
    /// The timings `cfg` asks for, with openraft's defaults from the registry crate.
    pub fn from_config(cfg: &RegistryConfig) -> Self {
        let d = RaftConfig::new(0, Vec::new(), cfg.data_dir.clone());
        RegistryTimings {
            snapshot_interval: Duration::from_secs(cfg.snapshot_interval_secs),
            snapshot_validity: Duration::from_secs(cfg.snapshot_validity_secs),
            raft_heartbeat_ms: d.heartbeat_ms,
            raft_election_ms: (d.election_min_ms, d.election_max_ms),
        }
    }
}

/// A running registry node.
pub struct RegistryNode {
    transport: Transport,
    raft: RegistryRaft,
    role: Arc<RegistryRole>,
    dialback: DialbackServer,
    /// The local HTTP API, once started (`start_api`).
    api: std::sync::Mutex<Option<crate::api::ApiServer>>,
}

impl std::fmt::Debug for RegistryNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryNode")
            .field("peer_id", &self.transport.peer_id())
            .finish_non_exhaustive()
    }
}

/// The registry list as the service takes it.
pub fn service_registries(list: &[Registry]) -> Result<Registries, NodeError> {
    Registries::new(
        list.iter()
            .map(|r| PeerAddresses {
                peer_id: r.peer,
                addresses: vec![r.address.clone()],
            })
            .collect(),
    )
    .map_err(|e| NodeError::Service(e.to_string()))
}

impl RegistryNode {
    /// Starts the registry `cfg` describes, with its identity from `data_dir`.
    pub async fn from_config(cfg: &RegistryConfig) -> Result<Self, NodeError> {
        let identity = Identity::load_or_create(&cfg.data_dir)?;
        let node = Self::start(cfg, identity, RegistryTimings::from_config(cfg)).await?;
        node.start_api(cfg).await?;
        Ok(node)
    }

    /// Starts the local HTTP API `cfg`'s `api_*` keys describe (token and address files in
    /// `cfg.data_dir`); returns where it listens. Replaces an earlier call's server.
    pub async fn start_api(&self, cfg: &RegistryConfig) -> Result<std::net::SocketAddr, NodeError> {
        let source = status::RegistryStatus {
            peer_id: self.transport.peer_id().to_string(),
            raft: self.raft.clone(),
            role: Arc::clone(&self.role),
            registries: cfg.registries.len(),
        };
        let server =
            crate::api::ApiServer::start(&cfg.api(), &cfg.data_dir, Arc::new(source)).await?;
        let metrics = crate::metrics::NodeMetrics::for_registry(self);
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

    /// Starts a registry with `identity`, which must be one of `cfg.registries`.
    pub async fn start(
        cfg: &RegistryConfig,
        identity: Identity,
        timings: RegistryTimings,
    ) -> Result<Self, NodeError> {
        let path = std::path::Path::new("<registry config>");
        let list = parse_registries(path, "registries", &cfg.registries)?;
        let me = identity.peer_id();
        let mine = list
            .iter()
            .find(|r| r.peer == me)
            .ok_or_else(|| NodeError::ConfigValue {
                path: path.to_path_buf(),
                key: "registries",
                reason: format!("this node's peer id {me} is not in the list"),
            })?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&identity.secret_bytes());
        let listen: Vec<Multiaddr> = crate::config::listen_addrs(&cfg.listen)?;
        let transport = Transport::start(
            identity,
            TransportConfig {
                listen,
                ..Default::default()
            },
        )
        .await?;
        let mut raft_cfg = RaftConfig::new(
            mine.raft_id,
            list.iter()
                .map(|r| RaftMember {
                    id: r.raft_id,
                    peer: r.peer,
                    addr: r.address.clone(),
                })
                .collect(),
            cfg.data_dir.clone(),
        );
        raft_cfg.heartbeat_ms = timings.raft_heartbeat_ms;
        (raft_cfg.election_min_ms, raft_cfg.election_max_ms) = timings.raft_election_ms;
        raft_cfg.store_limits = StoreLimits {
            max_descriptors: cfg.max_relays,
        };
        let raft = RegistryRaft::start(transport.clone(), raft_cfg)
            .await
            .map_err(|e| NodeError::Service(format!("raft: {e}")))?;
        let settings = RegistrySettings {
            snapshot_interval: timings.snapshot_interval,
            snapshot_validity: timings.snapshot_validity,
            data_dir: Some(cfg.data_dir.clone()),
            measure: cfg.measure.settings(),
            listing: cfg.listing_params(),
            allow_private_addresses: cfg.allow_private_addresses,
            publish_burst: cfg.publish_burst,
            publish_refill: Duration::from_secs(cfg.publish_refill_secs),
            ..RegistrySettings::default()
        };
        let role = RegistryRole::start(
            &transport,
            Arc::new(RaftReplica::new(raft.clone())),
            service_registries(&list)?,
            signing,
            settings,
        )
        .await
        .map_err(|e| NodeError::Service(format!("registry service: {e}")))?;
        let dialback = DialbackServer::start(&transport, DialbackServerConfig::default())?;
        info!(peer_id = %me, registries = list.len(), "registry started");
        Ok(RegistryNode {
            transport,
            raft,
            role: Arc::new(role),
            dialback,
            api: std::sync::Mutex::new(None),
        })
    }

    /// This registry's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.transport.peer_id()
    }

    /// Where it listens.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.transport.listen_addrs()
    }

    /// Its Raft state.
    pub fn raft_status(&self) -> RaftStatus {
        self.raft.status()
    }

    /// The Raft group's members: node id to peer id.
    pub fn raft_members(&self) -> std::collections::HashMap<u64, PeerId> {
        self.raft.members()
    }

    /// Whether it is the Raft leader now.
    pub fn is_leader(&self) -> bool {
        let s = self.raft.status();
        s.leader == Some(s.id)
    }

    /// The majority-signed snapshot it serves now.
    pub fn snapshot(&self) -> Option<VerifiedSnapshot> {
        self.role.snapshot()
    }

    /// What the metrics collector reads (`crate::metrics`).
    pub(crate) fn metrics_sources(&self) -> crate::metrics::registry::RegistrySources {
        crate::metrics::registry::RegistrySources {
            raft: self.raft.clone(),
            role: Arc::clone(&self.role),
        }
    }

    /// The transport (for tests and the simulator).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Stops serving, leaves the Raft group running state on disk, closes the transport.
    pub async fn shutdown(&self) {
        let api = self.api.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(api) = api {
            api.shutdown();
        }
        self.role.stop();
        self.dialback.stop();
        self.raft.shutdown().await;
        self.transport.shutdown().await;
    }
}
