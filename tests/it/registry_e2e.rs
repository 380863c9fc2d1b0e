//! The registry end to end, with `braid` binaries only: three `braid registry` processes form
//! a Raft group, relay processes configured with nothing but the registry list publish to
//! them (each is dialed back first), and a proxy configured with nothing but the registry list
//! fetches and verifies the majority-signed directory and carries real curl fetches.
//!
//! Then the Raft leader is SIGKILLed: another registry takes over, a relay started afterwards
//! (the only exit for a second HTTP port) is admitted and reaches the proxy's refreshed
//! directory, and the killed registry, restarted from its data directory, catches up. A relay
//! that claims an address it cannot be reached on is refused and never listed.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{self, HttpServer, Proc, braid_bin, curl_fetch, expected_sha256, write_file};

/// Registries on 127.0.0.(BASE + i), relays after them.
const BASE: u8 = 120;
/// Seconds between directory snapshots in this test (the default is five minutes).
const SNAPSHOT_SECS: u64 = 2;
/// The proxy's refresh interval (the smallest allowed).
const REFRESH_SECS: u64 = 10;
/// Long enough for a publish, a snapshot and a refresh, with room for a slow CI machine.
const LISTED_TIMEOUT: Duration = Duration::from_secs(90);
/// The same for a relay started right after the leader was lost.
const AFTER_FAILOVER_TIMEOUT: Duration = Duration::from_secs(180);
const READY: Duration = Duration::from_secs(30);

/// A TOML string literal.
fn q(s: &str) -> String {
    format!("{s:?}")
}

