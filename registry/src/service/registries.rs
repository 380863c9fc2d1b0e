//! The configured registries (like Tor's directory authorities): peer ids and addresses, and the
//! [`RegistrySet`] of their keys that snapshots are checked against. A registry's signing key
//! is its transport identity key, so the key is read out of the peer id. This module does not
//! talk to anyone.

use braid_directory::snapshot::{MAX_REGISTRIES, RegistrySet};
use braid_transport::{Multiaddr, PeerId, Transport};
use ed25519_dalek::VerifyingKey;

use super::ServiceError;

/// The Ed25519 key inside an Ed25519 peer id (what a registry signs snapshots with), or `None`
/// for a peer id of another key type or one whose key is not a valid, not small-order point.
pub fn registry_key_of(peer: &PeerId) -> Option<VerifyingKey> {
    let key = braid_transport::public_from_peer_id(peer)?;
    let verifying = VerifyingKey::from_bytes(&key).ok()?;
    if verifying.is_weak() {
        return None;
    }
    Some(verifying)
}

/// A peer and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddresses {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its addresses (`/ip4/../udp/../quic-v1`, `/ip4/../tcp/..`, optionally `/p2p/<peer_id>`).
    pub addresses: Vec<Multiaddr>,
}

/// The configured registries: 1 to 9 distinct Ed25519 peer ids with their addresses, and the
/// registry set of their keys.
#[derive(Clone, Debug)]
pub struct Registries {
    peers: Vec<PeerAddresses>,
    set: RegistrySet,
}

impl Registries {
    /// The registries `peers`: [`ServiceError::Registries`] if there are none or more than 9,
    /// one is listed twice, or a peer id is not an Ed25519 one.
    pub fn new(peers: Vec<PeerAddresses>) -> Result<Self, ServiceError> {
        if !(1..=MAX_REGISTRIES).contains(&peers.len()) {
            return Err(ServiceError::Registries {
                reason: format!("{} registries; need 1 to {MAX_REGISTRIES}", peers.len()),
            });
        }
        let keys = peers
            .iter()
            .map(|p| {
                registry_key_of(&p.peer_id)
                    .map(|k| k.to_bytes())
                    .ok_or_else(|| ServiceError::Registries {
                        reason: format!("{} is not an Ed25519 peer id", p.peer_id),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let set = RegistrySet::new(&keys).map_err(|e| ServiceError::Registries {
            reason: e.to_string(),
        })?;
        Ok(Self { peers, set })
    }

    /// The registry set snapshots are signed for and checked against.
    pub fn set(&self) -> &RegistrySet {
        &self.set
    }

    /// The registries as configured.
    pub fn peers(&self) -> &[PeerAddresses] {
        &self.peers
    }

    /// Whether `peer` is one of them.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.peers.iter().any(|p| p.peer_id == *peer)
    }

    /// Tells `transport` how to reach every registry.
    pub async fn add_addresses_to(&self, transport: &Transport) -> Result<(), ServiceError> {
        add_addresses(transport, &self.peers).await
    }
}

/// Tells `transport` how to reach each of `peers` (those with addresses).
pub(crate) async fn add_addresses(
    transport: &Transport,
    peers: &[PeerAddresses],
) -> Result<(), ServiceError> {
    for p in peers.iter().filter(|p| !p.addresses.is_empty()) {
        transport
            .add_addresses(p.peer_id, p.addresses.clone())
            .await
            .map_err(|source| ServiceError::Transport {
                context: "adding a peer's addresses",
                source,
            })?;
    }
    Ok(())
}
