//! A running relay: transport + relay service + its signed descriptor.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use braid_registry::{Descriptor, ExitPolicy, SignedDescriptor};
use braid_relay::service::{Faults, RelayService, RelayServiceConfig, RelayStats};
use braid_transport::{Identity, Multiaddr, Transport, TransportConfig};
use tracing::info;

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
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl RelayNode {
    /// Starts a relay from its config file settings: keys from `data_dir` (created 0600 if
    /// missing), and the signed descriptor written to `data_dir/descriptor`.
    pub async fn from_config(cfg: &RelayConfig) -> Result<Self, NodeError> {
        let identity = Identity::load_or_create(&cfg.data_dir)?;
        let onion = load_or_create_onion_key(&cfg.data_dir)?;
        let node = Self::start(cfg, identity, onion, Faults::default()).await?;
        node.write_descriptor(&cfg.data_dir.join(DESCRIPTOR_FILE))?;
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
        let addresses: Vec<String> = if cfg.advertise.is_empty() {
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
        })
    }

    /// The relay's signed descriptor.
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

    /// Stops the relay: no new circuits, transport closed.
    pub async fn shutdown(&self) {
        self.service.stop();
        self.transport.shutdown().await;
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
