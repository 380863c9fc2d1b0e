//! `NodeMetrics` against real nodes: a network of 8 relays (3 exits) and a proxy on loopback
//! (real QUIC, real circuits, real strands) carries a download through the SOCKS5 port, and
//! three real registries (Raft, SQLite) list a relay that publishes to them. Every scrape
//! must parse as strict OpenMetrics (`support::openmetrics`), the counters must move with
//! the traffic, and no label or line may carry a peer id, an address or the target name.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use braid_directory::Directory;
use braid_node::config::{RegistryConfig, RegistryEntry, parse_registries};
use braid_node::registry_node::RegistryTimings;
use braid_node::{NodeMetrics, ProxyConfig, ProxyNode, RegistryNode, RelayConfig, RelayNode};
use braid_relay::service::Faults;
use braid_transport::Identity;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::support::openmetrics::{Exposition, parse};

/// The body the test HTTP server answers every request with.
const BODY_LEN: usize = 512 * 1024;
/// A target name that must never show up in metrics.
const SECRET_HOST: &str = "braid-metrics-secret-target.invalid";

fn relay_config(i: usize, exit: bool, data: &Path) -> RelayConfig {
    let ip = format!("127.0.4.{}", 10 + i);
    RelayConfig {
        nickname: format!("m{i}"),
        data_dir: data.join(format!("relay{i}")),
        listen: vec![format!("/ip4/{ip}/udp/0/quic-v1")],
        exit_policy: if exit {
            vec!["accept *:*".into()]
        } else {
            vec!["reject *:*".into()]
        },
        bandwidth: 10_000_000,
        accounting_max: Some(1_000_000_000_000),
        ..RelayConfig::default()
    }
}

/// The HTTP answer's head.
fn head() -> String {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY_LEN}\r\n\r\n")
}