fn free_udp_port(ip: Ipv4Addr) -> u16 {
    UdpSocket::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The registry group and everything around it, in one temporary directory.
struct Net {
    dir: tempfile::TempDir,
    /// `[[registries]]` tables listing all three.
    list: String,
    registries: Vec<Option<Proc>>,
    registry_configs: Vec<PathBuf>,
    relays: Vec<Proc>,
    proxy: Option<Proc>,
    socks: Option<SocketAddr>,
}

impl Net {
    /// Three registries with pre-made identities (`braid id`) on fixed QUIC ports.
    fn registries() -> Net {
        let dir = tempfile::tempdir().unwrap();
        let mut list = String::new();
        let mut listens = Vec::new();
        for i in 0..3u8 {
            let data = dir.path().join(format!("registry{i}"));
            let out = Command::new(braid_bin())
                .args(["id", "--data-dir"])
                .arg(&data)
                .output()
                .unwrap();
            assert!(out.status.success(), "braid id: {out:?}");
            let peer = String::from_utf8(out.stdout).unwrap().trim().to_string();
            let ip = Ipv4Addr::new(127, 0, 0, BASE + i);
            let addr = format!("/ip4/{ip}/udp/{}/quic-v1", free_udp_port(ip));
            list += &format!(
                "\n[[registries]]\npeer = {}\naddress = {}\n",
                q(&peer),
                q(&addr)
            );
            listens.push((data, addr));
        }
        let mut registry_configs = Vec::new();
        for (i, (data, addr)) in listens.iter().enumerate() {
            let text = format!(
                "data_dir = {}\nlisten = [{}]\nsnapshot_interval_secs = {SNAPSHOT_SECS}\n\
                 snapshot_validity_secs = 600\nallow_private_addresses = true\n\
                 # every relay is on 127.0.0.x: one /24\nmax_relays_per_ipv4_24 = 64\n{list}",
                q(&data.display().to_string()),
                q(addr)
            );
            registry_configs.push(write_file(dir.path(), &format!("registry{i}.toml"), &text));
        }
        let mut net = Net {
            dir,
            list,
            registries: Vec::new(),
            registry_configs,
            relays: Vec::new(),
            proxy: None,
            socks: None,
        };
        for i in 0..3 {
            let p = net.spawn_registry(i);
            net.registries.push(Some(p));
        }
        for r in net.registries.iter_mut().flatten() {
            r.wait_line("ready peer_id=", READY);
        }
        net
    }

    fn spawn_registry(&self, i: usize) -> Proc {
        let mut cmd = Command::new(braid_bin());
        cmd.arg("registry")
            .arg("--config")
            .arg(&self.registry_configs[i]);
        let err = self.dir.path().join(format!("registry{i}.stderr"));
        Proc::spawn(&format!("registry {i}"), cmd, &err)
    }

    /// Waits until one registry says it leads (from the `role` lines) and returns its index.
    fn leader(&mut self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        let mut leader = None;
        while Instant::now() < deadline {
            for (i, r) in self.registries.iter_mut().enumerate() {
                let Some(r) = r else { continue };
                for line in r.drain_lines() {
                    if line.starts_with("role leader") {
                        leader = Some(i);
                    } else if line.starts_with("role ") && leader == Some(i) {
                        leader = None;
                    }
                }
            }
            if let Some(i) = leader {
                return i;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "no registry became the leader within {timeout:?}\n{}",
            self.logs()
        );
    }

    /// Starts relay `n` on 127.0.0.(BASE + 10 + n) with only the registry list (plus `extra`
    /// config lines); returns after its `ready` line.
    fn relay(&mut self, n: u8, policy: &str, extra: &str) -> usize {
        let ip = Ipv4Addr::new(127, 0, 0, BASE + 10 + n);
        let data = self.dir.path().join(format!("relay{n}"));
        let text = format!(
            "nickname = \"reg{n}\"\ndata_dir = {}\nlisten = [\"/ip4/{ip}/udp/0/quic-v1\"]\n\
             exit_policy = [{}]\nrepublish_interval_secs = 10\n{extra}{}",
            q(&data.display().to_string()),
            q(policy),
            self.list
        );
        let path = write_file(self.dir.path(), &format!("relay{n}.toml"), &text);
        let mut cmd = Command::new(braid_bin());
        cmd.arg("relay").arg("--config").arg(&path);
        let err = self.dir.path().join(format!("relay{n}.stderr"));
        let mut p = Proc::spawn(&format!("relay {n}"), cmd, &err);
        p.wait_line("ready ", READY);
        self.relays.push(p);
        self.relays.len() - 1
    }

    /// Starts the proxy with only the registry list.
    fn proxy(&mut self) {
        let text = format!(
            "socks_listen = \"127.0.0.1:0\"\ndirectory_refresh_secs = {REFRESH_SECS}\n\
             strands = 1\ndata_dir = {:?}\n{}",
            self.dir.path().join("proxy").display().to_string(),
            self.list
        );
        let path = write_file(self.dir.path(), "proxy.toml", &text);
        let mut cmd = Command::new(braid_bin());
        cmd.arg("proxy").arg("--config").arg(&path);
        let mut p = Proc::spawn("proxy", cmd, &self.dir.path().join("proxy.stderr"));
        let addr = p.wait_line("ready socks5=", Duration::from_secs(60));
        self.socks = Some(addr.parse().unwrap());
        self.proxy = Some(p);
    }

    /// curl through the proxy until the body arrives whole (the directory may not list every
    /// relay yet), at most `timeout`. Returns how long it took.
    fn fetch_until_ok(&self, port: u16, size: u64, timeout: Duration) -> Duration {
        let started = Instant::now();
        let url = format!("http://127.0.0.1:{port}/bytes/{size}");
        let out = self.dir.path().join(format!("body-{port}"));
        let mut last = String::new();
        while started.elapsed() < timeout {
            match curl_fetch(self.socks.unwrap(), &url, &out, 20) {
                Ok(digest) => {
                    assert_eq!(digest, expected_sha256(size), "body of {url} differs");
                    return started.elapsed();
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!(
            "{url} never worked within {timeout:?}: {last}\n{}",
            self.logs()
        );
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for p in self
            .registries
            .iter()
            .flatten()
            .chain(&self.relays)
            .chain(&self.proxy)
        {
            out.push_str(&p.stderr_tail());
            out.push('\n');
        }
        out
    }
}

fn data_dir(net: &Net, name: &str) -> PathBuf {
    net.dir.path().join(name)
}

fn stderr_of(p: &Proc) -> String {
    support::strip_ansi(&p.stderr())
}

fn assert_dir_exists(p: &Path) {
    assert!(p.is_dir(), "{} is missing", p.display());
}

#[test]
fn relays_and_a_proxy_with_only_the_registry_list_survive_losing_the_leader() {
    let _alone = support::one_network_at_a_time();
    let http = HttpServer::start(&[
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
    ]);
    let (port_a, port_b) = (http.addrs[0].port(), http.addrs[1].port());
    let mut net = Net::registries();
    let first_leader = net.leader(Duration::from_secs(30));

    // Five relays: four middles and one exit for port A only.
    let started = Instant::now();
    for n in 0..4 {
        net.relay(n, "reject *:*", "");
    }
    net.relay(4, &format!("accept *:{port_a}"), "");
    // A relay that claims an address where nothing listens: the registry's dial-back fails.
    let liar = net.relay(
        9,
        "accept *:*",
        "advertise = [\"/ip4/127.0.0.1/udp/9/quic-v1\"]\n",
    );
    net.proxy();
    let took = net.fetch_until_ok(port_a, 1 << 20, LISTED_TIMEOUT);
    eprintln!(
        "relay start to a working fetch through the registries' directory: {:?} (fetch loop {took:?})",
        started.elapsed()
    );
    net.fetch_until_ok(port_a, 8 << 20, Duration::from_secs(60));

    // Kill the leader: another takes over.
    let killed = net.registries[first_leader].as_mut().unwrap().sigkill();
    eprintln!("leader registry {first_leader} killed: {killed}");
    net.registries[first_leader] = None;
    let second_leader = net.leader(Duration::from_secs(30));
    assert_ne!(second_leader, first_leader);

    // A relay started now, the only exit for port B, is admitted and reaches the proxy.
    // (Listing it needs both live registries' attestations through the new leader, whose
    // replication to the dead member times out meanwhile: seen to take 60-80 s under CI load.)
    net.relay(5, &format!("accept *:{port_b}"), "");
    let took = net.fetch_until_ok(port_b, 1 << 20, AFTER_FAILOVER_TIMEOUT);
    eprintln!("new exit usable through the proxy {took:?} after its start (leader lost before)");
    // And the old part of the network still works.
    net.fetch_until_ok(port_a, 1 << 20, Duration::from_secs(30));

    // Restart the killed registry from its data directory: it rejoins and catches up, so the
    // group survives losing the second leader as well.
    assert_dir_exists(&data_dir(&net, &format!("registry{first_leader}")));
    let restarted = net.spawn_registry(first_leader);
    net.registries[first_leader] = Some(restarted);
    net.registries[first_leader]
        .as_mut()
        .unwrap()
        .wait_line("ready peer_id=", READY);
    // Give it a bounded moment to replicate, then take the current leader away too: only the
    // restarted registry and one other remain, a majority that can commit only if the
    // restarted one caught up.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_follower = false;
    while Instant::now() < deadline && !saw_follower {
        for line in net.registries[first_leader].as_mut().unwrap().drain_lines() {
            saw_follower |= line.starts_with("role follower") || line.starts_with("role leader");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        saw_follower,
        "the restarted registry never joined\n{}",
        net.logs()
    );
    net.registries[second_leader].as_mut().unwrap().sigkill();
    net.registries[second_leader] = None;
    let third = net.leader(Duration::from_secs(30));
    assert_ne!(third, second_leader);
    // A relay published now must commit through the two survivors, the restarted one among
    // them, and reach the proxy.
    let exit_c = net.relay(6, &format!("accept *:{port_b}"), "");
    let deadline = Instant::now() + LISTED_TIMEOUT;
    loop {
        let log = stderr_of(&net.relays[exit_c]);
        if log.contains("relay descriptor published") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no commit with the restarted registry in the majority\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // The liar was refused as unreachable (each registry's dial-back to its claimed address
    // times out) and never listed.
    let deadline = Instant::now() + Duration::from_secs(120);
    let liar_log = loop {
        let log = stderr_of(&net.relays[liar]);
        if log.contains("not published") || Instant::now() >= deadline {
            break log;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        liar_log.contains("not published") && liar_log.to_lowercase().contains("unreachable"),
        "the liar must be told it is unreachable:\n{liar_log}"
    );
    assert!(
        !liar_log.contains("relay descriptor published"),
        "{liar_log}"
    );
}
