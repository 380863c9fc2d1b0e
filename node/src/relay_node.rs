//! A running relay: transport + relay service + its signed descriptor, and (with `upnp = true`)
//! the UPnP port mappings that make it reachable from behind a home router.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use braid_registry::{Descriptor, ExitPolicy, SignedDescriptor};
use braid_relay::service::{Faults, RelayService, RelayServiceConfig, RelayStats};
use braid_transport::upnp::{self, MapOutcome, MappingHandle, PortMapper};
use braid_transport::{Identity, Multiaddr, Transport, TransportConfig};
use tracing::{info, warn};

use crate::config::RelayConfig;
use crate::error::NodeError;
use crate::keys::{load_or_create_onion_key, onion_public};

/// File name of the signed descriptor a relay writes into its data directory.
pub const DESCRIPTOR_FILE: &str = "descriptor";

/// A running relay.
#[derive(Debug)]
pub struct RelayNode {
    transport: Transport,
    service: RelayService,
    descriptor: SignedDescriptor,
    /// False when `upnp = true` but no mapping could be made: the relay serves but must not
    /// publish its descriptor.
    advertises: bool,
    /// The UPnP mappings, removed on shutdown.
    mappings: Mutex<Option<MappingHandle>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RelayNode {
    /// Starts a relay from its config file settings: keys from `data_dir` (created 0600 if
    /// missing), and the signed descriptor written to `data_dir/descriptor` — unless the relay
    /// does not advertise itself (UPnP failed), in which case an old descriptor file is removed
    /// so nobody publishes an unreachable address.
    pub async fn from_config(cfg: &RelayConfig) -> Result<Self, NodeError> {
        let identity = Identity::load_or_create(&cfg.data_dir)?;
        let onion = load_or_create_onion_key(&cfg.data_dir)?;
        let node = Self::start(cfg, identity, onion, Faults::default()).await?;
        let path = cfg.data_dir.join(DESCRIPTOR_FILE);
        if node.advertises() {
            node.write_descriptor(&path)?;
        } else {
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(NodeError::Io {
                        context: format!("removing stale descriptor {}", path.display()),
                        source: e,
                    });
                }
                _ => {}
            }
        }
        Ok(node)
    }

    /// Starts a relay with the given keys (the simulator passes fresh ones).
    pub async fn start(
        cfg: &RelayConfig,
        identity: Identity,
        onion_secret: [u8; 32],
        faults: Faults,
    ) -> Result<Self, NodeError> {
        let policy = ExitPolicy::parse_rules(&cfg.exit_policy)?;
        let listen: Vec<Multiaddr> = cfg.listen.iter().filter_map(|a| a.parse().ok()).collect();
        let signing = ed25519_dalek::SigningKey::from_bytes(&identity.secret_bytes());
        let transport = Transport::start(
            identity,
            TransportConfig {
                listen,
                ..Default::default()
            },
        )
        .await?;
        let (mapped, advertises, mappings) = match cfg.upnp {
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
        let descriptor = Descriptor {
            identity: signing.verifying_key().to_bytes(),
            onion_key: onion_public(&onion_secret),
            addresses: addresses.into_iter().take(8).collect(),
            nickname: cfg.nickname.clone(),
            bandwidth: cfg.bandwidth,
            exit_policy: policy.clone(),
            published: now,
            expires: now + cfg.descriptor_lifetime_secs,
        }
        .sign(&signing)?;
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
            exit = descriptor.descriptor().is_exit(),
            "relay started"
        );
        Ok(RelayNode {
            transport,
            service,
            descriptor,
            advertises,
            mappings: Mutex::new(mappings),
        })
    }

    /// Whether the relay's descriptor may be published: false when `upnp = true` and no port
    /// mapping was possible (the relay then serves without advertising itself).
    pub fn advertises(&self) -> bool {
        self.advertises
    }

    /// The relay's signed descriptor (with `advertises() == false` it names addresses others
    /// cannot reach; do not publish it).
    pub fn descriptor(&self) -> &SignedDescriptor {
        &self.descriptor
    }

    /// The relay's counters.
    pub fn stats(&self) -> Arc<RelayStats> {
        self.service.stats()
    }

    /// The transport (for tests and the simulator).
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Writes the signed descriptor as hex text.
    pub fn write_descriptor(&self, path: &Path) -> Result<(), NodeError> {
        let text = format!("{}\n", hex::encode(self.descriptor.encode()));
        std::fs::write(path, text).map_err(|source| NodeError::Io {
            context: format!("writing descriptor {}", path.display()),
            source,
        })
    }

    /// Stops the relay: no new circuits, UPnP mappings removed, transport closed.
    pub async fn shutdown(&self) {
        self.service.stop();
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
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::Io {
        context: format!("reading descriptor {}", path.display()),
        source,
    })?;
    let bytes = hex::decode(text.trim()).map_err(|e| NodeError::KeyFile {
        path: path.to_path_buf(),
        reason: format!("not hex: {e}"),
    })?;
    Ok(SignedDescriptor::decode(&bytes)?)
}
