//! Braided streams end to end with the real curl binary and real relay processes: a proxy with
//! `strands = 3` splits a 32 MiB download over three circuits to one exit; a relay process that
//! carries one strand is SIGKILLed mid-download and the body must still arrive whole (SHA-256).
//! Also: with too few relays for three disjoint strands, fewer are used and fetches still work.
//!
//! The strands' relays are read from the proxy's debug log (`strand path chosen strand=I
//! path=GUARD,MIDDLE,EXIT`, target `braid_router::manager`) and mapped to relay processes by
//! the peer ids of the descriptors they announced.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    HttpServer, Network, Proc, ProxyOptions, RelaySpec, expected_sha256, sha256_hex, strip_ansi,
};

/// The proxy's log filter: strand paths, strand loss and replacement, the stream's summary.
const PROXY_LOG: &str = "info,braid_router::manager=debug,braid_router::strands=debug,\
                         braid_router::proxy=debug,braid_relay::shared::braid=debug";
/// The download: large enough to last a few seconds at `CURL_RATE`.
const BODY: u64 = 32 << 20;
/// curl's `--limit-rate`, so the download is still running when the relay dies on a fast
/// machine (32 MiB at 4 MiB/s is 8 s at least).
const CURL_RATE: &str = "4M";
/// Bytes curl must have written before the kill: the stream is flowing on its strands.
const KILL_AFTER: u64 = 2 << 20;
/// How long the strand paths and the first bytes may take to show up.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// curl's `--max-time` for the whole download; the test waits a little longer for it.
const CURL_MAX_TIME: u64 = 150;

/// One `strand path chosen` line of the proxy log.
#[derive(Debug, Clone)]
struct StrandPath {
    strand: usize,
    /// Peer ids, guard first, exit last.
    peers: Vec<String>,
}

/// Every `strand path chosen` line of `log`, in order.
fn strand_paths(log: &str) -> Vec<StrandPath> {
    strip_ansi(log)
        .lines()
        .filter(|l| l.contains("strand path chosen"))
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(name))
                    .unwrap_or_else(|| panic!("no `{name}` in log line {line:?}"))
                    .to_string()
            };
            StrandPath {
                strand: field("strand=").parse().unwrap(),
                peers: field("path=").split(',').map(str::to_string).collect(),
            }
        })
        .collect()
}

/// Checks that `paths` are one strand set as designed: numbered 0.., `hops` relays each, one
/// shared exit, and no guard or middle relay on two strands.
fn assert_disjoint_set(paths: &[StrandPath], hops: usize) {
    let exit = &paths[0].peers[hops - 1];
    let mut seen = BTreeSet::new();
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(p.strand, i, "strand numbers: {paths:?}");
        assert_eq!(p.peers.len(), hops, "path length: {paths:?}");
        assert_eq!(
            &p.peers[hops - 1],
            exit,
            "strands end at one exit: {paths:?}"
        );
        for peer in &p.peers[..hops - 1] {
            assert_ne!(peer, exit, "the exit is also a guard or middle: {paths:?}");
            assert!(
                seen.insert(peer.clone()),
                "{peer} on two strands: {paths:?}"
            );
        }
    }
}

/// The relay index of `peer` in `peers` (the network's relays, in order).
fn relay_index(peers: &[String], peer: &str) -> usize {
    peers
        .iter()
        .position(|p| p == peer)
        .unwrap_or_else(|| panic!("the proxy logged {peer}, no relay of this network: {peers:?}"))
}

/// Starts curl in the background fetching `url` through the proxy into `out`.
fn spawn_curl(net: &Network, url: &str, out: &Path, rate: Option<&str>) -> Proc {
    let mut cmd = Command::new("curl");
    cmd.arg("--socks5-hostname")
        .arg(net.socks.to_string())
        .args(["-sS", "--fail", "--max-time", &CURL_MAX_TIME.to_string()]);
    if let Some(rate) = rate {
        cmd.args(["--limit-rate", rate]);
    }
    cmd.arg("-o").arg(out).arg(url);
    Proc::spawn("curl", cmd, &net.dir().join("curl.stderr"))
}

