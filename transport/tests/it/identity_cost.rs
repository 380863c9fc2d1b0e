//! What one more client identity costs (a proxy runs one swarm per SOCKS isolation key):
//! start time and resident memory of 16 idle client-only transports. A measurement, not a
//! check: `cargo test -p braid-transport --release --test it identity_cost -- --ignored
//! --nocapture`.

use std::time::Instant;

use braid_transport::{Identity, Transport, TransportConfig};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; run by hand"]
async fn identity_cost() {
    const N: usize = 16;
    let config = || TransportConfig {
        listen: Vec::new(),
        ..TransportConfig::default()
    };
    // One first, so process-wide setup (rustls provider, tokio) is not counted.
    let first = Transport::start(Identity::generate(), config())
        .await
        .unwrap();
    let rss0 = rss_kib();
    let started = Instant::now();
    let mut all = Vec::new();
    let mut slowest = std::time::Duration::ZERO;
    for _ in 0..N {
        let t0 = Instant::now();
        all.push(
            Transport::start(Identity::generate(), config())
                .await
                .unwrap(),
        );
        slowest = slowest.max(t0.elapsed());
    }
    let total = started.elapsed();
    let rss1 = rss_kib();
    println!(
        "{N} client transports: {:.2} ms each on average (slowest {:.2} ms), {} KiB RSS each",
        total.as_secs_f64() * 1e3 / N as f64,
        slowest.as_secs_f64() * 1e3,
        rss1.saturating_sub(rss0) / N as u64
    );
    for t in all {
        t.shutdown().await;
    }
    first.shutdown().await;
}
