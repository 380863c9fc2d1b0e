//! Signals on real relay processes in a real network (three `braid relay`, a proxy, curl):
//! SIGHUP changes the exit's bandwidth rate without dropping a download in flight, and a relay
//! restarted mid-period resumes its persisted accounting count and refuses new circuits once
//! the budget is spent.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    HttpServer, Network, Proc, ProxyOptions, RelaySpec, braid_bin, curl_fetch, expected_sha256,
    sigterm,
};

/// Sends SIGHUP to `pid`.
fn sighup(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until `proc`'s stderr contains `needle` (bounded).
fn wait_log(proc: &mut Proc, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !proc.stderr().contains(needle) {
        assert!(
            proc.is_running(),
            "{} exited\n{}",
            proc.name,
            proc.stderr_tail()
        );
        assert!(
            Instant::now() < deadline,
            "{} logged no {needle:?} within {timeout:?}\n{}",
            proc.name,
            proc.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A network of guard, middle, exit and a one-strand proxy (every stream crosses the exit).
fn network(base: u8) -> Network {
    Network::start_with(
        base,
        &[
            RelaySpec::middle(),
            RelaySpec::middle(),
            RelaySpec::exit(&["accept *:*"]),
        ],
        &ProxyOptions {
            strands: Some(1),
            ..ProxyOptions::default()
        },
    )
}

/// Appends `extra` to relay `i`'s config file.
fn append_config(net: &Network, i: usize, extra: &str) {
    let path = net.dir().join(format!("relay{i}.toml"));
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
}

/// Fetches `size` bytes and returns the rate in bytes per second (the body is checked).
fn timed_fetch(net: &Network, port: u16, size: u64, name: &str) -> f64 {
    let out = net.dir().join(name);
    let t = Instant::now();
    let url = format!("http://127.0.0.1:{port}/bytes/{size}");
    let digest =
        curl_fetch(net.socks, &url, &out, 120).unwrap_or_else(|e| panic!("{e}\n{}", net.logs()));
    assert_eq!(digest, expected_sha256(size));
    size as f64 / t.elapsed().as_secs_f64()
}

#[test]
fn sighup_changes_the_rate_and_keeps_open_circuits() {
    let http = HttpServer::loopback();
    let mut net = network(211);
    let port = http.port();
    timed_fetch(&net, port, 4096, "warm");
    let exit = 2;
    // Cap the exit at 100 kB/s by reload (it started unlimited).
    append_config(
        &net,
        exit,
        "bandwidth_rate = \"100 kB/s\"\nbandwidth_burst = \"16 KiB\"\n",
    );
    sighup(net.relays[exit].pid());
    wait_log(
        &mut net.relays[exit],
        "reload: bandwidth_rate: unset -> 100000",
        Duration::from_secs(10),
    );
    let slow = timed_fetch(&net, port, 256 * 1024, "slow");
    // A 2 MiB download starts at the slow rate (about 21 s at 100 kB/s) ...
    let size = 2u64 << 20;
    let out = net.dir().join("across");
    let socks = net.socks;
    let started = Instant::now();
    let across = std::thread::spawn(move || {
        curl_fetch(
            socks,
            &format!("http://127.0.0.1:{port}/bytes/{size}"),
            &out,
            120,
        )
    });
    std::thread::sleep(Duration::from_secs(1));
    // ... and the rate is lifted while it runs.
    let path = net.dir().join(format!("relay{exit}.toml"));
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"100 kB/s\"", "\"50 MB/s\"")
        .replace("\"16 KiB\"", "\"1 MiB\"")
        .lines()
        .filter(|l| !l.starts_with("listen"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&path, text + "listen = [\"/ip4/127.0.0.213/tcp/1\"]\n").unwrap();
    sighup(net.relays[exit].pid());
    wait_log(
        &mut net.relays[exit],
        "reload: bandwidth_rate: 100000 -> 50000000",
        Duration::from_secs(10),
    );
    wait_log(
        &mut net.relays[exit],
        "reload: listen changed: needs a restart",
        Duration::from_secs(10),
    );
    // The download that crossed the reload completes intact, much sooner than 21 s.
    let digest = across
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}\n{}", net.logs()));
    assert_eq!(digest, expected_sha256(size));
    let across_time = started.elapsed();
    eprintln!("2 MiB across the reload in {across_time:?}");
    let fast = timed_fetch(&net, port, 2 << 20, "fast");
    eprintln!("rate at 100 kB/s: {slow:.0} B/s; after the reload: {fast:.0} B/s");
    assert!(slow < 150_000.0, "the cap did not hold: {slow:.0} B/s");
    assert!(
        fast > 4.0 * slow,
        "the reload did not lift the rate: {slow:.0} -> {fast:.0} B/s"
    );
    assert!(across_time < Duration::from_secs(15), "{across_time:?}");
    // A new exit policy by reload: the exit refuses the server's port from now on, and its
    // descriptor is signed again with the policy.
    let descriptor = net.dir().join(format!("relay{exit}/descriptor"));
    let before = std::fs::read_to_string(&descriptor).unwrap();
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("exit_policy"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        &path,
        format!("{text}exit_policy = [\"reject *:{port}\", \"accept *:*\"]\n"),
    )
    .unwrap();
    sighup(net.relays[exit].pid());
    wait_log(
        &mut net.relays[exit],
        "descriptor signed again and written",
        Duration::from_secs(10),
    );
    assert_ne!(std::fs::read_to_string(&descriptor).unwrap(), before);
    let url = format!("http://127.0.0.1:{port}/bytes/4096");
    let refused = curl_fetch(net.socks, &url, &net.dir().join("policy"), 20);
    assert!(refused.is_err(), "the reloaded exit policy was not applied");
    // SIGHUP killed nothing.
    for r in &mut net.relays {
        assert!(r.is_running(), "{} exited", r.name);
    }
}

#[test]
fn a_restarted_relay_resumes_its_spent_budget() {
    let http = HttpServer::loopback();
    let mut net = network(215);
    let port = http.port();
    let exit = 2;
    // A budget by reload, then traffic through the exit.
    append_config(&net, exit, "accounting_max = \"50 MB\"\n");
    sighup(net.relays[exit].pid());
    wait_log(
        &mut net.relays[exit],
        "reload: accounting_max: unset -> 50000000",
        Duration::from_secs(10),
    );
    timed_fetch(&net, port, 1 << 20, "before");
    // A clean stop writes the count.
    sigterm(net.relays[exit].pid());
    assert!(
        net.relays[exit]
            .wait_exit(Duration::from_secs(10))
            .is_some()
    );
    let data = net.dir().join(format!("relay{exit}"));
    let saved = std::fs::read_to_string(data.join("accounting")).unwrap();
    let used: u64 = saved
        .lines()
        .find_map(|l| l.strip_prefix("used = "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(used >= 1 << 20, "{saved}");
    // Restart on the same addresses (the proxy's directory names them) with a budget the
    // persisted count has spent: a fresh count (0) would admit circuits, the resumed one not.
    let descriptor = braid_node::relay_node::read_descriptor(&data.join("descriptor")).unwrap();
    let listen: Vec<String> = descriptor
        .descriptor()
        .addresses
        .iter()
        .map(|a| format!("{a:?}"))
        .collect();
    let path = net.dir().join(format!("relay{exit}.toml"));
    let text: String = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("listen") && !l.starts_with("accounting_max"))
        .map(|l| format!("{l}\n"))
        .collect();
    let budget = used - 4096;
    std::fs::write(
        &path,
        format!(
            "{text}listen = [{}]\naccounting_max = {budget}\n",
            listen.join(", ")
        ),
    )
    .unwrap();
    let mut cmd = Command::new(braid_bin());
    cmd.arg("relay").arg("--config").arg(&path);
    let mut relay = Proc::spawn("exit (restarted)", cmd, &net.dir().join("exit2.stderr"));
    relay.wait_line("ready descriptor=", Duration::from_secs(30));
    wait_log(&mut relay, "accounting: ", Duration::from_secs(5));
    assert!(
        relay.stderr().contains(" used, period ends "),
        "{}",
        relay.stderr_tail()
    );
    net.relays[exit] = relay;
    // New circuits through the exit are refused: the fetch fails.
    let url = format!("http://127.0.0.1:{port}/bytes/4096");
    let refused = curl_fetch(net.socks, &url, &net.dir().join("refused"), 20);
    assert!(
        refused.is_err(),
        "a spent budget admitted a circuit\n{}",
        net.logs()
    );
    wait_log(
        &mut net.relays[exit],
        "accounting budget spent",
        Duration::from_secs(5),
    );
    // A bigger budget by reload admits circuits again: the refusal was the budget.
    let text = std::fs::read_to_string(&path).unwrap().replace(
        &format!("accounting_max = {budget}"),
        "accounting_max = \"1 GB\"",
    );
    std::fs::write(&path, text).unwrap();
    sighup(net.relays[exit].pid());
    wait_log(
        &mut net.relays[exit],
        "accounting budget available again",
        Duration::from_secs(10),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match curl_fetch(net.socks, &url, &net.dir().join("after"), 20) {
            Ok(d) => {
                assert_eq!(d, expected_sha256(4096));
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "{e}\n{}", net.logs()),
        }
    }
}