/// What [`finish_curl`] saw.
struct Finished {
    /// Hex SHA-256 of the file curl wrote.
    digest: String,
    /// The longest time the file did not grow while curl ran (sampled every 250 ms).
    longest_stall: Duration,
}

/// Waits for curl to end, watching the output grow, and returns the SHA-256 of what it wrote;
/// panics with every log if it fails or outlives its `--max-time`.
fn finish_curl(curl: &mut Proc, net: &Network, out: &Path) -> Finished {
    let deadline = Instant::now() + Duration::from_secs(CURL_MAX_TIME + 15);
    let (mut len, mut grew_at) = (file_len(out), Instant::now());
    let mut longest_stall = Duration::ZERO;
    let status = loop {
        if let Some(status) = curl.wait_exit(Duration::from_millis(250)) {
            break status;
        }
        let now = file_len(out);
        if now != len {
            (len, grew_at) = (now, Instant::now());
        }
        longest_stall = longest_stall.max(grew_at.elapsed());
        assert!(
            Instant::now() < deadline,
            "curl still running past its --max-time\n{}",
            net.logs()
        );
    };
    assert!(
        status.success(),
        "curl failed: {status} after writing {} bytes\n{}\n{}",
        file_len(out),
        curl.stderr_tail(),
        net.logs()
    );
    Finished {
        digest: sha256_hex(&std::fs::read(out).unwrap()),
        longest_stall,
    }
}

