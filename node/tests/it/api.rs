//! The local HTTP API of real nodes (a relay on loopback QUIC, a one-member registry group
//! with real Raft and SQLite): cookie authentication (no token, wrong token, the right one),
//! the token file's mode, routes opened by config, the version's commit, the rate limit, the
//! event stream and its bound, and a non-loopback address refused.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use braid_node::api::{API_ADDR_FILE, API_TOKEN_FILE, MAX_SSE_CLIENTS, Status, client};
use braid_node::config::{RegistryConfig, RegistryEntry, Validate};
use braid_node::{RegistryNode, RelayConfig, RelayNode};
use braid_transport::Identity;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn relay_config(dir: &Path) -> RelayConfig {
    RelayConfig {
        nickname: "apitest".into(),
        data_dir: dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into()],
        ..RelayConfig::default()
    }
}

async fn start_relay(cfg: &RelayConfig) -> (RelayNode, SocketAddr, String) {
    let node = RelayNode::from_config(cfg).await.expect("relay starts");
    let addr = node.api_addr().expect("the API runs");
    let token = client::read_token(&cfg.data_dir.join(API_TOKEN_FILE)).unwrap();
    (node, addr, token)
}

#[tokio::test]
async fn the_token_is_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr, token) = start_relay(&relay_config(dir.path())).await;

    // The address file names the bound port; the token is 32 random bytes in hex.
    assert_eq!(client::read_api_addr(dir.path()).unwrap(), addr);
    assert!(addr.ip().is_loopback());
    assert_eq!(token.len(), 64);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join(API_TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "token file mode {mode:o}");
    }

    for path in [
        "/v1/health",
        "/v1/version",
        "/v1/status",
        "/",
        "/v1/circuits",
    ] {
        let none = client::get(addr, path, None).await.unwrap();
        assert_eq!(none.status, 401, "{path} without a token: {}", none.body);
        assert!(none.body.contains("error"), "{path}: {}", none.body);
        let mut wrong = token.clone();
        wrong.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
        let bad = client::get(addr, path, Some(&wrong)).await.unwrap();
        assert_eq!(bad.status, 401, "{path} with a wrong token");
        let short = client::get(addr, path, Some(&token[..63])).await.unwrap();
        assert_eq!(short.status, 401, "{path} with a truncated token");
    }
    // The query form is accepted only where a browser needs it.
    let q = client::get(addr, &format!("/v1/status?token={token}"), None)
        .await
        .unwrap();
    assert_eq!(q.status, 401, "?token= must not open /v1/status");
    let page = client::get(addr, &format!("/?token={token}"), None)
        .await
        .unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<canvas"), "the status page");

    let health = client::get(addr, "/v1/health", Some(&token)).await.unwrap();
    assert_eq!(
        (health.status, health.body.as_str()),
        (200, r#"{"ok":true}"#)
    );
    let version = client::get(addr, "/v1/version", Some(&token))
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&version.body).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let commit = v["commit"].as_str().unwrap();
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "commit {commit:?}"
    );

    let status = client::get(addr, "/v1/status", Some(&token)).await.unwrap();
    assert_eq!(status.status, 200);
    let s: Status = serde_json::from_str(&status.body).unwrap();
    assert_eq!(s.role, "relay");
    assert_eq!(s.nickname.as_deref(), Some("apitest"));
    assert_eq!(s.peer_id, Some(node.transport().peer_id().to_string()));
    assert_eq!(s.reachability.as_deref(), Some("advertised"));
    assert_eq!(s.upnp.as_deref(), Some("off"));
    assert!(!s.advertised_addresses.is_empty());
    assert_eq!(s.circuits_open, Some(0));
    assert!(s.raft.is_none() && s.accounting.is_none());
    // A relay builds no circuits of its own.
    let c = client::get(addr, "/v1/circuits", Some(&token))
        .await
        .unwrap();
    assert_eq!(c.status, 404);
    // The relay's own metrics, behind the token.
    let m = client::get(addr, "/metrics", Some(&token)).await.unwrap();
    assert_eq!(m.status, 200);
    assert!(m.body.ends_with("# EOF\n"));

    // A restart writes a new token: the old one stops working.
    node.shutdown().await;
    let (node, addr, token2) = start_relay(&relay_config(dir.path())).await;
    assert_ne!(token, token2);
    assert_eq!(
        client::get(addr, "/v1/status", Some(&token))
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        client::get(addr, "/v1/status", Some(&token2))
            .await
            .unwrap()
            .status,
        200
    );
    node.shutdown().await;
    // After shutdown nothing answers.
    assert!(
        client::get(addr, "/v1/health", Some(&token2))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn health_and_metrics_open_only_when_configured_and_metrics_has_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig {
        api_open_health: true,
        api_open_metrics: true,
        ..relay_config(dir.path())
    };
    let (node, addr, token) = start_relay(&cfg).await;
    let h = client::get(addr, "/v1/health", None).await.unwrap();
    assert_eq!((h.status, h.body.as_str()), (200, r#"{"ok":true}"#));
    assert_eq!(
        client::get(addr, "/v1/status", None).await.unwrap().status,
        401
    );
    node.api_state()
        .unwrap()
        .set_metrics(std::sync::Arc::new(|| "# EOF\n".to_string()));
    let m = client::get(addr, "/metrics", None).await.unwrap();
    assert_eq!((m.status, m.body.as_str()), (200, "# EOF\n"));
    assert_eq!(
        m.content_type.as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(
        client::get(addr, "/metrics", Some(&token))
            .await
            .unwrap()
            .status,
        200
    );
    node.shutdown().await;
}

#[tokio::test]
async fn requests_over_the_rate_limit_answer_429() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig {
        api_requests_per_sec: 1,
        api_burst: 5,
        ..relay_config(dir.path())
    };
    let (node, addr, token) = start_relay(&cfg).await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(
            client::get(addr, "/v1/health", Some(&token))
                .await
                .unwrap()
                .status,
        );
    }
    assert_eq!(&codes[..5], &[200; 5], "{codes:?}");
    assert!(codes[5..].contains(&429), "{codes:?}");
    assert!(codes.iter().all(|c| *c == 200 || *c == 429), "{codes:?}");
    // Requests without the token draw from their own bucket, and get 429 before 401.
    let mut anon = Vec::new();
    for _ in 0..10 {
        anon.push(client::get(addr, "/v1/health", None).await.unwrap().status);
    }
    assert_eq!(&anon[..5], &[401; 5], "{anon:?}");
    assert!(anon[5..].contains(&429), "{anon:?}");
    node.shutdown().await;
}

/// Opens `/v1/events` and returns the stream once its headers and first event arrived, with
/// what was read.
async fn open_events(addr: SocketAddr, token: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /v1/events?token={token} HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !seen.contains("\r\n\r\n")
            || (seen.starts_with("HTTP/1.1 200") && !seen.contains("data:"))
        {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event in 10 s: {seen}"));
    (tcp, seen)
}

#[tokio::test]
async fn events_stream_samples_and_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (node, addr, token) = start_relay(&relay_config(dir.path())).await;
    let mut open = Vec::new();
    for _ in 0..MAX_SSE_CLIENTS {
        let (tcp, seen) = open_events(addr, &token).await;
        assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
        assert!(seen.contains("text/event-stream"), "{seen}");
        assert!(seen.contains("event: sample"), "{seen}");
        assert!(seen.contains("\"bytes_in\""), "{seen}");
        open.push(tcp);
    }
    let (_, refused) = open_events(addr, &token).await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    // Closing one frees its slot.
    drop(open.pop());
    let mut freed = false;
    for _ in 0..50 {
        let (tcp, seen) = open_events(addr, &token).await;
        if seen.starts_with("HTTP/1.1 200") {
            open.push(tcp);
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "a closed stream's slot was never freed");
    // Without the token: 401, also for the stream.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET /v1/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tcp.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 401"));
    node.shutdown().await;
}

#[test]
fn a_non_loopback_api_address_is_refused_unless_allowed() {
    let mut cfg = RelayConfig {
        api_listen: "0.0.0.0:0".parse().unwrap(),
        ..RelayConfig::default()
    };
    let err = cfg
        .validate(Path::new("relay.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("api_listen") && err.contains("api_allow_remote"),
        "{err}"
    );
    cfg.api_allow_remote = true;
    cfg.validate(Path::new("relay.toml")).unwrap();
    let zero = RelayConfig {
        api_requests_per_sec: 0,
        ..RelayConfig::default()
    };
    let err = zero
        .validate(Path::new("relay.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("api_requests_per_sec"), "{err}");
}

#[tokio::test]
async fn a_registry_reports_its_raft_state() {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::generate();
    let port = UdpSocket::bind(("127.0.0.1", 0))
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let entry = RegistryEntry {
        peer: id.peer_id().to_string(),
        address: format!("/ip4/127.0.0.1/udp/{port}/quic-v1"),
    };
    let cfg = RegistryConfig {
        data_dir: dir.path().to_path_buf(),
        listen: vec![entry.address.clone()],
        registries: vec![entry],
        snapshot_interval_secs: 1,
        snapshot_validity_secs: 3,
        allow_private_addresses: true,
        ..RegistryConfig::default()
    };
    let timings = braid_node::registry_node::RegistryTimings::from_config(&cfg);
    let node = RegistryNode::start(&cfg, id, timings).await.unwrap();
    let addr = node.start_api(&cfg).await.unwrap();
    assert_eq!(node.api_addr(), Some(addr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(API_ADDR_FILE))
            .unwrap()
            .trim(),
        addr.to_string()
    );
    let token = client::read_token(&dir.path().join(API_TOKEN_FILE)).unwrap();
    let mut last = None;
    for _ in 0..100 {
        let a = client::get(addr, "/v1/status", Some(&token)).await.unwrap();
        let s: Status = serde_json::from_str(&a.body).unwrap();
        assert_eq!(s.role, "registry");
        let raft = s.raft.clone().unwrap();
        if raft.is_leader {
            assert_eq!(raft.leader, Some(raft.id));
            assert!(raft.term >= 1);
            assert_eq!(raft.members, 1);
            last = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.is_some(), "the one-member group never elected itself");
    node.shutdown().await;
}

#[tokio::test]
async fn a_relay_reports_its_budget_and_serves_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = RelayConfig {
        accounting_max: Some(10_000_000),
        ..relay_config(dir.path())
    };
    let (node, addr, token) = start_relay(&cfg).await;
    let status = client::get(addr, "/v1/status", Some(&token)).await.unwrap();
    let s: Status = serde_json::from_str(&status.body).unwrap();
    let a = s.accounting.expect("a budget is configured");
    assert_eq!(a.max_bytes, 10_000_000);
    assert_eq!(a.used_bytes, Some(0), "nothing relayed yet");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(a.period_end > now, "the period ends in the future");
    // The node's own metrics, not a stub, behind the token.
    let m = client::get(addr, "/metrics", Some(&token)).await.unwrap();
    assert_eq!(m.status, 200);
    assert!(m.body.contains("braid_relay_cells_total"), "{}", m.body);
    assert!(
        m.body
            .contains("braid_relay_accounting_limit_bytes 10000000")
    );
    assert!(m.body.ends_with("# EOF\n"));
    node.shutdown().await;
}
