//! Relay bandwidth limits over real QUIC: the token-bucket rate and the accounting budget.

use std::sync::atomic::Ordering;
use std::time::Duration;

use braid_node::config::AccountingPeriod;
use braid_relay::layer::message_len;
use braid_relay::msg::MSG_HEADER_LEN;
use braid_relay::service::Faults;
use braid_simulations::http::fetch;
use braid_simulations::{Scenario, SimNetwork};

use crate::support;

/// The configured relay rate, bytes of cells per second.
const RATE: u64 = 2_000_000;
/// The configured burst.
const BURST: u64 = 256 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_throughput_stays_within_ten_percent_of_the_rate() {
    let _alone = support::alone().await;
    // One plain circuit (strands = 1): this measures the token bucket against the body bytes
    // one circuit carries. Three relays cannot give K = 3 disjoint strands anyway (the proxy
    // would braid the stream over a single strand), and a braided stream spends extra cells
    // under the same rate (its acks travel upstream as cells, its fragments carry a header and
    // a tag), so it measures something else: at this rate a braided single-strand stream
    // relayed about 1.9 cells per cell of a plain stream and got about half its throughput.
    let s = Scenario {
        strands: 1,
        ..Scenario::network("bw", 3, 1, 3)
    };
    let net = SimNetwork::start_configured(&s, |_, cfg| {
        cfg.bandwidth_rate = Some(RATE);
        cfg.bandwidth_burst = Some(BURST);
        Faults::default()
    })
    .await
    .expect("network");
    // Each 4096-byte cell carries at most this much of the body on a three-hop circuit.
    let per_cell = (message_len(3) - MSG_HEADER_LEN) as f64;
    let expected = RATE as f64 * per_cell / braid_relay::CELL_LEN as f64;
    // About ten seconds of body at the expected rate.
    let size = (expected * 10.0) as u64;
    let got = tokio::time::timeout(
        Duration::from_secs(60),
        fetch(
            net.socks_addr(),
            "127.0.0.1",
            net.http_v4.port(),
            size,
            None,
        ),
    )
    .await
    .expect("a rate-limited download must finish, not hang")
    .expect("download");
    let secs = (got.total - got.ttfb).as_secs_f64();
    let measured = got.bytes as f64 / secs;
    let error = (measured - expected) / expected;
    println!(
        "rate limit {RATE} B/s of cells, expected payload {expected:.0} B/s, measured \
         {measured:.0} B/s over {secs:.2} s ({:+.2} %)",
        error * 100.0
    );
    assert!(
        error.abs() < 0.10,
        "measured {measured:.0} B/s, expected {expected:.0} B/s ({:+.2} %)",
        error * 100.0
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_accounting_budget_refuses_new_circuits_only() {
    let _shared = support::shared().await;
    let net = SimNetwork::start_configured(&Scenario::network("acct", 3, 1, 3), |_, cfg| {
        cfg.accounting_max = Some(200 * 1024);
        cfg.accounting_period = AccountingPeriod::Day;
        Faults::default()
    })
    .await
    .expect("network");
    let socks = net.socks_addr();
    let port = net.http_v4.port();
    let refused = |net: &SimNetwork| -> u64 {
        net.relays
            .iter()
            .map(|r| r.stats().refused.load(Ordering::Relaxed))
            .sum()
    };
    // A small fetch opens key "a"'s circuit, and the proxy builds a clean circuit ahead; both
    // are admitted while the budget lasts.
    let opening = fetch(socks, "127.0.0.1", port, 1024, Some(("a", "x"))).await;
    assert_eq!(opening.expect("opening fetch").bytes, 1024);
    for _ in 0..200 {
        if net.proxy.manager().preemptive_ready() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(net.proxy.manager().preemptive_ready(), 1);
    // The budget runs out during this transfer; its circuit was admitted and carries on.
    let first = tokio::time::timeout(
        Duration::from_secs(60),
        fetch(socks, "127.0.0.1", port, 1 << 20, Some(("a", "x"))),
    )
    .await
    .expect("bounded");
    assert_eq!(first.expect("an admitted circuit continues").bytes, 1 << 20);
    assert_eq!(refused(&net), 0);
    // A new key takes the clean circuit built before the budget ran out: admitted circuits
    // carry on. The next clean circuit is refused.
    let taken = fetch(socks, "127.0.0.1", port, 1024, Some(("b", "x"))).await;
    assert_eq!(taken.expect("the clean circuit was admitted").bytes, 1024);
    assert_eq!(net.proxy.manager().preemptive_taken(), 1);
    // A new circuit (fresh credentials, no clean one left) is refused by the hibernating relays.
    let second = tokio::time::timeout(
        Duration::from_secs(60),
        fetch(socks, "127.0.0.1", port, 1024, Some(("c", "x"))),
    )
    .await
    .expect("a refused circuit must fail promptly, not hang");
    assert!(second.is_err(), "a new circuit must be refused: {second:?}");
    assert!(refused(&net) >= 1, "a relay must count the refusal");
    // The relays keep running: the circuit opened before the budget ran out still works.
    let again = tokio::time::timeout(
        Duration::from_secs(60),
        fetch(socks, "127.0.0.1", port, 64 * 1024, Some(("a", "x"))),
    )
    .await
    .expect("bounded");
    assert_eq!(again.expect("the old circuit still works").bytes, 64 * 1024);
    net.shutdown().await;
}