/// The size of `path`, 0 while it does not exist.
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The proxy log lines that contain any of `needles` (ANSI stripped), for the test's output.
fn log_lines(log: &str, needles: &[&str]) -> Vec<String> {
    strip_ansi(log)
        .lines()
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Checks the peer ids computed from the descriptors against the ids the relays logged, when
/// they logged their `relay started` line (RUST_LOG may hide it).
fn assert_peer_ids_match_relay_logs(net: &Network, peers: &[String]) {
    for (relay, peer) in net.relays.iter().zip(peers) {
        let log = strip_ansi(&relay.stderr());
        if let Some(line) = log.lines().find(|l| l.contains("relay started")) {
            assert!(
                line.contains(&format!("peer_id={peer}")),
                "{}: descriptor gives {peer}, log says {line:?}",
                relay.name
            );
        }
    }
}

#[test]
fn download_survives_sigkill_of_a_strand_middle_relay() {
    let http = HttpServer::loopback();
    // Eight non-exits: three disjoint strands use six, the replacement strand the other two.
    let mut specs = vec![RelaySpec::middle(); 8];
    specs.push(RelaySpec::exit(&["accept *:*"]));
    let options = ProxyOptions {
        strands: Some(3),
        rust_log: Some(PROXY_LOG.into()),
    };
    let mut net = Network::start_with(100, &specs, &options);
    let peers = net.relay_peer_ids();
    assert_peer_ids_match_relay_logs(&net, &peers);

    let url = format!("http://localhost:{}/bytes/{BODY}", http.port());
    let out = net.dir().join("body-32m");
    let started = Instant::now();
    let mut curl = spawn_curl(&net, &url, &out, Some(CURL_RATE));

    // Wait until the stream's strand set is logged and bytes are flowing through it.
    let paths = loop {
        let paths = strand_paths(&net.proxy.stderr());
        let got = file_len(&out);
        if paths.len() >= 3 && got >= KILL_AFTER {
            break paths;
        }
        assert!(
            curl.is_running(),
            "curl ended before the kill ({got} bytes, {} strand paths logged)\n{}\n{}",
            paths.len(),
            curl.stderr_tail(),
            net.logs()
        );
        assert!(
            started.elapsed() < START_TIMEOUT,
            "after {START_TIMEOUT:?}: {} strand paths logged, {got} bytes arrived\n{}",
            paths.len(),
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        paths.len(),
        3,
        "one stream, one set of K = 3 strands: {paths:?}"
    );
    assert_disjoint_set(&paths, 3);

    // The victim: the middle relay of strand 0, the strand that opened the stream.
    let victim_peer = paths[0].peers[1].clone();
    let victim = relay_index(&peers, &victim_peer);
    let exit = relay_index(&peers, &paths[0].peers[2]);
    assert_ne!(victim, exit);
    assert!(
        net.relays[victim].is_running(),
        "{} died on its own",
        net.relays[victim].name
    );
    let at_kill = file_len(&out);
    let status = net.relays[victim].sigkill();
    assert_eq!(
        status.signal(),
        Some(9),
        "{} ended by {status}, not SIGKILL",
        net.relays[victim].name
    );
    assert!(!net.relays[victim].is_running());
    eprintln!(
        "killed {} (middle of strand 0, {victim_peer}) after {:?} at {at_kill} of {BODY} bytes",
        net.relays[victim].name,
        started.elapsed()
    );
    assert!(
        at_kill < BODY,
        "the download ended before the kill; it proves nothing"
    );

    let done = finish_curl(&mut curl, &net, &out);
    eprintln!(
        "32 MiB through 3 strands in {:?}; longest time without progress: {:?}",
        started.elapsed(),
        done.longest_stall
    );
    assert_eq!(done.digest, expected_sha256(BODY), "body of {url} differs");
    // The engine treats a strand whose queue stalls for 2 s as lost (without waiting for the
    // transport's 20 s dead-peer timeout); allow for a loaded CI machine.
    assert!(
        done.longest_stall < Duration::from_secs(10),
        "the download stalled {:?} after the kill",
        done.longest_stall
    );
    assert_eq!(
        file_len(&out),
        BODY,
        "curl wrote a different length than asked"
    );

    // The other relays of the set still run: only the victim's strand was lost.
    for p in &paths {
        for peer in &p.peers {
            let i = relay_index(&peers, peer);
            if i != victim {
                assert!(net.relays[i].is_running(), "{} died", net.relays[i].name);
            }
        }
    }
    let log = net.proxy.stderr();
    for line in log_lines(
        &log,
        &[
            "strand down",
            "replacement strand",
            "no replacement",
            "braided stream ended",
            "braided stream failed",
        ],
    ) {
        eprintln!("proxy: {line}");
    }
    assert!(
        !strip_ansi(&log).contains("braided stream failed"),
        "the proxy reports a failed braided stream\n{}",
        net.logs()
    );
}

#[test]
fn too_few_relays_for_three_disjoint_strands_uses_fewer() {
    let http = HttpServer::loopback();
    // Four non-exits: two disjoint guard+middle pairs, not three.
    let mut specs = vec![RelaySpec::middle(); 4];
    specs.push(RelaySpec::exit(&["accept *:*"]));
    let options = ProxyOptions {
        strands: Some(3),
        rust_log: Some(PROXY_LOG.into()),
    };
    let net = Network::start_with(110, &specs, &options);
    let peers = net.relay_peer_ids();

    let size = 1 << 20;
    let url = format!("http://localhost:{}/bytes/{size}", http.port());
    let out = net.dir().join("body-1m");
    let mut curl = spawn_curl(&net, &url, &out, None);
    let done = finish_curl(&mut curl, &net, &out);
    assert_eq!(done.digest, expected_sha256(size), "body of {url} differs");

    let log = net.proxy.stderr();
    let paths = strand_paths(&log);
    assert_eq!(paths.len(), 2, "two disjoint strands fit: {paths:?}");
    assert_disjoint_set(&paths, 3);
    for p in &paths {
        for peer in &p.peers {
            relay_index(&peers, peer);
        }
    }
    assert!(
        strip_ansi(&log).contains("fewer disjoint strands than asked"),
        "the proxy does not say it built fewer strands\n{}",
        net.proxy.stderr_tail()
    );
}
