//! Three in-process registry nodes (real QUIC on loopback, real SQLite, real Raft) elect a
//! leader and serve a majority-signed directory snapshot.

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use braid_node::RegistryNode;
use braid_node::config::{RegistryConfig, RegistryEntry};
use braid_node::registry_node::RegistryTimings;
use braid_transport::Identity;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_registries_elect_a_leader_and_sign_a_snapshot() {
    let data = tempfile::tempdir().expect("tempdir");
    let ids: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
    let entries: Vec<RegistryEntry> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let ip = Ipv4Addr::new(127, 0, 2, 1 + i as u8);
            let port = UdpSocket::bind((ip, 0))
                .and_then(|s| s.local_addr())
                .expect("port")
                .port();
            RegistryEntry {
                peer: id.peer_id().to_string(),
                address: format!("/ip4/{ip}/udp/{port}/quic-v1"),
            }
        })
        .collect();
    let mut nodes = Vec::new();
    for (i, id) in ids.into_iter().enumerate() {
        let cfg = RegistryConfig {
            data_dir: data.path().join(format!("r{i}")),
            listen: vec![entries[i].address.clone()],
            registries: entries.clone(),
            snapshot_interval_secs: 1,
            snapshot_validity_secs: 600,
            // Everything runs on loopback.
            allow_private_addresses: true,
            ..RegistryConfig::default()
        };
        let timings = RegistryTimings::from_config(&cfg);
        nodes.push(RegistryNode::start(&cfg, id, timings).await.expect("start"));
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    loop {
        let leaders = nodes.iter().filter(|n| n.is_leader()).count();
        let signed = nodes.iter().filter(|n| n.snapshot().is_some()).count();
        if leaders == 1 && signed == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "leaders {leaders}, serving a snapshot {signed}: {:?}",
            nodes.iter().map(|n| n.raft_status()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "leader and a signed snapshot on all three after {:?}",
        started.elapsed()
    );
    for n in &nodes {
        let s = n.snapshot().expect("snapshot");
        assert!(s.signers().len() >= 2, "a majority signed");
    }
    for n in &nodes {
        n.shutdown().await;
    }
}
