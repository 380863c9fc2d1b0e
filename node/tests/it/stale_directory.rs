//! A proxy stops building circuits once its directory snapshot is past `valid_until` plus
//! `stale_directory_grace_secs`, and builds again when a fresh snapshot arrives (issue 14
//! (c)). Three real registries (QUIC on loopback, SQLite, Raft) sign snapshots valid 3 s; they
//! are shut down, the proxy's snapshot goes stale, they come back, it is fresh again.

use std::net::{Ipv4Addr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use braid_node::config::{RegistryConfig, RegistryEntry, parse_registries};
use braid_node::registry_node::RegistryTimings;
use braid_node::{ProxyConfig, ProxyNode, RegistryNode};
use braid_transport::Identity;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts the registries; a restarted one may find its port or files not released yet by
/// the previous run, so each start is tried a few times (bounded).
async fn start_registries(cfgs: &[RegistryConfig], ids: &[Identity]) -> Vec<RegistryNode> {
    let mut nodes = Vec::new();
    for (cfg, id) in cfgs.iter().zip(ids) {
        let timings = RegistryTimings::from_config(cfg);
        let mut attempt = 0;
        let node = loop {
            match RegistryNode::start(cfg, id.clone(), timings.clone()).await {
                Ok(node) => break node,
                Err(e) if attempt < 20 => {
                    eprintln!("registry start failed, retrying: {e}");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("registry start: {e}"),
            }
        };
        nodes.push(node);
    }
    nodes
}

/// A SOCKS5 CONNECT to example.org:80; returns the reply code.
async fn socks_reply(proxy: &ProxyNode) -> u8 {
    let mut tcp = TcpStream::connect(proxy.socks_addr()).await.unwrap();
    tcp.write_all(&[5, 1, 0]).await.unwrap();
    let mut hello = [0u8; 2];
    tcp.read_exact(&mut hello).await.unwrap();
    assert_eq!(hello, [5, 0]);
    let host = b"example.org";
    let mut request = vec![5, 1, 0, 3, host.len() as u8];
    request.extend_from_slice(host);
    request.extend_from_slice(&80u16.to_be_bytes());
    tcp.write_all(&request).await.unwrap();
    let mut reply = [0u8; 4];
    tcp.read_exact(&mut reply).await.unwrap();
    reply[1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_directory_stops_new_circuits_until_a_fresh_one_arrives() {
    let data = tempfile::tempdir().expect("tempdir");
    let ids: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
    let entries: Vec<RegistryEntry> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let ip = Ipv4Addr::new(127, 0, 3, 1 + i as u8);
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
    let cfgs: Vec<RegistryConfig> = (0..3)
        .map(|i| RegistryConfig {
            data_dir: data.path().join(format!("r{i}")),
            listen: vec![entries[i].address.clone()],
            registries: entries.clone(),
            snapshot_interval_secs: 1,
            snapshot_validity_secs: 3,
            allow_private_addresses: true,
            ..RegistryConfig::default()
        })
        .collect();
    let registries = start_registries(&cfgs, &ids).await;

    let proxy_cfg = ProxyConfig {
        socks_listen: "127.0.0.1:0".parse().unwrap(),
        registries: entries.clone(),
        stale_directory_grace_secs: 1,
        ..ProxyConfig::default()
    };
    let list = parse_registries(Path::new("<test>"), "registries", &entries).unwrap();
    let proxy = ProxyNode::start_with_registries(
        &proxy_cfg,
        &list,
        Duration::from_secs(1),
        Duration::from_secs(60),
    )
    .await
    .expect("proxy");
    let manager = proxy.manager().clone();
    assert_eq!(manager.directory_stale(), None, "fresh at first");

    // No registry answers any more: the 3 s snapshot ends, then the 1 s grace.
    for r in &registries {
        r.shutdown().await;
    }
    drop(registries);
    wait_until(
        "the proxy calls its directory stale",
        Duration::from_secs(30),
        || manager.directory_stale().is_some(),
    )
    .await;
    let why = manager.directory_stale().unwrap();
    assert!(why.contains("the directory is stale"), "{why}");
    assert!(why.contains("waiting for a fresh snapshot"), "{why}");
    // A new stream is refused with SOCKS "general failure" (0x01).
    assert_eq!(socks_reply(&proxy).await, 1);

    // The registries come back (same keys, same data): a fresh snapshot allows circuits again.
    let registries = start_registries(&cfgs, &ids).await;
    wait_until(
        "a fresh snapshot clears the stale state",
        Duration::from_secs(60),
        || manager.directory_stale().is_none(),
    )
    .await;
    proxy.shutdown().await;
    for r in &registries {
        r.shutdown().await;
    }
}
