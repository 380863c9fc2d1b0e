//! Preemptive circuits over real QUIC: after a stream of one SOCKS key, a clean circuit (K = 1)
//! or strand set (K = 3) is built ahead; a stream of a new key takes it, and the next one is
//! built.

use std::time::Duration;

use braid_simulations::http::fetch;
use braid_simulations::{Scenario, SimNetwork};

fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Waits (bounded) until the proxy has `n` clean circuits or sets ready.
async fn ready(net: &SimNetwork, n: usize) {
    for _ in 0..200 {
        if net.proxy.manager().preemptive_ready() == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} ready, expected {n}",
        net.proxy.manager().preemptive_ready()
    );
}

async fn a_new_key_takes_the_clean_one(strands: usize) {
    init();
    let s = Scenario {
        strands,
        ..Scenario::network("preemptive", 8, 2, 3)
    };
    let net = SimNetwork::start(&s).await.expect("network");
    let socks = net.socks_addr();
    let port = net.http_v4.port();
    let manager = net.proxy.manager().clone();
    assert_eq!(
        manager.preemptive_ready(),
        0,
        "nothing is built before a stream"
    );
    let body = fetch(socks, "localhost", port, 64 * 1024, Some(("first", "x"))).await;
    assert_eq!(body.expect("first fetch").bytes, 64 * 1024);
    assert_eq!(manager.preemptive_taken(), 0);
    ready(&net, 1).await;
    // A new key: it takes the clean one, and another is built.
    let body = fetch(socks, "localhost", port, 64 * 1024, Some(("second", "x"))).await;
    assert_eq!(body.expect("second fetch").bytes, 64 * 1024);
    assert_eq!(manager.preemptive_taken(), 1);
    ready(&net, 1).await;
    // The same key again reuses its own circuits: nothing is taken.
    let body = fetch(socks, "localhost", port, 1024, Some(("second", "x"))).await;
    assert_eq!(body.expect("reused").bytes, 1024);
    assert_eq!(manager.preemptive_taken(), 1);
    // Bounded: never more than one ready.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(manager.preemptive_ready(), 1);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_takes_a_clean_circuit() {
    a_new_key_takes_the_clean_one(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_takes_a_clean_strand_set() {
    a_new_key_takes_the_clean_one(3).await;
}
