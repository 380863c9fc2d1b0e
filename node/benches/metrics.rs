//! Criterion bench of a relay's `/metrics` scrape: `NodeMetrics::encode` on a real relay
//! (transport, relay service) whose counters hold the values of a relay that has carried
//! 100 MB/s for a month, plus the hot-path cost of counting (one relaxed add per cell, two
//! per histogram observation). Results and the CPU share they imply are in
//! `docs/performance.md` ("Metrics").

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup: a panic is the report

use std::hint::black_box;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use braid_node::{NodeMetrics, RelayConfig, RelayNode};
use braid_relay::service::Faults;
use braid_relay::stats::LatencyHistogram;
use braid_transport::Identity;
use criterion::{Criterion, criterion_main};

/// A relay with a month of 100 MB/s behind it: about 6.3e10 cells each way
/// (100e6 B/s × 2.6e6 s / 4096 B).
fn busy_relay(rt: &tokio::runtime::Runtime, data: &std::path::Path) -> RelayNode {
    let cfg = RelayConfig {
        nickname: "bench".into(),
        data_dir: data.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".into()],
        accounting_max: Some(300_000_000_000_000),
        ..RelayConfig::default()
    };
    let relay = rt
        .block_on(RelayNode::start(
            &cfg,
            Identity::generate(),
            Identity::generate().secret_bytes(),
            Faults::default(),
        ))
        .expect("relay");
    let st = relay.stats();
    st.cells.store(63_281_250_000, Relaxed);
    st.cells_out.store(63_281_240_000, Relaxed);
    st.circuits_open.store(3_000, Relaxed);
    st.circuits_total.store(9_000_000, Relaxed);
    st.integrity_failures.store(12, Relaxed);
    st.refused.store(4_000, Relaxed);
    for (i, c) in st.refused_by.iter().enumerate() {
        c.store(1_000 * (i as u64 + 1), Relaxed);
    }
    for i in 0..100_000u64 {
        st.handshake_latency
            .observe(Duration::from_micros(1_000 + (i * 7_919) % 2_000_000));
    }
    relay
}

fn benches() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let relay = busy_relay(&rt, data.path());
    let metrics = NodeMetrics::for_relay(&relay);
    let text = metrics.encode();
    eprintln!(
        "relay scrape: {} bytes, {} lines",
        text.len(),
        text.lines().count()
    );
    c.bench_function("metrics/relay_encode", |b| {
        b.iter(|| black_box(metrics.encode()))
    });
    let st = relay.stats();
    c.bench_function("metrics/count_cell (relaxed add)", |b| {
        b.iter(|| st.cells_out.fetch_add(black_box(1), Relaxed))
    });
    let h = LatencyHistogram::default();
    c.bench_function("metrics/observe_handshake", |b| {
        b.iter(|| h.observe(black_box(Duration::from_micros(12_345))))
    });
    rt.block_on(relay.shutdown());
}

criterion_main!(benches);
