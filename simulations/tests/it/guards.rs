//! Entry guards over real QUIC: every circuit's first hop is a primary guard, a stream's
//! strands start at distinct ones, the guards survive a proxy restart (and a corrupt guard file
//! is a fresh start), and a guard that stalls every circuit is dropped by path bias.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use braid_relay::service::Faults;
use braid_simulations::http::fetch;
use braid_simulations::{Scenario, SimNetwork};
use braid_transport::PeerId;

use crate::support;

/// The peer ids of the relays on `path` (the proxy's directory indexes).
fn peers(net: &SimNetwork, path: &[usize]) -> Vec<PeerId> {
    let order = net.proxy.manager().relay_peers();
    path.iter().map(|&i| order[i]).collect()
}

/// 40 streams of 8 usernames (new keys build or take new sets, old keys reuse theirs): no
/// circuit of any kind ever starts outside the primary guards, and each stream's strands
/// start at distinct ones.
async fn first_hops_are_primary_guards(strands: usize) {
    let _shared = support::shared().await;
    let s = Scenario {
        strands,
        ..Scenario::network("guards", 8, 3, 3)
    };
    let net = SimNetwork::start(&s).await.expect("network");
    let manager = net.proxy.manager().clone();
    let primary: HashSet<PeerId> = manager.primary_guards().into_iter().collect();
    assert_eq!(primary.len(), 3.max(strands), "primaries: max(3, K)");
    let (socks, port) = (net.socks_addr(), net.http_v4.port());
    for i in 0..40 {
        let user = format!("user{}", i % 8);
        let body = fetch(socks, "localhost", port, 4096, Some((&user, "x"))).await;
        assert_eq!(body.expect("fetch").bytes, 4096, "stream {i}");
    }
    // Clean sets or circuits built after the last stream count too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        manager.primary_guards().into_iter().collect::<HashSet<_>>(),
        primary,
        "a healthy network keeps its primaries"
    );
    let built = manager.built_paths();
    assert!(built.len() >= 8, "{} circuits", built.len());
    for path in &built {
        let first = peers(&net, &path[..1])[0];
        assert!(
            primary.contains(&first),
            "a circuit started at a non-primary relay"
        );
        // A primary guard is never a middle beside its role as a guard here: 8 relays leave
        // room for K paths from K guards with their own middles.
        let middles = peers(&net, &path[1..path.len() - 1]);
        assert!(middles.iter().all(|m| !primary.contains(m)) || strands == 1);
    }
    if strands > 1 {
        let records = manager.stream_records();
        assert_eq!(records.len(), 40);
        // A stream opens on its first strand built and the others join as they are built; a
        // strand whose build times out on a loaded machine is retried only from a primary no
        // other strand uses (never from a fresh relay), so a set may have fewer than K.
        for r in &records {
            let firsts: Vec<usize> = r.paths.values().map(|p| p[0]).collect();
            let distinct: HashSet<_> = firsts.iter().collect();
            assert_eq!(distinct.len(), firsts.len(), "strands share a guard");
            assert!(
                (1..=strands).contains(&firsts.len()),
                "1 to K strands: {firsts:?}"
            );
        }
        let full = records.iter().filter(|r| r.paths.len() == strands).count();
        assert!(full >= 1, "no stream had K strands from K primaries");
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_strand_starts_at_a_distinct_primary_guard() {
    first_hops_are_primary_guards(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_circuit_starts_at_a_primary_guard() {
    first_hops_are_primary_guards(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_persist_across_a_proxy_restart() {
    let _shared = support::shared().await;
    let mut net = SimNetwork::start(&Scenario::network("restart", 8, 3, 3))
        .await
        .expect("network");
    let (socks, port) = (net.socks_addr(), net.http_v4.port());
    let body = fetch(socks, "localhost", port, 4096, None).await;
    assert_eq!(body.expect("fetch").bytes, 4096);
    let before = net.proxy.manager().primary_guards();
    assert_eq!(before.len(), 3);
    let file = net.proxy_config().data_dir.join("guards");
    net.restart_proxy().await.expect("restart");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file)
            .expect("guard file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(net.proxy.manager().primary_guards(), before, "same guards");
    let body = fetch(net.socks_addr(), "localhost", port, 4096, None).await;
    assert_eq!(body.expect("fetch after restart").bytes, 4096);
    for path in net.proxy.manager().built_paths() {
        assert!(before.contains(&peers(&net, &path[..1])[0]));
    }
    // A corrupt file: moved aside, a fresh start that works.
    let mut bytes = Vec::new();
    net.restart_proxy_after(|cfg| {
        bytes = std::fs::read(cfg.data_dir.join("guards")).unwrap();
        bytes[4] = 99; // an unknown version
        std::fs::write(cfg.data_dir.join("guards"), &bytes).unwrap();
    })
    .await
    .expect("restart");
    assert_eq!(std::fs::read(file.with_extension("bad")).unwrap(), bytes);
    let body = fetch(net.socks_addr(), "localhost", port, 4096, None).await;
    assert_eq!(body.expect("fetch after a fresh start").bytes, 4096);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalling_guard_is_dropped_by_path_bias() {
    let _shared = support::shared().await;
    let s = Scenario::network("stall", 12, 3, 3);
    let stalls: Vec<Arc<AtomicBool>> = (0..s.relays).map(|_| Arc::default()).collect();
    let st = stalls.clone();
    let net = SimNetwork::start_full(
        &s,
        move |i, _| Faults {
            stall: st[i].clone(),
            ..Faults::default()
        },
        |p| {
            // Cold builds take seconds on a loaded test machine: keep the default 15 s.
            p.path_bias_min_circuits = 4;
            p.path_bias_circuit_percent = 50;
        },
    )
    .await
    .expect("network");
    let manager = net.proxy.manager().clone();
    let primary = manager.primary_guards();
    // Stall a primary that is not an exit (relays 0..3 are exits), else the first one.
    let relay_of = |p: &PeerId| (0..s.relays).find(|&i| net.peer_id(i).as_ref() == Some(p));
    let victim = primary
        .iter()
        .filter_map(relay_of)
        .find(|&i| i >= s.exits)
        .unwrap_or_else(|| relay_of(&primary[0]).unwrap());
    let victim_peer = net.peer_id(victim).unwrap();
    let (socks, port) = (net.socks_addr(), net.http_v4.port());
    // A healthy stream first: links are up and every primary has built a circuit.
    let body = fetch(socks, "localhost", port, 4096, Some(("warm", "x"))).await;
    assert_eq!(body.expect("warm-up fetch").bytes, 4096);
    stalls[victim].store(true, Ordering::SeqCst);
    // Its builds time out after 15 s each, so path bias judges it after a minute or so of
    // streams, however fast the streams themselves are: bound the loop by time.
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    let mut n = 0;
    while !manager.disabled_guards().contains(&victim_peer) {
        assert!(
            std::time::Instant::now() < deadline && n < 300,
            "the stalling guard was not dropped after {n} streams"
        );
        let user = format!("user{n}");
        let body = fetch(socks, "localhost", port, 4096, Some((&user, "x"))).await;
        assert_eq!(
            body.expect("the other strands carry the stream").bytes,
            4096
        );
        n += 1;
        // Let the stalled builds time out.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let after = manager.primary_guards();
    assert!(!after.contains(&victim_peer));
    assert_eq!(after.len(), 3, "the next sampled guard moved up");
    // It works again, but path bias keeps it out of every first hop.
    stalls[victim].store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let from = manager.built_paths().len();
    for i in 0..6 {
        let user = format!("after{i}");
        let body = fetch(socks, "localhost", port, 4096, Some((&user, "x"))).await;
        assert_eq!(body.expect("fetch").bytes, 4096);
    }
    let built = manager.built_paths();
    assert!(built.len() >= from + 6);
    for path in &built[from..] {
        let first = peers(&net, &path[..1])[0];
        assert_ne!(first, victim_peer, "a dropped guard was a first hop");
        assert!(after.contains(&first));
    }
    net.shutdown().await;
}
