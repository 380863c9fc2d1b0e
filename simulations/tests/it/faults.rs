//! Fault injection through real QUIC on loopback: tampered and replayed cells.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use braid_relay::service::Faults;
use braid_simulations::http::fetch;
use braid_simulations::{Scenario, SimNetwork};

use crate::support;

fn three_relays() -> Scenario {
    Scenario::network("faults", 3, 1, 3)
}

/// Fetches 1 MiB through the proxy with the isolation key "a", bounded to 30 s.
async fn fetch_mib(
    net: &SimNetwork,
    port: u16,
) -> Result<Result<braid_simulations::http::FetchResult, String>, tokio::time::error::Elapsed> {
    tokio::time::timeout(
        Duration::from_secs(30),
        fetch(
            net.socks_addr(),
            "localhost",
            port,
            1 << 20,
            Some(("a", "x")),
        ),
    )
    .await
}

/// Runs one faulty fetch and one clean fetch; returns the network for inspection.
async fn faulty_then_clean(faults: Faults) -> SimNetwork {
    let net = SimNetwork::start_with(&three_relays(), |_| faults.clone())
        .await
        .expect("network");
    let port = net.http_v4.port();
    // Cell 1 is Begin, cell 2 carries the HTTP request: it is the one tampered with.
    let bad = fetch_mib(&net, port)
        .await
        .expect("the broken stream must fail promptly, not hang");
    assert!(bad.is_err(), "a tampered circuit must not deliver the body");
    // The same isolation key again: the dead circuit is not reused, a new one works.
    let good = fetch_mib(&net, port).await.expect("no hang");
    let good = good.expect("a fresh circuit works after the teardown");
    assert_eq!(good.bytes, 1 << 20);
    net
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_bit_tears_the_circuit_down_and_a_new_one_works() {
    let _shared = support::shared().await;
    let faults = Faults {
        flip_bit_at_cell: Some(2),
        replay_at_cell: None,
        remaining: Arc::new(AtomicU64::new(1)),
        corrupt_strand: None,
        ..Faults::default()
    };
    let net = faulty_then_clean(faults).await;
    assert!(
        net.integrity_failures() >= 1,
        "the next hop must detect the flipped bit"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_cell_is_rejected() {
    let _shared = support::shared().await;
    let faults = Faults {
        flip_bit_at_cell: None,
        replay_at_cell: Some(2),
        remaining: Arc::new(AtomicU64::new(1)),
        corrupt_strand: None,
        ..Faults::default()
    };
    let net = faulty_then_clean(faults).await;
    assert!(
        net.integrity_failures() >= 1,
        "the next hop must reject the replayed cell"
    );
    net.shutdown().await;
}
