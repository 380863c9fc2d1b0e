//! Kademlia's own dials use QUIC when the peer has it, so links found through the DHT are
//! QUIC and never silently TCP + Noise + yamux.
//!
//! The relays of a braid network listen on QUIC and TCP. Before the fix, kad filed a peer's
//! identify addresses in whatever order identify listed them (a hash set's order) and dialed
//! them one at a time in that order, so a peer found by a lookup was often reached over TCP,
//! and circuits opened on that connection ran over TCP.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use braid_transport::{Identity, Multiaddr, StreamProtocol, Transport, TransportConfig};
use futures::StreamExt as _;
use tokio::time::timeout;

const PROBE: StreamProtocol = StreamProtocol::new("/braid-test/probe/1");
/// Upper bound on any single test step.
const STEP: Duration = Duration::from_secs(30);
/// Peers found through the DHT: each could come out TCP first by the hash-set order, so a
/// regression shows in nearly every run.
const PEERS: usize = 6;

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

async fn start(listen: Vec<Multiaddr>) -> Transport {
    let config = TransportConfig {
        listen,
        ..TransportConfig::default()
    };
    timeout(STEP, Transport::start(Identity::generate(), config))
        .await
        .expect("start timed out")
        .unwrap()
}

fn both() -> Vec<Multiaddr> {
    vec![
        addr("/ip4/127.0.0.1/tcp/0"),
        addr("/ip4/127.0.0.1/udp/0/quic-v1"),
    ]
}

fn is_quic(a: &Multiaddr) -> bool {
    a.to_string().contains("/quic-v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_found_through_the_dht_are_reached_over_quic() {
    let registry = start(both()).await;
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        let peer = start(both()).await;
        let mut incoming = peer.accept(PROBE).unwrap();
        tokio::spawn(async move { while incoming.next().await.is_some() {} });
        // Each peer dials the registry: the registry learns its addresses from identify only.
        peer.add_addresses(registry.peer_id(), registry.listen_addrs())
            .await
            .unwrap();
        timeout(STEP, peer.connect(registry.peer_id()))
            .await
            .unwrap()
            .unwrap();
        peers.push(peer);
    }
    let a = start(both()).await;
    a.add_addresses(registry.peer_id(), registry.listen_addrs())
        .await
        .unwrap();
    timeout(STEP, a.connect(registry.peer_id()))
        .await
        .unwrap()
        .unwrap();
    for peer in &peers {
        let id = peer.peer_id();
        // Identify runs right after each connection; give the registry a bounded moment.
        let mut reached = false;
        for _ in 0..50 {
            if let Ok(Ok(stream)) = timeout(Duration::from_secs(5), a.open_stream(id, PROBE)).await
            {
                drop(stream);
                reached = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(reached, "A never reached {id} through the DHT");
    }
    for peer in &peers {
        let addrs = a.connected_addresses(peer.peer_id()).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs.iter().all(is_quic),
            "a DHT-found peer was reached over {addrs:?}"
        );
    }
    for t in peers.into_iter().chain([a, registry]) {
        t.shutdown().await;
    }
}
