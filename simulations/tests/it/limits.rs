//! Relay bounds enforced over real QUIC: streams per exit circuit and circuits per peer.

use std::time::Duration;

use braid_relay::service::Faults;
use braid_simulations::http::{fetch, socks_connect};
use braid_simulations::{Scenario, SimNetwork};
use tokio::net::TcpStream;

use crate::support;

fn scenario() -> Scenario {
    Scenario::network("limits", 3, 1, 3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exit_refuses_streams_beyond_its_limit() {
    let _shared = support::shared().await;
    let net = SimNetwork::start_configured(&scenario(), |_, cfg| {
        cfg.limits.max_streams_per_circuit = 2;
        Faults::default()
    })
    .await
    .expect("network");
    let socks = net.socks_addr();
    let port = net.http_v4.port();
    // Two open streams on one circuit (same credentials), held open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut tcp = TcpStream::connect(socks).await.expect("proxy");
        socks_connect(&mut tcp, "127.0.0.1", port, Some(("same", "x")))
            .await
            .expect("within the limit");
        held.push(tcp);
    }
    // The third on the same circuit is refused by the exit: general failure.
    let mut tcp = TcpStream::connect(socks).await.expect("proxy");
    let err = socks_connect(&mut tcp, "127.0.0.1", port, Some(("same", "x")))
        .await
        .expect_err("over the limit");
    assert!(err.contains("0x01"), "{err}");
    // Other circuits are unaffected.
    let ok = fetch(socks, "localhost", port, 4096, Some(("other", "x"))).await;
    assert!(ok.is_ok(), "{ok:?}");
    // Closing one stream frees a slot.
    // (The exit learns of the end a moment later: retry, bounded.)
    drop(held.pop());
    let mut freed = Err(String::new());
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut tcp = TcpStream::connect(socks).await.expect("proxy");
        freed = socks_connect(&mut tcp, "127.0.0.1", port, Some(("same", "x"))).await;
        if freed.is_ok() {
            held.push(tcp);
            break;
        }
    }
    freed.expect("a slot was freed");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_refuses_circuits_beyond_the_per_peer_limit() {
    let _shared = support::shared().await;
    // Two relays, two hops: every circuit is proxy -> guard -> exit, so the guard sees each
    // circuit come from the same peer (the proxy).
    let two_hops = Scenario {
        relays: 2,
        hops: 2,
        ..scenario()
    };
    let net = SimNetwork::start_configured(&two_hops, |_, cfg| {
        cfg.limits.max_circuits_per_peer = 1;
        Faults::default()
    })
    .await
    .expect("network");
    let socks = net.socks_addr();
    let port = net.http_v4.port();
    // One circuit, held open by a stream.
    let mut first = TcpStream::connect(socks).await.expect("proxy");
    socks_connect(&mut first, "127.0.0.1", port, Some(("one", "x")))
        .await
        .expect("first circuit");
    // A second circuit (new credentials force one) from the same client is refused.
    let second = fetch(socks, "127.0.0.1", port, 1024, Some(("two", "x"))).await;
    assert!(
        second.is_err(),
        "the per-peer limit must refuse: {second:?}"
    );
    let refused: u64 = net
        .relays
        .iter()
        .map(|r| r.stats().refused.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert!(refused >= 1, "a relay must count the refusal");
    drop(first);
    net.shutdown().await;
}
