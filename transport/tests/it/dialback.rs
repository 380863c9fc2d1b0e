//! The dial-back server and client over real QUIC and TCP on loopback: confirmation, an
//! unreachable address, a refused IP, bad requests, and each bound.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{
    future::Future,
    net::{TcpListener, UdpSocket},
    time::{Duration, Instant},
};

use braid_transport::{
    Identity, Multiaddr, PeerId, Transport, TransportConfig,
    dialback::{
        self, DialbackError, DialbackServer, DialbackServerConfig, Verdict,
        wire::{Frame, MAX_BODY_LEN},
    },
};
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::timeout;

/// Upper bound on any single test step.
const STEP: Duration = Duration::from_secs(30);
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

async fn bounded<T>(future: impl Future<Output = T>) -> T {
    timeout(STEP, future).await.expect("test step timed out")
}

async fn node(listen: &[&str]) -> Transport {
    let config = TransportConfig {
        listen: listen.iter().map(|a| addr(a)).collect(),
        ..TransportConfig::default()
    };
    bounded(Transport::start(Identity::generate(), config))
        .await
        .unwrap()
}

/// A listening node on 127.0.0.1 (QUIC and TCP).
async fn listening_node() -> Transport {
    node(&["/ip4/127.0.0.1/udp/0/quic-v1", "/ip4/127.0.0.1/tcp/0"]).await
}

fn server_config() -> DialbackServerConfig {
    DialbackServerConfig {
        probe_timeout: PROBE_TIMEOUT,
        ..DialbackServerConfig::default()
    }
}

/// A server node with a dial-back server, and a requester that knows how to reach it.
async fn pair(config: DialbackServerConfig) -> (Transport, DialbackServer, Transport) {
    let server = listening_node().await;
    let service = DialbackServer::start(&server, config).unwrap();
    let requester = listening_node().await;
    requester
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    (server, service, requester)
}

async fn ask(
    requester: &Transport,
    server: &Transport,
    addresses: Vec<Multiaddr>,
) -> Result<Vec<Verdict>, DialbackError> {
    bounded(dialback::request_dialback(
        requester,
        server.peer_id(),
        addresses,
        dialback::DEFAULT_REQUEST_TIMEOUT,
    ))
    .await
}

/// A UDP port on 127.0.0.1 that swallows datagrams (bound, never answers) while the socket
/// lives: a QUIC dial there times out.
fn silent_quic() -> (UdpSocket, Multiaddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, addr(&format!("/ip4/127.0.0.1/udp/{port}/quic-v1")))
}

/// A TCP port on 127.0.0.1 where nothing listens (connections are refused).
fn closed_tcp() -> Multiaddr {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    addr(&format!("/ip4/127.0.0.1/tcp/{port}"))
}

fn refused_because(verdict: &Verdict, why: &str) -> bool {
    matches!(verdict, Verdict::Refused(reason) if reason.as_str().contains(why))
}

#[tokio::test]
async fn a_listening_node_is_confirmed_on_each_address() {
    let (server, _service, requester) = pair(server_config()).await;
    let claimed = requester.listen_addrs();
    assert_eq!(claimed.len(), 2, "{claimed:?}");
    // With the /p2p suffix too.
    let mut with_p2p = claimed.clone();
    with_p2p.push(claimed[0].clone().with_p2p(requester.peer_id()).unwrap());
    let verdicts = ask(&requester, &server, with_p2p).await.unwrap();
    assert_eq!(verdicts, vec![Verdict::Reachable; 3]);

    // The probe checks who answers: another node's address, from the same IP, is not ours.
    let other = listening_node().await;
    let verdicts = ask(&requester, &server, other.listen_addrs())
        .await
        .unwrap();
    for verdict in &verdicts {
        assert!(matches!(verdict, Verdict::Unreachable(_)), "{verdict}");
    }
    println!("another node's address: {}", verdicts[0]);

    // The probe alone, as a registry would use it.
    let quic = quic_of(&requester);
    let started = Instant::now();
    let verdict = bounded(dialback::probe(
        requester.peer_id(),
        quic.clone(),
        PROBE_TIMEOUT,
    ))
    .await;
    assert_eq!(verdict, Verdict::Reachable);
    println!("one QUIC probe on loopback: {:?}", started.elapsed());
    let stranger = PeerId::random();
    let verdict = bounded(dialback::probe(stranger, quic, PROBE_TIMEOUT)).await;
    assert!(matches!(verdict, Verdict::Unreachable(_)), "{verdict}");
}

