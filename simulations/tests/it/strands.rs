//! Braided streams under faults, through real QUIC on loopback: a strand's middle relay killed
//! mid-download, an exit that alters fragments on one strand, and how evenly the strands of a
//! stream share its bytes.

use std::path::Path;
use std::time::Duration;

use braid_relay::service::Faults;
use braid_simulations::http::fetch;
use braid_simulations::scenario::FetchGroup;
use braid_simulations::{Scenario, SimNetwork, run};

use crate::support;

fn scenario_file(name: &str) -> Scenario {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name);
    Scenario::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

async fn ready(s: &Scenario, faults: impl Fn(usize) -> Faults) -> SimNetwork {
    let net = SimNetwork::start_with(s, faults).await.expect("network");
    run::wait_ready(&net, Duration::from_secs(30))
        .await
        .expect("ready");
    net
}

/// The shipped scenario: a middle relay of a strand is killed during a 32 MiB download.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_strand_middle_mid_download_loses_no_byte() {
    let _alone = support::alone().await;
    let s = scenario_file("kill-strand-middle.toml");
    assert_eq!(s.fetch[0].size, 32 << 20);
    let net = ready(&s, |_| Faults::default()).await;
    let report = tokio::time::timeout(Duration::from_secs(150), run::run_fetches(&s, &net))
        .await
        .expect("the run must finish");
    println!("{}", report.table());
    // Every byte arrived and matched (the fetcher checks each one).
    assert!(report.all_ok(), "{}", report.table());
    let fault = &report.faults[0];
    let killed = fault.relay.expect("the fault must fire");
    let path = fault.strand_path.clone().expect("chosen from a strand");
    assert_eq!(path[1], killed, "the middle of {path:?}");
    assert_ne!(path.last(), Some(&killed), "never the exit");
    assert!(net.is_killed(killed));
    // The stream's own record: the strand through the dead relay failed, the stream went on.
    let record = net
        .proxy
        .manager()
        .stream_records()
        .pop()
        .expect("the download's stream record");
    assert!(
        record.report.failure.is_none(),
        "{:?}",
        record.report.failure
    );
    let dead: Vec<_> = record
        .paths
        .iter()
        .filter(|(_, p)| net.relay_path(p).expect("relays").contains(&killed))
        .map(|(s, _)| *s)
        .collect();
    let mapped: Vec<_> = record
        .paths
        .values()
        .map(|p| (p.clone(), net.relay_path(p)))
        .collect();
    assert_eq!(
        dead.len(),
        1,
        "one strand ran through relay {killed}: fault on {path:?}, the stream's paths {mapped:?}"
    );
    let tally = record
        .report
        .strands
        .iter()
        .find(|t| t.strand == dead[0])
        .expect("tally");
    assert!(
        tally.failed,
        "the strand through the killed relay must fail: fault {:?}\nclient {:?}\n{}",
        report.faults,
        record.report,
        report.table()
    );
    let figures = report.fetches[0].braid.as_ref().expect("figures");
    assert!(figures.failed_strands >= 1);
    assert_eq!(figures.strands, record.report.strands.len());
    // What was in flight on it came again on other strands, or a replacement strand joined.
    let exit = report.groups[0].exit;
    assert!(
        exit.fragments_resent > 0 || figures.strands > s.strands,
        "resends or a replacement: {exit:?}, {figures:?}"
    );
    net.shutdown().await;
}

