//! `braid sim --serve`: a whole network in one process, one `ready` line, a curl fetch through
//! it, and a clean exit on SIGTERM.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{HttpServer, Proc, braid_bin, curl_fetch, expected_sha256, sigterm};

#[test]
fn sim_serve_prints_one_ready_line_serves_and_stops_on_sigterm() {
    let _alone = crate::support::one_network_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let http = HttpServer::loopback();
    let mut cmd = Command::new(braid_bin());
    cmd.args(["sim", "--serve", "--for", "20"]);
    let started = Instant::now();
    let mut sim = Proc::spawn("braid sim --serve", cmd, &tmp.path().join("sim.stderr"));
    let addr = sim.wait_line("ready socks5=", Duration::from_secs(60));
    eprintln!("sim ready at {addr} after {:?}", started.elapsed());
    // `ready socks5=ADDR api=http://ADDR token=PATH`
    let socks = addr.split_whitespace().next().unwrap().parse().unwrap();

    let url = format!("http://localhost:{}/bytes/1048576", http.port());
    let digest = curl_fetch(socks, &url, &tmp.path().join("body"), 30)
        .unwrap_or_else(|e| panic!("{e}\n{}", sim.stderr_tail()));
    assert_eq!(digest, expected_sha256(1 << 20));

    let term_sent = Instant::now();
    sigterm(sim.pid());
    let status = sim.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| {
        panic!(
            "sim still running 10 s after SIGTERM\n{}",
            sim.stderr_tail()
        )
    });
    eprintln!(
        "sim exited {status} {:?} after SIGTERM",
        term_sent.elapsed()
    );
    assert!(
        status.success(),
        "sim exit status {status}\n{}",
        sim.stderr_tail()
    );
    assert!(
        term_sent.elapsed() < Duration::from_secs(5),
        "sim took {:?} to stop",
        term_sent.elapsed()
    );
    // Give the reader thread a moment to deliver whatever else was printed.
    std::thread::sleep(Duration::from_millis(100));
    let rest = sim.drain_lines();
    assert!(rest.is_empty(), "stdout after the ready line: {rest:?}");
}

#[test]
fn sim_serve_for_stops_by_itself() {
    let _alone = crate::support::one_network_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(braid_bin());
    cmd.args(["sim", "--serve", "--for", "2"]);
    let mut sim = Proc::spawn(
        "braid sim --serve --for 2",
        cmd,
        &tmp.path().join("sim.stderr"),
    );
    sim.wait_line("ready socks5=", Duration::from_secs(60));
    let ready = Instant::now();
    let status = sim
        .wait_exit(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("sim --for 2 still running\n{}", sim.stderr_tail()));
    assert!(
        status.success(),
        "exit status {status}\n{}",
        sim.stderr_tail()
    );
    assert!(
        ready.elapsed() >= Duration::from_millis(1500),
        "stopped after only {:?}",
        ready.elapsed()
    );
}