/// Answers each connection's request with `BODY_LEN` bytes and closes it.
async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut req = Vec::new();
                let mut buf = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 8192 {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp.write_all(head().as_bytes()).await;
                let _ = tcp.write_all(&vec![0x5a; BODY_LEN]).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

/// A SOCKS5 CONNECT (no auth) to `target` (`ATYP` and address bytes); returns the stream
/// after a success reply, or the reply code.
async fn socks_connect(proxy: SocketAddr, atyp_addr: &[u8], port: u16) -> Result<TcpStream, u8> {
    let mut tcp = TcpStream::connect(proxy).await.unwrap();
    tcp.write_all(&[5, 1, 0]).await.unwrap();
    let mut hello = [0u8; 2];
    tcp.read_exact(&mut hello).await.unwrap();
    assert_eq!(hello, [5, 0]);
    let mut request = vec![5, 1, 0];
    request.extend_from_slice(atyp_addr);
    request.extend_from_slice(&port.to_be_bytes());
    tcp.write_all(&request).await.unwrap();
    let mut reply = [0u8; 10];
    tcp.read_exact(&mut reply[..4]).await.map_err(|_| 0xffu8)?;
    if reply[1] != 0 {
        return Err(reply[1]);
    }
    // IPv4 bound address (the proxy always answers 0.0.0.0:0).
    tcp.read_exact(&mut reply[4..10]).await.map_err(|_| 0xfe)?;
    Ok(tcp)
}

/// Downloads the body through the proxy from `http`; returns the bytes received.
async fn download(proxy: SocketAddr, http: SocketAddr) -> usize {
    let SocketAddr::V4(v4) = http else {
        panic!("IPv4 server expected")
    };
    let mut target = vec![1];
    target.extend_from_slice(&v4.ip().octets());
    let mut tcp = socks_connect(proxy, &target, v4.port())
        .await
        .expect("SOCKS connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), tcp.read_to_end(&mut got))
        .await
        .expect("download within 60 s")
        .unwrap();
    got.len()
}

/// The API serves one `NodeMetrics` from many tasks (`Arc<NodeMetrics>` in an axum handler).
const _: fn() = || {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<NodeMetrics>();
};

fn scrape(m: &NodeMetrics) -> Exposition {
    let text = m.encode();
    parse(&text).unwrap_or_else(|e| panic!("not OpenMetrics: {e}\n{text}"))
}

/// Neither the text nor any label value names a peer, an address or the target.
fn assert_private(text: &str, forbidden: &[String]) {
    let e = parse(text).unwrap();
    for needle in forbidden {
        assert!(!text.contains(needle.as_str()), "metrics contain {needle}");
        for v in e.label_values() {
            assert!(
                !v.contains(needle.as_str()),
                "label value {v} contains {needle}"
            );
        }
    }
    for v in e.label_values() {
        assert!(
            v.parse::<std::net::IpAddr>().is_err() && !v.contains("127.0."),
            "label value {v} looks like an address"
        );
        assert!(
            !v.starts_with("12D3Koo"),
            "label value {v} looks like a peer id"
        );
    }
}

async fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_and_proxy_counters_move_with_a_download_and_name_no_one() {
    let data = tempfile::tempdir().unwrap();
    let mut relays = Vec::new();
    for i in 0..8 {
        let cfg = relay_config(i, i < 3, data.path());
        let onion = Identity::generate().secret_bytes();
        let relay = RelayNode::start(&cfg, Identity::generate(), onion, Faults::default())
            .await
            .expect("relay");
        relays.push(relay);
    }
    let directory =
        Directory::new(relays.iter().map(|r| r.descriptor().clone()).collect()).unwrap();
    let proxy_cfg = ProxyConfig {
        socks_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: data.path().join("proxy"),
        ..ProxyConfig::default()
    };
    let proxy = ProxyNode::start(&proxy_cfg, &directory)
        .await
        .expect("proxy");
    let relay_metrics: Vec<NodeMetrics> = relays.iter().map(NodeMetrics::for_relay).collect();
    let proxy_metrics = NodeMetrics::for_proxy(&proxy);
    let http = http_server().await;

    let relays_before: Vec<Exposition> = relay_metrics.iter().map(scrape).collect();
    let proxy_before = scrape(&proxy_metrics);
    assert_eq!(proxy_before.value("braid_proxy_streams_total", &[]), 0.0);
    assert_eq!(proxy_before.value("braid_directory_relays", &[]), 8.0);
    for r in &relays_before {
        assert_eq!(
            r.value("braid_relay_cells_total", &[("direction", "in")]),
            0.0
        );
        assert_eq!(r.types["braid_relay_handshake_seconds"], "histogram");
        assert_eq!(r.units["braid_relay_relayed_bytes"], "bytes");
        assert_eq!(r.value("braid_relay_accounting_limit_bytes", &[]), 1e12);
        assert_eq!(r.value("braid_relay_upnp_mapped", &[]), 0.0);
        for reason in [
            "circuit_limit",
            "peer_limit",
            "hibernating",
            "measure_limit",
        ] {
            assert_eq!(
                r.value("braid_relay_circuits_refused_total", &[("reason", reason)]),
                0.0
            );
        }
    }

    assert_eq!(
        download(proxy.socks_addr(), http).await,
        head().len() + BODY_LEN
    );
    // A stream to a name that does not resolve: it fails, and the name must not be counted
    // anywhere by name.
    let mut name = vec![3, SECRET_HOST.len() as u8];
    name.extend_from_slice(SECRET_HOST.as_bytes());
    let _ = tokio::time::timeout(
        Duration::from_secs(20),
        socks_connect(proxy.socks_addr(), &name, 80),
    )
    .await;
    // The braided stream's report is recorded when its engine ends, just after the close.
    let stats = proxy.manager().stats().clone();
    wait_until(
        "the proxy records the braided stream",
        Duration::from_secs(10),
        || {
            stats
                .stream_bytes_received
                .load(std::sync::atomic::Ordering::Relaxed)
                > 0
        },
    )
    .await;

    let proxy_after = scrape(&proxy_metrics);
    assert!(proxy_after.value("braid_proxy_streams_total", &[]) >= 1.0);
    assert!(proxy_after.value("braid_proxy_circuits_built_total", &[]) >= 3.0);
    assert!(proxy_after.value("braid_proxy_circuit_build_seconds_count", &[]) >= 3.0);
    assert!(
        proxy_after.value(
            "braid_proxy_stream_bytes_total",
            &[("direction", "received")]
        ) >= BODY_LEN as f64
    );
    assert!(proxy_after.value("braid_proxy_stream_bytes_total", &[("direction", "sent")]) > 0.0);

    let mut carried = 0;
    let mut handshakes = 0.0;
    for (m, before) in relay_metrics.iter().zip(&relays_before) {
        let after = scrape(m);
        for dir in ["in", "out"] {
            let cells = |e: &Exposition| e.value("braid_relay_cells_total", &[("direction", dir)]);
            let bytes =
                |e: &Exposition| e.value("braid_relay_relayed_bytes_total", &[("direction", dir)]);
            assert!(cells(&after) >= cells(before));
            assert_eq!(bytes(&after), cells(&after) * braid_relay::CELL_LEN as f64);
        }
        if after.value("braid_relay_cells_total", &[("direction", "out")]) > 0.0 {
            carried += 1;
        }
        handshakes += after.value("braid_relay_handshake_seconds_count", &[]);
        assert!(
            after.value("braid_relay_accounting_used_bytes", &[]) > 0.0 || {
                after.value("braid_relay_cells_total", &[("direction", "out")]) == 0.0
            }
        );
    }
    // K = 3 strands of 3 hops: at least 3 guards, 3 middles and an exit carried cells.
    assert!(carried >= 4, "only {carried} relays carried cells");
    assert!(handshakes >= 9.0, "{handshakes} hop handshakes");

    let mut forbidden: Vec<String> = relays
        .iter()
        .map(|r| r.transport().peer_id().to_string())
        .collect();
    forbidden.extend([
        SECRET_HOST.to_string(),
        http.to_string(),
        "127.0.".to_string(),
    ]);
    for m in relay_metrics.iter().chain([&proxy_metrics]) {
        assert_private(&m.encode(), &forbidden);
    }
    proxy.shutdown().await;
    for r in &relays {
        r.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_report_one_leader_and_count_a_publish() {
    let data = tempfile::tempdir().unwrap();
    let ids: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
    let entries: Vec<RegistryEntry> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let ip = Ipv4Addr::new(127, 0, 5, 1 + i as u8);
            let port = UdpSocket::bind((ip, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            RegistryEntry {
                peer: id.peer_id().to_string(),
                address: format!("/ip4/{ip}/udp/{port}/quic-v1"),
            }
        })
        .collect();
    let mut registries = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let cfg = RegistryConfig {
            data_dir: data.path().join(format!("r{i}")),
            listen: vec![entries[i].address.clone()],
            registries: entries.clone(),
            snapshot_interval_secs: 1,
            snapshot_validity_secs: 600,
            allow_private_addresses: true,
            ..RegistryConfig::default()
        };
        let timings = RegistryTimings::from_config(&cfg);
        registries.push(
            RegistryNode::start(&cfg, id.clone(), timings)
                .await
                .unwrap(),
        );
    }
    let metrics: Vec<NodeMetrics> = registries.iter().map(NodeMetrics::for_registry).collect();
    let leaders = |ms: &[NodeMetrics]| -> f64 {
        ms.iter()
            .map(|m| scrape(m).value("braid_registry_raft_is_leader", &[]))
            .sum()
    };
    wait_until("one registry leads", Duration::from_secs(30), || {
        leaders(&metrics) == 1.0 && registries.iter().all(|r| r.snapshot().is_some())
    })
    .await;

    let relay_cfg = relay_config(0, false, data.path());
    let relay = RelayNode::start(
        &relay_cfg,
        Identity::generate(),
        Identity::generate().secret_bytes(),
        Faults::default(),
    )
    .await
    .unwrap();
    let list = parse_registries(Path::new("<test>"), "registries", &entries).unwrap();
    relay
        .join_registries(&list, Duration::from_secs(600), Duration::from_secs(1))
        .await
        .unwrap();
    let relay_metrics = NodeMetrics::for_relay(&relay);
    let accepted = |ms: &[NodeMetrics]| -> f64 {
        ms.iter()
            .map(|m| scrape(m).value("braid_registry_publishes_total", &[("result", "accepted")]))
            .sum()
    };
    wait_until(
        "a registry accepts the relay",
        Duration::from_secs(60),
        || accepted(&metrics) >= 1.0,
    )
    .await;
    wait_until(
        "the relay follows a snapshot listing it",
        Duration::from_secs(60),
        || {
            let e = scrape(&relay_metrics);
            e.value("braid_relay_publish_status", &[("status", "published")]) == 1.0
                && e.value("braid_directory_relays", &[]) >= 1.0
        },
    )
    .await;

    assert_eq!(leaders(&metrics), 1.0, "exactly one leader");
    for m in &metrics {
        let e = scrape(m);
        assert!(e.value("braid_registry_raft_term", &[]) >= 1.0);
        assert!(e.value("braid_registry_raft_last_applied_index", &[]) >= 1.0);
        assert!(
            e.value("braid_registry_raft_last_log_index", &[])
                >= e.value("braid_registry_raft_last_applied_index", &[])
        );
        assert_eq!(e.value("braid_registry_raft_members", &[]), 3.0);
        assert!(e.has("braid_directory_age_seconds"));
        assert_eq!(
            e.value(
                "braid_registry_publishes_total",
                &[("result", "wrong_peer")]
            ),
            0.0
        );
    }
    let relay_scrape = scrape(&relay_metrics);
    assert!(relay_scrape.value("braid_directory_age_seconds", &[]) < 600.0);
    let mut forbidden: Vec<String> = ids.iter().map(|i| i.peer_id().to_string()).collect();
    forbidden.push(relay.transport().peer_id().to_string());
    forbidden.push("127.0.".into());
    for m in metrics.iter().chain([&relay_metrics]) {
        assert_private(&m.encode(), &forbidden);
    }
    relay.shutdown().await;
    for r in &registries {
        r.shutdown().await;
    }
}
