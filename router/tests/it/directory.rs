//! The relay list keeps its indexes across directory updates: circuit paths and stream
//! records hold indexes, so a relay that leaves stays as an unlisted entry (never chosen) and
//! a new one is appended.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use braid_directory::{Descriptor, Directory, ExitPolicy, SignedDescriptor};
use braid_router::{CircuitManager, RouterSettings};
use braid_transport::{Identity, PeerId, Transport, TransportConfig};

fn relay(n: u8) -> (SignedDescriptor, PeerId) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[n; 32]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let d = Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: [n; 32],
        addresses: vec![format!("/ip4/127.0.0.{n}/udp/4001/quic-v1")],
        nickname: format!("r{n}"),
        bandwidth: 1_000_000,
        exit_policy: ExitPolicy::parse_rules(&["accept *:*"]).unwrap(),
        family: Vec::new(),
        published: now,
        expires: now + 3600,
    };
    let peer = braid_transport::peer_id_from_public(&d.identity).unwrap();
    (d.sign(&key).unwrap(), peer)
}

#[tokio::test]
async fn relays_keep_their_index_when_others_leave_or_join() {
    let transport = Transport::start(
        Identity::generate(),
        TransportConfig {
            listen: Vec::new(),
            ..TransportConfig::default()
        },
    )
    .await
    .unwrap();
    let manager = CircuitManager::new(transport.clone(), RouterSettings::default());
    let (a, b, c, d) = (relay(1), relay(2), relay(3), relay(4));
    let dir = |list: &[&(SignedDescriptor, PeerId)]| {
        Directory::new(list.iter().map(|(s, _)| s.clone()).collect()).unwrap()
    };
    assert_eq!(manager.set_directory(&dir(&[&a, &b, &c])).await.unwrap(), 3);
    let first = manager.relay_peers();
    assert_eq!(first.len(), 3);
    // b leaves, d joins, and the order of the new directory is different.
    assert_eq!(manager.set_directory(&dir(&[&d, &c, &a])).await.unwrap(), 3);
    let second = manager.relay_peers();
    assert_eq!(&second[..3], &first[..], "old indexes hold");
    assert_eq!(second[3], d.1, "the newcomer is appended");
    assert_eq!(manager.relay_count(), 3, "b is kept unlisted");
    // b comes back: listed again at its old index.
    manager
        .set_directory(&dir(&[&a, &b, &c, &d]))
        .await
        .unwrap();
    assert_eq!(manager.relay_peers(), second);
    assert_eq!(manager.relay_count(), 4);
    transport.shutdown().await;
}
