//! Running a scenario's fetches and faults, and serving the network for outside clients.
//!
//! Fetch groups run in order, the fetches of a group one after another. A group's faults run
//! beside its fetches, timed from the group's start; faults still waiting when the group ends
//! do not fire. After each fetch the proxy's record of its braided stream (strands, shares,
//! resends) is paired with it: fetches are sequential, so the newest record that appears is
//! the fetch's own.

use std::sync::Mutex;
use std::time::Duration;

use braid_router::CircuitManager;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::fault::{FaultRecord, apply, choose};
use crate::http::fetch;
use crate::report::{BraidFigures, FetchRecord, Report, RunRecords};
use crate::scenario::FetchGroup;
use crate::{Scenario, SimError, SimNetwork};

/// Longest a fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(120);
/// How long after a successful fetch the proxy has to record its braided stream (the stream
/// ends after the last byte: the client closes, both ends exchange their final fragments).
pub const RECORD_WAIT: Duration = Duration::from_secs(5);
/// The same after a failed fetch (often no stream was opened, so none will be recorded).
pub const RECORD_WAIT_FAILED: Duration = Duration::from_secs(1);
/// Stream records the proxy keeps (its bound); at this many, new records push old ones out and
/// fetches can no longer be paired with theirs.
pub const PROXY_RECORDS: usize = 10_000;

/// Runs every fetch group of `s` against `net`, with the scenario's faults, and builds the
/// report.
pub async fn run_fetches(s: &Scenario, net: &SimNetwork) -> Report {
    let manager = net.proxy.manager();
    let braided = manager.settings().strands > 1;
    if braided {
        // Let the exits credit streams that ended before the run (the readiness fetch).
        settle_exits(net, manager.stream_records().len() as u64).await;
    }
    let exit_start = net.exit_counters();
    let mut run = RunRecords::default();
    let mut faults: Vec<Option<FaultRecord>> = vec![None; s.faults.len()];
    let mut fresh_n = 0u64;
    for (index, g) in s.fetch.iter().enumerate() {
        let exit_before = net.exit_counters();
        let records_before = manager.stream_records().len();
        let mut due: Vec<usize> = (0..s.faults.len())
            .filter(|&i| s.faults[i].group == index)
            .collect();
        due.sort_by_key(|&i| s.faults[i].at_ms);
        let fired = Mutex::new(Vec::new());
        let (done_tx, mut done_rx) = watch::channel(false);
        let start = Instant::now();
        let fetches = async {
            let r = run_group(net, index, g, &mut fresh_n, braided).await;
            let _ = done_tx.send(true);
            r
        };
        let fault_run = async {
            for &i in &due {
                let spec = &s.faults[i];
                // Waiting for the fault is cut short when the group ends; a kill, once begun,
                // runs to the end.
                let victim = tokio::select! {
                    v = choose(net, spec, start) => v,
                    _ = done_rx.wait_for(|done| *done) => break,
                };
                let rec = apply(net, spec, victim, start).await;
                if let Ok(mut f) = fired.lock() {
                    f.push((i, rec));
                }
            }
        };
        let (records, ()) = tokio::join!(fetches, fault_run);
        for (i, rec) in fired.into_inner().unwrap_or_default() {
            faults[i] = Some(rec);
        }
        if braided {
            let streams = manager
                .stream_records()
                .len()
                .saturating_sub(records_before) as u64;
            settle_exits(net, exit_before.braids + streams).await;
        }
        run.exit_per_group
            .push(net.exit_counters().since(exit_before));
        run.fetches.extend(records);
    }
    run.faults = faults
        .into_iter()
        .zip(&s.faults)
        .map(|(rec, spec)| {
            rec.unwrap_or_else(|| FaultRecord::pending(spec, "not fired: its group ended first"))
        })
        .collect();
    run.exit_total = net.exit_counters().since(exit_start);
    Report::new(s, run, &manager.build_times(), net.integrity_failures())
}

/// Runs one fetch group's fetches in order.
async fn run_group(
    net: &SimNetwork,
    index: usize,
    g: &FetchGroup,
    fresh_n: &mut u64,
    braided: bool,
) -> Vec<FetchRecord> {
    let manager = net.proxy.manager();
    let port = match g.host.as_str() {
        "::1" => net.http_v6.map(|a| a.port()).unwrap_or(0),
        _ => net.http_v4.port(),
    };
    let mut records = Vec::with_capacity(g.count);
    for _ in 0..g.count {
        let user = if g.fresh {
            *fresh_n += 1;
            format!("fresh-{fresh_n}")
        } else {
            "warm".to_string()
        };
        let before = manager.stream_records().len();
        let r = tokio::time::timeout(
            FETCH_TIMEOUT,
            fetch(net.socks_addr(), &g.host, port, g.size, Some((&user, "x"))),
        )
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {} s", FETCH_TIMEOUT.as_secs())));
        let wait = if r.is_ok() {
            RECORD_WAIT
        } else {
            RECORD_WAIT_FAILED
        };
        let braid = if braided {
            stream_record(manager, before, wait).await
        } else {
            None
        };
        let mut rec = FetchRecord {
            group: index,
            size: g.size,
            fresh: g.fresh,
            host: g.host.clone(),
            ok: false,
            ttfb_ms: 0.0,
            total_ms: 0.0,
            mbytes_per_s: 0.0,
            error: None,
            braid,
        };
        match r {
            Ok(f) => {
                rec.ok = true;
                rec.ttfb_ms = f.ttfb.as_secs_f64() * 1e3;
                rec.total_ms = f.total.as_secs_f64() * 1e3;
                rec.mbytes_per_s = f.bytes as f64 / f.total.as_secs_f64().max(1e-9) / 1e6;
            }
            Err(e) => rec.error = Some(e),
        }
        records.push(rec);
    }
    records
}

/// Waits (at most `wait`) for the proxy to record a stream beyond the first `before` records;
/// the newest one's figures.
async fn stream_record(
    manager: &CircuitManager,
    before: usize,
    wait: Duration,
) -> Option<BraidFigures> {
    if before >= PROXY_RECORDS {
        return None;
    }
    let deadline = Instant::now() + wait;
    loop {
        let records = manager.stream_records();
        if records.len() > before {
            return records.last().map(BraidFigures::of);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (at most [`RECORD_WAIT`]) until the exits have credited `braids` braided streams:
/// an exit's counters move when its end of a stream finishes, a little after the client's.
async fn settle_exits(net: &SimNetwork, braids: u64) {
    let deadline = Instant::now() + RECORD_WAIT;
    while net.exit_counters().braids < braids && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until a 1 KiB fetch through the proxy succeeds (circuits can be built). With braided
/// streams it also waits for the proxy to record that stream, so that the record is not taken
/// for a later fetch's.
pub async fn wait_ready(net: &SimNetwork, timeout: Duration) -> Result<(), SimError> {
    let manager = net.proxy.manager();
    let braided = manager.settings().strands > 1;
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        let before = manager.stream_records().len();
        match fetch(
            net.socks_addr(),
            "127.0.0.1",
            net.http_v4.port(),
            1024,
            Some(("readiness", "x")),
        )
        .await
        {
            Ok(_) => {
                if braided {
                    let _ = stream_record(manager, before, RECORD_WAIT).await;
                }
                return Ok(());
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(SimError::NotReady(last))
}
