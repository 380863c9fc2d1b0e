//! Running a scenario's fetches, and serving the network for outside clients.

use std::time::Duration;

use crate::http::fetch;
use crate::report::{FetchRecord, Report};
use crate::{Scenario, SimError, SimNetwork};

/// Runs every fetch group of `s` against `net` and builds the report.
pub async fn run_fetches(s: &Scenario, net: &SimNetwork) -> Report {
    let mut records = Vec::new();
    let mut fresh_n = 0u64;
    for g in &s.fetch {
        let port = match g.host.as_str() {
            "::1" => net.http_v6.map(|a| a.port()).unwrap_or(0),
            _ => net.http_v4.port(),
        };
        for _ in 0..g.count {
            let user = if g.fresh {
                fresh_n += 1;
                format!("fresh-{fresh_n}")
            } else {
                "warm".to_string()
            };
            let r = tokio::time::timeout(
                Duration::from_secs(120),
                fetch(net.socks_addr(), &g.host, port, g.size, Some((&user, "x"))),
            )
            .await
            .unwrap_or_else(|_| Err("timed out after 120 s".into()));
            records.push(match r {
                Ok(f) => FetchRecord {
                    size: g.size,
                    fresh: g.fresh,
                    host: g.host.clone(),
                    ok: true,
                    ttfb_ms: f.ttfb.as_secs_f64() * 1e3,
                    total_ms: f.total.as_secs_f64() * 1e3,
                    mbytes_per_s: f.bytes as f64 / f.total.as_secs_f64().max(1e-9) / 1e6,
                    error: None,
                },
                Err(e) => FetchRecord {
                    size: g.size,
                    fresh: g.fresh,
                    host: g.host.clone(),
                    ok: false,
                    ttfb_ms: 0.0,
                    total_ms: 0.0,
                    mbytes_per_s: 0.0,
                    error: Some(e),
                },
            });
        }
    }
    Report::new(
        s,
        records,
        &net.proxy.manager().build_times(),
        net.integrity_failures(),
    )
}

/// Waits until a 1 KiB fetch through the proxy succeeds (circuits can be built).
pub async fn wait_ready(net: &SimNetwork, timeout: Duration) -> Result<(), SimError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match fetch(
            net.socks_addr(),
            "127.0.0.1",
            net.http_v4.port(),
            1024,
            Some(("readiness", "x")),
        )
        .await
        {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(SimError::NotReady(last))
}