/// The shipped cut scenario: the guard–middle link of an active strand is severed mid-download
/// while both relays stay up; the stream finishes exactly on the other strands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cutting_a_strand_link_mid_download_loses_no_byte() {
    let _alone = support::alone().await;
    let s = scenario_file("cut-strand-link.toml");
    let net = ready(&s, |_| Faults::default()).await;
    let report = tokio::time::timeout(Duration::from_secs(150), run::run_fetches(&s, &net))
        .await
        .expect("the run must finish");
    println!("{}", report.table());
    assert!(report.all_ok(), "{}", report.table());
    let fault = &report.faults[0];
    let (a, b) = (
        fault.relay.expect("the cut must fire"),
        fault.peer.expect("a cut names two relays"),
    );
    let path = fault.strand_path.clone().expect("chosen from a strand");
    assert_eq!((path[0], path[1]), (a, b), "the first link of {path:?}");
    // Both ends are alive and no longer connected to each other.
    assert!(!net.is_killed(a) && !net.is_killed(b));
    let (ta, tb) = (net.relays[a].transport(), net.relays[b].transport());
    assert!(
        ta.connected_addresses(tb.peer_id())
            .await
            .expect("alive")
            .is_empty(),
        "the cut link came back"
    );
    let record = net
        .proxy
        .manager()
        .stream_records()
        .pop()
        .expect("the download's stream record");
    assert!(
        record.report.failure.is_none(),
        "{:?}",
        record.report.failure
    );
    let over_link: Vec<_> = record
        .paths
        .iter()
        .filter(|(_, p)| {
            net.relay_path(p)
                .expect("relays")
                .windows(2)
                .any(|w| w == [a, b])
        })
        .map(|(s, _)| *s)
        .collect();
    assert_eq!(over_link.len(), 1, "one strand ran over the cut link");
    let tally = record
        .report
        .strands
        .iter()
        .find(|t| t.strand == over_link[0])
        .expect("tally");
    // The cut shows on the client (the strand reported failed) or, when the client had no
    // data to receive on that strand, at the exit, which resent what it had in flight on it.
    let exit = report.groups[0].exit;
    assert!(
        tally.failed || exit.fragments_resent > 0,
        "the cut must cost the strand: {tally:?}, {exit:?}, fault {fault:?}\n{}",
        report.table()
    );
    net.shutdown().await;
}

/// An exit alters every 4th data fragment it sends on strand 1; the client rejects each one
/// and the exit sends it again, so every download completes exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragments_altered_on_one_strand_are_rejected_and_resent() {
    let _alone = support::alone().await;
    let s = Scenario {
        name: "corrupt-strand".into(),
        relays: 8,
        exits: 1,
        hops: 3,
        strands: 3,
        client_identity_per_key: false,
        registries: 0,
        relay_rate: None,
        exit_rate: None,
        fetch: vec![FetchGroup {
            size: 1 << 20,
            count: 3,
            fresh: false,
            host: "127.0.0.1".into(),
        }],
        faults: Vec::new(),
    };
    let net = ready(&s, |i| Faults {
        corrupt_strand: (i < 1).then_some((1, 4)),
        ..Faults::default()
    })
    .await;
    let report = tokio::time::timeout(Duration::from_secs(60), run::run_fetches(&s, &net))
        .await
        .expect("the run must finish");
    println!("{}", report.table());
    assert!(report.all_ok(), "{}", report.table());
    for f in &report.fetches {
        let b = f.braid.as_ref().expect("each stream is recorded");
        assert!(b.strands >= 2, "{b:?}");
        assert!(b.fragments_rejected > 0, "the client must reject: {b:?}");
        assert!(b.failure.is_none(), "{b:?}");
    }
    let g = &report.groups[0];
    assert!(g.fragments_rejected >= 3, "{g:?}");
    assert!(g.exit.fragments_resent > 0, "the exit must resend: {g:?}");
    // The alteration happened inside the onion layers: no relay saw a bad cell.
    assert_eq!(report.integrity_failures, 0);
    // And the count is in the printed report and the JSON.
    let rejected = format!("{} / {}", g.fragments_rejected, g.exit.fragments_rejected);
    assert!(report.table().contains(&rejected), "{}", report.table());
    let json = serde_json::to_value(&report).expect("json");
    assert_eq!(
        json["groups"][0]["fragments_rejected"].as_u64(),
        Some(g.fragments_rejected)
    );
    net.shutdown().await;
}