#[tokio::test]
async fn an_address_where_nothing_listens_is_unreachable_within_the_timeout() {
    let (server, _service, requester) = pair(server_config()).await;
    let (_socket, silent) = silent_quic();
    let started = Instant::now();
    let verdicts = ask(&requester, &server, vec![silent, closed_tcp()])
        .await
        .unwrap();
    let elapsed = started.elapsed();
    println!(
        "verdicts after {elapsed:?}: {} / {}",
        verdicts[0], verdicts[1]
    );
    for verdict in &verdicts {
        assert!(matches!(verdict, Verdict::Unreachable(_)), "{verdict}");
    }
    assert!(
        elapsed < PROBE_TIMEOUT + Duration::from_secs(3),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn an_address_of_another_ip_is_refused_unless_allowed() {
    let (server, _service, requester) = pair(server_config()).await;
    let port = quic_of(&requester);
    let elsewhere = addr(&format!("/ip4/127.0.0.2/udp/{}/quic-v1", udp_port(&port)));
    let verdicts = ask(&requester, &server, vec![elsewhere.clone(), port])
        .await
        .unwrap();
    assert!(
        refused_because(
            &verdicts[0],
            "is not the address the request came from (127.0.0.1)"
        ),
        "{}",
        verdicts[0]
    );
    assert_eq!(verdicts[1], Verdict::Reachable);
    // Addresses that are not plain IP + QUIC/TCP are refused without a dial.
    let verdicts = ask(
        &requester,
        &server,
        vec![addr("/dns4/localhost/tcp/1"), addr("/ip4/0.0.0.0/tcp/1")],
    )
    .await
    .unwrap();
    assert!(
        refused_because(&verdicts[0], "expected /ip4"),
        "{}",
        verdicts[0]
    );
    assert!(
        refused_because(&verdicts[1], "not a unicast"),
        "{}",
        verdicts[1]
    );

    // A server configured to allow any IP dials it (and finds nothing there).
    let (server, _service, requester) = pair(DialbackServerConfig {
        allow_any_ip: true,
        ..server_config()
    })
    .await;
    let verdicts = ask(&requester, &server, vec![elsewhere]).await.unwrap();
    assert!(
        matches!(verdicts[0], Verdict::Unreachable(_)),
        "{}",
        verdicts[0]
    );
}

fn quic_of(node: &Transport) -> Multiaddr {
    node.listen_addrs()
        .into_iter()
        .find(|a| a.to_string().contains("/quic-v1"))
        .unwrap()
}

fn udp_port(address: &Multiaddr) -> u16 {
    let text = address.to_string();
    let rest = text.split("/udp/").nth(1).unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

/// Sends `bytes` on a fresh dial-back stream and returns the server's one frame.
async fn raw_exchange(requester: &Transport, server: &Transport, bytes: &[u8]) -> Frame {
    let mut stream = bounded(requester.open_stream(server.peer_id(), dialback::PROTOCOL))
        .await
        .unwrap();
    stream.write_all(bytes).await.unwrap();
    stream.flush().await.unwrap();
    let mut answer = Vec::new();
    bounded(stream.read_to_end(&mut answer)).await.unwrap();
    Frame::decode(&answer).unwrap().0
}

fn rejected(frame: &Frame, why: &str) {
    match frame {
        Frame::Error(reason) => assert!(reason.as_str().contains(why), "{reason}"),
        other => panic!("expected an Error frame about {why:?}, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_requests_get_a_clear_error_and_the_server_keeps_serving() {
    let (server, _service, requester) = pair(DialbackServerConfig {
        request_timeout: Duration::from_secs(1),
        ..server_config()
    })
    .await;
    let oversized = u16::try_from(MAX_BODY_LEN + 1).unwrap().to_be_bytes();
    let cases: [(&[u8], &str); 6] = [
        (&[9, 1, 0, 0], "unsupported dial-back version 9"),
        (&[1, 1, 0xff, 0xff], "65535 bytes is over the limit"),
        (&[1, 1, oversized[0], oversized[1]], "is over the limit"),
        (&[1, 1, 0, 1, 0], "request addresses: 0 given"),
        (&[1, 1, 0, 4, 1, 0, 1, 0x7f], "not a valid multiaddr"),
        (&[1, 2, 0, 1, 0], "expected a Request frame, got Response"),
    ];
    for (bytes, why) in cases {
        let frame = raw_exchange(&requester, &server, bytes).await;
        println!("{bytes:02x?} -> {frame:?}");
        rejected(&frame, why);
    }
    // Half a header, then silence: the server gives up after request_timeout.
    let started = Instant::now();
    rejected(
        &raw_exchange(&requester, &server, &[1, 1]).await,
        "no whole request within",
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    // Each failure was reported to the requester's client as such ...
    let err = ask(&requester, &server, Vec::new()).await.unwrap_err();
    assert!(matches!(err, DialbackError::BadRequest(_)), "{err}");
    // ... and the server still serves.
    let verdicts = ask(&requester, &server, requester.listen_addrs())
        .await
        .unwrap();
    assert_eq!(verdicts, vec![Verdict::Reachable; 2]);
}

#[tokio::test]
async fn one_request_at_a_time_per_peer() {
    let (server, _service, requester) = pair(server_config()).await;
    let (_socket, silent) = silent_quic();
    let slow = {
        let (requester, server) = (requester.clone(), server.clone());
        tokio::spawn(async move { ask(&requester, &server, vec![silent]).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let verdicts = ask(&requester, &server, requester.listen_addrs())
        .await
        .unwrap();
    for verdict in &verdicts {
        assert!(refused_because(verdict, "in progress"), "{verdict}");
    }
    let slow = bounded(slow).await.unwrap().unwrap();
    assert!(matches!(slow[0], Verdict::Unreachable(_)), "{}", slow[0]);
    // Once it is done, the same peer is served again.
    let verdicts = ask(&requester, &server, requester.listen_addrs())
        .await
        .unwrap();
    assert_eq!(verdicts, vec![Verdict::Reachable; 2]);
}

#[tokio::test]
async fn probes_beyond_the_limit_are_refused_as_busy() {
    let (server, _service, first) = pair(DialbackServerConfig {
        max_concurrent_probes: 1,
        queue_timeout: Duration::from_millis(300),
        ..server_config()
    })
    .await;
    let second = listening_node().await;
    second
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    let (_socket, silent) = silent_quic();
    let slow = {
        let (first, server) = (first.clone(), server.clone());
        tokio::spawn(async move { ask(&first, &server, vec![silent]).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let verdicts = ask(&second, &server, second.listen_addrs()).await.unwrap();
    for verdict in &verdicts {
        assert!(refused_because(verdict, "server busy"), "{verdict}");
    }
    bounded(slow).await.unwrap().unwrap();
    // The slot is free again; two addresses share it one after the other.
    let verdicts = ask(&second, &server, second.listen_addrs()).await.unwrap();
    assert_eq!(verdicts, vec![Verdict::Reachable; 2]);
}

#[tokio::test]
async fn requests_beyond_the_limit_are_dropped() {
    let (server, _service, first) = pair(DialbackServerConfig {
        max_requests: 1,
        request_timeout: Duration::from_secs(2),
        ..server_config()
    })
    .await;
    // A stream that never sends its request holds the one slot for request_timeout.
    let mut idle = bounded(first.open_stream(server.peer_id(), dialback::PROTOCOL))
        .await
        .unwrap();
    idle.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = listening_node().await;
    second
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    let err = ask(&second, &server, second.listen_addrs())
        .await
        .unwrap_err();
    println!("over the limit: {err}");
    assert!(
        matches!(
            err,
            DialbackError::Io { .. } | DialbackError::Transport { .. }
        ),
        "{err}"
    );
    // After the idle stream timed out the slot is free.
    let mut rest = Vec::new();
    bounded(idle.read_to_end(&mut rest)).await.unwrap();
    rejected(&Frame::decode(&rest).unwrap().0, "no whole request within");
    let verdicts = ask(&second, &server, second.listen_addrs()).await.unwrap();
    assert_eq!(verdicts, vec![Verdict::Reachable; 2]);
}

#[tokio::test]
async fn a_node_without_a_server_is_reported_clearly() {
    let server = listening_node().await;
    let requester = listening_node().await;
    requester
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    let err = ask(&requester, &server, requester.listen_addrs())
        .await
        .unwrap_err();
    println!("{err}");
    assert!(matches!(err, DialbackError::Transport { .. }), "{err}");
}

#[tokio::test]
async fn server_limits_must_not_be_zero() {
    let node = listening_node().await;
    let cases: [(&str, DialbackServerConfig); 5] = [
        (
            "probe_timeout",
            DialbackServerConfig {
                probe_timeout: Duration::ZERO,
                ..server_config()
            },
        ),
        (
            "queue_timeout",
            DialbackServerConfig {
                queue_timeout: Duration::ZERO,
                ..server_config()
            },
        ),
        (
            "request_timeout",
            DialbackServerConfig {
                request_timeout: Duration::ZERO,
                ..server_config()
            },
        ),
        (
            "max_concurrent_probes",
            DialbackServerConfig {
                max_concurrent_probes: 0,
                ..server_config()
            },
        ),
        (
            "max_requests",
            DialbackServerConfig {
                max_requests: 0,
                ..server_config()
            },
        ),
    ];
    for (field, config) in cases {
        let err = DialbackServer::start(&node, config)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    // A valid one starts, and a second one on the same node is refused.
    let _server = DialbackServer::start(&node, server_config()).unwrap();
    let err = DialbackServer::start(&node, server_config()).unwrap_err();
    assert!(err.to_string().contains("already accepting"), "{err}");
}
