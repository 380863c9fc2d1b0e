//! Real swarms on loopback: QUIC and TCP transfers, dial errors, every limit, shutdown.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::time::Duration;

use braid_transport::{Error, Identity, Multiaddr, Stream, Transport, TransportConfig, compat};
use futures::StreamExt as _;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    time::timeout,
};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_4_mib_echo() {
    let server = start(config(vec![quic("127.0.0.1")])).await;
    let client = start(config(vec![])).await;
    assert!(client.listen_addrs().is_empty());
    let addrs = server.listen_addrs();
    assert_eq!(addrs.len(), 1);
    assert!(
        addrs[0].to_string().starts_with("/ip4/127.0.0.1/udp/"),
        "{}",
        addrs[0]
    );
    assert!(
        !addrs[0].to_string().ends_with("/udp/0/quic-v1"),
        "port 0 not resolved"
    );
    serve_echo(&server);
    client.add_addresses(server.peer_id(), addrs).await.unwrap();

    let data = payload(4 << 20);
    let back = bounded(echo(&client, server.peer_id(), &data)).await;
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");

    let used = client.connected_addresses(server.peer_id()).await.unwrap();
    assert_eq!(used.len(), 1);
    assert!(used[0].to_string().ends_with("/quic-v1"), "{}", used[0]);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_only_server_reached_over_tcp() {
    let server = start(config(vec![tcp("127.0.0.1")])).await;
    // The client listens on QUIC only: dialing TCP must not need a TCP listener.
    let client = start(config(vec![quic("127.0.0.1")])).await;
    serve_echo(&server);
    let addrs = server.listen_addrs();
    assert!(addrs[0].to_string().contains("/tcp/"), "{}", addrs[0]);
    client.add_addresses(server.peer_id(), addrs).await.unwrap();

    let data = payload(1 << 20);
    assert!(bounded(echo(&client, server.peer_id(), &data)).await == data);
    let used = client.connected_addresses(server.peer_id()).await.unwrap();
    assert_eq!(used.len(), 1);
    assert!(used[0].to_string().contains("/tcp/"), "{}", used[0]);
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_preferred_over_tcp() {
    let server = start(config(vec![tcp("127.0.0.1"), quic("127.0.0.1")])).await;
    let client = start(config(vec![])).await;
    serve_echo(&server);
    let mut addrs = server.listen_addrs();
    assert_eq!(addrs.len(), 2);
    // TCP given first on purpose.
    addrs.sort_by_key(|a| !a.to_string().contains("/tcp/"));
    client.add_addresses(server.peer_id(), addrs).await.unwrap();
    assert!(bounded(echo(&client, server.peer_id(), b"hello")).await == b"hello");
    let used = client.connected_addresses(server.peer_id()).await.unwrap();
    assert_eq!(used.len(), 1);
    assert!(used[0].to_string().ends_with("/quic-v1"), "{}", used[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_tcp_when_quic_is_silent() {
    let server = start(config(vec![tcp("127.0.0.1")])).await;
    let quic_handshake_timeout = Duration::from_millis(500);
    let client = start(TransportConfig {
        quic_handshake_timeout,
        ..config(vec![])
    })
    .await;
    serve_echo(&server);
    let (_socket, silent_quic) = black_hole();
    let mut addrs = server.listen_addrs();
    addrs.push(silent_quic);
    client.add_addresses(server.peer_id(), addrs).await.unwrap();
    let started = std::time::Instant::now();
    assert!(bounded(echo(&client, server.peer_id(), b"fallback")).await == b"fallback");
    // TCP was dialed only after the QUIC attempt gave up.
    assert!(
        started.elapsed() >= quic_handshake_timeout,
        "{:?}",
        started.elapsed()
    );
    let used = client.connected_addresses(server.peer_id()).await.unwrap();
    assert!(used[0].to_string().contains("/tcp/"), "{}", used[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_peer_fails_fast_with_no_addresses() {
    let client = start(config(vec![])).await;
    let peer = Identity::generate().peer_id();
    let started = std::time::Instant::now();
    let err = bounded(client.open_stream(peer, ECHO)).await.unwrap_err();
    assert!(
        matches!(&err, Error::NoAddresses { peer: p } if **p == peer),
        "{err:?}"
    );
    assert!(err.to_string().contains(&peer.to_string()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tcp_address_gives_dial_error() {
    let client = start(config(vec![])).await;
    // A port that was just free: nothing listens there, connects are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let peer = Identity::generate().peer_id();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    client.add_addresses(peer, vec![addr]).await.unwrap();
    let err = bounded(client.open_stream(peer, ECHO)).await.unwrap_err();
    assert!(
        matches!(&err, Error::Dial { peer: p, .. } if **p == peer),
        "{err:?}"
    );
}

/// A UDP port that swallows everything: QUIC handshakes to it never finish.
fn black_hole() -> (std::net::UdpSocket, Multiaddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    (
        socket,
        format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
            .parse()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_peer_times_out_within_open_timeout() {
    let open_timeout = Duration::from_millis(1500);
    let client = start(TransportConfig {
        open_timeout,
        ..config(vec![])
    })
    .await;
    let (_socket, addr) = black_hole();
    let peer = Identity::generate().peer_id();
    client.add_addresses(peer, vec![addr]).await.unwrap();
    let started = std::time::Instant::now();
    let err = bounded(client.open_stream(peer, ECHO)).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, Error::OpenTimeout { peer: p, timeout, .. } if **p == peer && *timeout == open_timeout),
        "{err:?}"
    );
    assert!(
        elapsed >= open_timeout && elapsed < open_timeout * 2,
        "{elapsed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_dials_are_bounded() {
    let client = start(TransportConfig {
        max_pending_dials: 2,
        // Shorter than the QUIC handshake timeout, so the waiters end by timing out.
        open_timeout: Duration::from_millis(1500),
        ..config(vec![])
    })
    .await;
    let (_socket, addr) = black_hole();
    let peer = Identity::generate().peer_id();
    client.add_addresses(peer, vec![addr]).await.unwrap();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.open_stream(peer, ECHO).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let err = bounded(client.open_stream(peer, ECHO)).await.unwrap_err();
    assert!(
        matches!(err, Error::TooManyPendingDials { limit: 2, .. }),
        "{err:?}"
    );
    for task in waiting {
        let result = bounded(task).await.unwrap();
        assert!(
            matches!(result, Err(Error::OpenTimeout { .. })),
            "{result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_addresses_rejected() {
    let client = start(config(vec![])).await;
    let peer = Identity::generate().peer_id();
    let other = Identity::generate().peer_id();
    let wrong_id: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{other}").parse().unwrap();
    let err = client
        .add_addresses(peer, vec![wrong_id.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::BadAddress { address, .. } if *address == wrong_id),
        "{err:?}"
    );
    let no_transport: Multiaddr = "/ip4/127.0.0.1/udp/1".parse().unwrap();
    let err = client
        .add_addresses(peer, vec![no_transport])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadAddress { .. }), "{err:?}");
    // Nothing was stored.
    let err = bounded(client.open_stream(peer, ECHO)).await.unwrap_err();
    assert!(matches!(err, Error::NoAddresses { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_book_forgets_oldest_peer() {
    let server = start(config(vec![quic("127.0.0.1")])).await;
    let client = start(TransportConfig {
        max_known_peers: 1,
        ..config(vec![])
    })
    .await;
    serve_echo(&server);
    client
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    let other = Identity::generate().peer_id();
    client
        .add_addresses(other, vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()])
        .await
        .unwrap();
    let err = bounded(client.open_stream(server.peer_id(), ECHO))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoAddresses { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_failures_reported() {
    let unsupported: Multiaddr = "/ip4/127.0.0.1/udp/0".parse().unwrap();
    let err = bounded(Transport::start(
        Identity::generate(),
        config(vec![unsupported.clone()]),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Listen { address, .. } if *address == unsupported),
        "{err:?}"
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let busy: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let err = bounded(Transport::start(
        Identity::generate(),
        config(vec![busy.clone()]),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::Listen { address, .. } if *address == busy),
        "{err:?}"
    );
    // The OS's reason is in the message (libp2p keeps it in the error's source chain).
    let text = err.to_string();
    assert!(text.contains("Address already in use"), "{text}");
    assert!(
        matches!(&err, Error::Listen { reason, .. } if !reason.trim().is_empty()),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_idempotent_and_closes_connections() {
    let server = start(config(vec![quic("127.0.0.1")])).await;
    let client = start(config(vec![])).await;
    serve_echo(&server);
    client
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    assert!(bounded(echo(&client, server.peer_id(), b"x")).await == b"x");
    assert_eq!(
        server
            .connected_addresses(client.peer_id())
            .await
            .unwrap()
            .len(),
        1
    );

    let other_handle = client.clone();
    bounded(client.shutdown()).await;
    bounded(client.shutdown()).await;
    bounded(other_handle.shutdown()).await;
    let err = bounded(other_handle.open_stream(server.peer_id(), ECHO))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ShutDown), "{err:?}");
    assert!(matches!(
        client.add_addresses(server.peer_id(), vec![]).await,
        Err(Error::ShutDown)
    ));

    // The server sees the connection close (not a 20 s dead-peer timeout).
    bounded(async {
        while !server
            .connected_addresses(client.peer_id())
            .await
            .unwrap()
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    server.shutdown().await;
    assert!(server.listen_addrs().is_empty());
}

/// Holds every accepted stream so none is closed.
fn hold_streams(server: &Transport) -> tokio::task::JoinHandle<Vec<Stream>> {
    let mut incoming = server.accept(ECHO).unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok(Some((_, stream))) = timeout(Duration::from_secs(5), incoming.next()).await {
            held.push(stream);
        }
        held
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_streams_bounded_over_quic() {
    let limit = 8;
    let server = start(TransportConfig {
        max_concurrent_streams: limit,
        ..config(vec![quic("127.0.0.1")])
    })
    .await;
    let client = start(TransportConfig {
        open_timeout: Duration::from_secs(1),
        ..config(vec![])
    })
    .await;
    let _held = hold_streams(&server);
    client
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    let mut open = Vec::new();
    let mut failure = None;
    for _ in 0..2 * limit {
        match bounded(client.open_stream(server.peer_id(), ECHO)).await {
            Ok(stream) => open.push(stream),
            Err(err) => {
                failure = Some(err);
                break;
            }
        }
    }
    // identify and ping may hold a stream or two of the budget.
    let opened = u32::try_from(open.len()).unwrap();
    assert!(
        (limit - 3..=limit).contains(&opened),
        "opened {opened} streams"
    );
    assert!(
        matches!(failure, Some(Error::OpenTimeout { .. })),
        "{failure:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_peer_bounded() {
    let server = start(TransportConfig {
        max_connections_per_peer: 1,
        ..config(vec![quic("127.0.0.1")])
    })
    .await;
    serve_echo(&server);
    // Two swarms with one identity: the server sees two connections from one peer.
    let secret = [7u8; 32];
    let first = bounded(Transport::start(
        Identity::from_secret_bytes(secret),
        config(vec![]),
    ))
    .await
    .unwrap();
    let second = bounded(Transport::start(
        Identity::from_secret_bytes(secret),
        config(vec![]),
    ))
    .await
    .unwrap();
    for node in [&first, &second] {
        node.add_addresses(server.peer_id(), server.listen_addrs())
            .await
            .unwrap();
    }
    assert!(bounded(echo(&first, server.peer_id(), b"one")).await == b"one");
    let refused = bounded(second.open_stream(server.peer_id(), ECHO)).await;
    assert!(
        refused.is_err(),
        "second connection from the same peer was accepted"
    );
    assert_eq!(
        server
            .connected_addresses(first.peer_id())
            .await
            .unwrap()
            .len(),
        1
    );
    // The first connection still works.
    assert!(bounded(echo(&first, server.peer_id(), b"two")).await == b"two");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_connections_bounded() {
    let server = start(TransportConfig {
        max_connections: 1,
        ..config(vec![quic("127.0.0.1")])
    })
    .await;
    serve_echo(&server);
    let first = start(config(vec![])).await;
    let second = start(config(vec![])).await;
    for node in [&first, &second] {
        node.add_addresses(server.peer_id(), server.listen_addrs())
            .await
            .unwrap();
    }
    assert!(bounded(echo(&first, server.peer_id(), b"one")).await == b"one");
    let refused = bounded(second.open_stream(server.peer_id(), ECHO)).await;
    assert!(
        refused.is_err(),
        "connection over the total limit was accepted"
    );
    assert!(
        server
            .connected_addresses(second.peer_id())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Throughput of one QUIC stream between two swarms in this process (they share the cores),
/// with our default windows and with libp2p-quic's (10 MB per stream, 15 MB per connection).
/// Release builds move 256 MiB per run, debug builds 16 MiB; run with `--release -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throughput_one_quic_stream() {
    let ours = TransportConfig::default();
    let libp2p_default = TransportConfig {
        max_stream_window: 10_000_000,
        max_connection_window: 15_000_000,
        ..TransportConfig::default()
    };
    for (name, base) in [
        ("4 MiB/16 MiB windows", ours),
        ("10 MB/15 MB windows", libp2p_default),
    ] {
        let mbps = measure(base).await;
        println!("throughput ({name}): {mbps:.0} MB/s");
    }
}

/// Sends 256 MiB (16 MiB in debug builds) over one QUIC stream; returns MB/s.
async fn measure(base: TransportConfig) -> f64 {
    let total: usize = if cfg!(debug_assertions) {
        16 << 20
    } else {
        256 << 20
    };
    let server = start(TransportConfig {
        listen: vec![quic("127.0.0.1")],
        ..base.clone()
    })
    .await;
    let client = start(base).await;
    let mut incoming = server.accept(ECHO).unwrap();
    let sink = tokio::spawn(async move {
        let (_, stream) = incoming.next().await.unwrap();
        let mut stream = compat(stream);
        let mut buf = vec![0u8; 64 << 10];
        let mut received = 0usize;
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            received += n;
        }
        received
    });
    client
        .add_addresses(server.peer_id(), server.listen_addrs())
        .await
        .unwrap();
    let mut stream = compat(
        bounded(client.open_stream(server.peer_id(), ECHO))
            .await
            .unwrap(),
    );
    let chunk = payload(64 << 10);
    let started = std::time::Instant::now();
    let received = timeout(Duration::from_secs(120), async {
        for _ in 0..total / chunk.len() {
            stream.write_all(&chunk).await.unwrap();
        }
        stream.shutdown().await.unwrap();
        sink.await.unwrap()
    })
    .await
    .expect("transfer timed out");
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(received, total);
    client.shutdown().await;
    server.shutdown().await;
    total as f64 / secs / 1e6
}

/// `block` severs a link both ways: the open connection closes, neither side can dial the
/// other (the blocking side refuses outbound, the remote's dial is refused inbound), other
/// peers are unaffected, and `unblock` restores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_severs_a_link_until_unblocked() {
    let a = start(config(vec![quic("127.0.0.1")])).await;
    let b = start(config(vec![quic("127.0.0.1")])).await;
    let c = start(config(vec![quic("127.0.0.1")])).await;
    serve_echo(&b);
    serve_echo(&a);
    a.add_addresses(b.peer_id(), b.listen_addrs())
        .await
        .unwrap();
    c.add_addresses(b.peer_id(), b.listen_addrs())
        .await
        .unwrap();
    b.add_addresses(a.peer_id(), a.listen_addrs())
        .await
        .unwrap();
    assert_eq!(echo(&a, b.peer_id(), b"before").await, b"before");
    assert!(
        !bounded(a.connected_addresses(b.peer_id()))
            .await
            .unwrap()
            .is_empty()
    );

    bounded(a.block(b.peer_id())).await.unwrap();
    // The connection goes away on both sides (bounded wait).
    let gone = async {
        while !b.connected_addresses(a.peer_id()).await.unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    bounded(gone).await;
    // a refuses to dial b; b's dial to a is refused by a.
    let out = bounded(a.open_stream(b.peer_id(), ECHO)).await;
    assert!(out.is_err(), "a dialed a blocked peer");
    let inbound = bounded(b.open_stream(a.peer_id(), ECHO)).await;
    assert!(inbound.is_err(), "a accepted a blocked peer");
    // A third peer still reaches b.
    assert_eq!(echo(&c, b.peer_id(), b"other").await, b"other");

    bounded(a.unblock(b.peer_id())).await.unwrap();
    assert_eq!(echo(&a, b.peer_id(), b"after").await, b"after");
    for t in [a, b, c] {
        t.shutdown().await;
    }
}

/// Kademlia peer routing: a node that knows only a "registry" finds a third node by its id
/// alone, and finds it again after it restarted on another port (same identity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dht_finds_a_peer_by_id_and_after_its_address_changed() {
    let registry = start(config(vec![quic("127.0.0.1")])).await;
    let secret = Identity::generate().secret_bytes();
    let start_c = || async {
        bounded(Transport::start(
            Identity::from_secret_bytes(secret),
            config(vec![quic("127.0.0.1")]),
        ))
        .await
        .unwrap()
    };
    let c = start_c().await;
    serve_echo(&c);
    // C talks to the registry (as a relay publishing): the registry learns where C listens.
    c.add_addresses(registry.peer_id(), registry.listen_addrs())
        .await
        .unwrap();
    bounded(c.connect(registry.peer_id())).await.unwrap();
    // A knows only the registry, and has talked to it (as a proxy fetching the directory).
    let a = start(config(vec![quic("127.0.0.1")])).await;
    a.add_addresses(registry.peer_id(), registry.listen_addrs())
        .await
        .unwrap();
    bounded(a.connect(registry.peer_id())).await.unwrap();
    let c_id = c.peer_id();
    // Identify runs right after the connection; give the registry a bounded moment.
    let mut found = false;
    for _ in 0..50 {
        if let Ok(Ok(stream)) = timeout(Duration::from_secs(5), a.open_stream(c_id, ECHO)).await {
            drop(stream);
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "A never reached C through the DHT");
    assert_eq!(echo(&a, c_id, b"by id").await, b"by id");
    let old = c.listen_addrs();

    // C restarts on a new port with the same identity and talks to the registry again.
    c.shutdown().await;
    let c = start_c().await;
    assert_ne!(c.listen_addrs(), old, "a new port");
    serve_echo(&c);
    c.add_addresses(registry.peer_id(), registry.listen_addrs())
        .await
        .unwrap();
    bounded(c.connect(registry.peer_id())).await.unwrap();
    // A still has only the old address; the dial fails and the DHT gives the new one.
    let mut moved = false;
    for _ in 0..50 {
        if let Ok(Ok(stream)) = timeout(Duration::from_secs(5), a.open_stream(c_id, ECHO)).await {
            drop(stream);
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(moved, "A never reached C at its new address");
    assert_eq!(echo(&a, c_id, b"moved").await, b"moved");
    for t in [a, c, registry] {
        t.shutdown().await;
    }
}