/// Over a run of many streams with K = 3, the largest share of a stream's bytes that one
/// non-exit relay carried stays within 1/K + 0.15: measured over the run as the byte-weighted
/// mean of the per-stream figure, and for the median stream (streams whose set came up with
/// fewer than K strands are left out; at most a quarter may).
///
/// Not asserted: that every single stream stays within the bound. The scheduler weights each
/// strand by its measured RTT and delivery rate (with a per-stream jitter), so a stream whose
/// strands differ in speed leans on the fastest one; on a loaded machine single 1 MiB streams
/// reach about 0.5-0.58 (printed below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_carry_about_one_strand_share_over_a_run() {
    let _alone = support::alone().await;
    const K: usize = 3;
    const SETS: usize = 4;
    const PER_SET: usize = 5;
    const SIZE: u64 = 1 << 20;
    let s = Scenario {
        strands: K,
        ..Scenario::network("share", 8, 2, 3)
    };
    let net = ready(&s, |_| Faults::default()).await;
    let manager = net.proxy.manager().clone();
    let before = manager.stream_records().len();
    // Four isolation keys, so four strand sets over different relays; five streams on each.
    for set in 0..SETS {
        for _ in 0..PER_SET {
            let user = format!("share-{set}");
            let got = tokio::time::timeout(
                Duration::from_secs(30),
                fetch(
                    net.socks_addr(),
                    "127.0.0.1",
                    net.http_v4.port(),
                    SIZE,
                    Some((&user, "x")),
                ),
            )
            .await
            .expect("bounded")
            .expect("download");
            assert_eq!(got.bytes, SIZE);
        }
    }
    // Each stream is recorded when both ends have finished, shortly after its last byte.
    let mut records = Vec::new();
    for _ in 0..500 {
        records = manager.stream_records().split_off(before);
        if records.len() >= SETS * PER_SET {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(records.len(), SETS * PER_SET);
    for r in &records {
        assert!(r.report.failure.is_none());
    }
    // A set occasionally comes up one circuit short (a build failed); its streams have K - 1
    // strands and say nothing about a K-strand split. Most must have K.
    let total_streams = records.len();
    records.retain(|r| r.report.strands.len() >= K);
    println!(
        "{} of {total_streams} streams had {K} strands",
        records.len()
    );
    assert!(
        records.len() * 4 >= total_streams * 3,
        "too many sets short of K strands"
    );
    let bytes = |r: &braid_router::StreamRecord| -> u64 {
        r.report
            .strands
            .iter()
            .map(|t| t.bytes_sent + t.bytes_received)
            .sum()
    };
    let total: u64 = records.iter().map(bytes).sum();
    let over_run: f64 = records
        .iter()
        .map(|r| r.max_relay_share() * bytes(r) as f64)
        .sum::<f64>()
        / total as f64;
    let mut shares: Vec<f64> = records.iter().map(|r| r.max_relay_share()).collect();
    shares.sort_by(f64::total_cmp);
    let (median, max) = (shares[shares.len() / 2], shares[shares.len() - 1]);
    println!(
        "max_relay_share over {} streams: over the run {over_run:.3}, median {median:.3}, \
         largest {max:.3}",
        shares.len()
    );
    let bound = 1.0 / K as f64 + 0.15;
    assert!(
        over_run <= bound,
        "{over_run:.3} over {bound:.3}: {shares:?}"
    );
    assert!(
        median <= bound,
        "median {median:.3} over {bound:.3}: {shares:?}"
    );
    // Each figure is a real share: more than an even split can give, at most everything.
    assert!(
        shares[0] >= 1.0 / K as f64 - 1e-9 && max <= 1.0,
        "{shares:?}"
    );
    net.shutdown().await;
}

/// A stream's first bytes are split too: the client links the other strands beside its
/// `BeginBraid` and uses them at once (the exit keeps a `Link` that comes first), so the app's
/// request goes erasure-coded, one shard per strand, instead of whole on the first strand
/// while the others are still linking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_split_over_every_strand_from_its_first_byte() {
    let _alone = support::alone().await;
    const K: usize = 3;
    const STREAMS: usize = 8;
    let s = Scenario {
        strands: K,
        ..Scenario::network("first-bytes", 8, 2, 3)
    };
    let net = ready(&s, |_| Faults::default()).await;
    let manager = net.proxy.manager().clone();
    let get = || {
        let addr = net.socks_addr();
        let port = net.http_v4.port();
        async move {
            let got = tokio::time::timeout(
                Duration::from_secs(30),
                fetch(addr, "127.0.0.1", port, 1024, Some(("first", "x"))),
            )
            .await
            .expect("bounded")
            .expect("fetch");
            assert_eq!(got.bytes, 1024);
        }
    };
    // The first stream builds the set; the next ones open on it, as a browser's would.
    let before = manager.stream_records().len();
    for _ in 0..=STREAMS {
        get().await;
    }
    let mut records = Vec::new();
    for _ in 0..500 {
        records = manager.stream_records().split_off(before);
        if records.len() > STREAMS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(records.len(), STREAMS + 1);
    // Fetched one after the other, so recorded in order: drop the one that built the set.
    records.remove(0);
    // Per stream: on how many strands the client sent data (the request's shards, the FIN).
    let spread: Vec<usize> = records
        .iter()
        .map(|r| {
            r.report
                .sent_per_strand
                .iter()
                .filter(|t| t.fragments_sent > 0)
                .count()
        })
        .collect();
    println!("strands that carried the client's fragments, per stream: {spread:?}");
    // A request sent whole on one strand, plus its FIN, touches at most two strands; coded
    // over all K, it touches all K.
    assert!(spread.iter().all(|&n| n >= K), "{spread:?}");
    net.shutdown().await;
}
