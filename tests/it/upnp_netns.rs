//! `braid relay` with `upnp = true` behind a real UPnP router: network namespaces wan /
//! home-router (NAT + miniupnpd) / home-host built by tests/netns/topo.sh, the relay in
//! home-host, peers in wan. Needs root; without network namespaces every test prints
//! "SKIP: ..." and passes. miniupnpd and upnpc must be installed (`.ci/run` installs them).
//!
//! Each test builds its own topology under its own namespace prefix and tears it down in a
//! Drop guard; every child is killed by PID and every wait is bounded.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

const HOST_IP: &str = "10.77.0.2";
const ROUTER_WAN_IP: &str = "198.18.0.2";
const IGD_URL: &str = "http://10.77.0.1:5000/rootDesc.xml";

fn netns_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/netns")
}

/// Runs a command with a time bound (through coreutils `timeout`).
fn run(secs: u32, cmd: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("timeout");
    c.arg(secs.to_string()).args(cmd).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `Some(reason)` when this machine cannot create network namespaces (then the test skips).
fn netns_unavailable(prefix: &str) -> Option<String> {
    let probe = format!("{prefix}probe");
    let out = Command::new("ip")
        .args(["netns", "add", &probe])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => Some(format!("cannot run `ip`: {e}")),
        Ok(o) if !o.status.success() => Some(text(&o).trim().to_string()),
        Ok(_) => {
            let _ = Command::new("ip").args(["netns", "del", &probe]).output();
            None
        }
    }
}

fn require_tools() {
    for tool in ["miniupnpd", "upnpc", "nft", "python3"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            found,
            "{tool} is not installed: .ci/run installs it (apt-get install -y miniupnpd-nftables \
             miniupnpc nftables iproute2 iptables)"
        );
    }
}

/// The wan / home-router / home-host topology; `topo.sh down` on drop.
struct Topo {
    prefix: String,
    run_dir: PathBuf,
}

impl Topo {
    /// Builds it, or returns `None` (after printing SKIP) when namespaces are unavailable.
    fn up(tag: &str, workaround: &str) -> Option<Topo> {
        let prefix = format!("bu{}{tag}-", std::process::id() % 100_000);
        if let Some(reason) = netns_unavailable(&prefix) {
            println!("SKIP: network namespaces unavailable: {reason}");
            return None;
        }
        require_tools();
        let run_dir =
            std::env::temp_dir().join(format!("braid-upnp-{}", prefix.trim_end_matches('-')));
        let _ = std::fs::remove_dir_all(&run_dir);
        let topo = Topo { prefix, run_dir };
        let out = topo.topo("up", workaround);
        assert!(out.status.success(), "topo.sh up failed:\n{}", text(&out));
        Some(topo)
    }

    fn topo(&self, verb: &str, workaround: &str) -> Output {
        let script = netns_dir().join("topo.sh");
        run(
            60,
            &[script.to_str().unwrap(), verb],
            &[
                ("NS_PREFIX", &self.prefix),
                ("RUN_DIR", self.run_dir.to_str().unwrap()),
                ("MINIUPNPD_WORKAROUND", workaround),
            ],
        )
    }

    fn ns(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// `upnpc -l` from home-host (`-u` skips SSDP, see the reference README's gotcha 2).
    fn upnpc_list(&self) -> String {
        let ns = self.ns("home-host");
        text(&run(
            15,
            &["ip", "netns", "exec", &ns, "upnpc", "-u", IGD_URL, "-l"],
            &[],
        ))
    }

    fn nft_ruleset(&self) -> String {
        let ns = self.ns("home-router");
        text(&run(
            10,
            &["ip", "netns", "exec", &ns, "nft", "list", "ruleset"],
            &[],
        ))
    }

    /// Bytes received so far on home-host's LAN interface.
    fn home_rx_bytes(&self) -> u64 {
        let path = "/sys/class/net/eth0/statistics/rx_bytes";
        let ns = self.ns("home-host");
        let out = run(5, &["ip", "netns", "exec", &ns, "cat", path], &[]);
        text(&out).trim().parse().unwrap()
    }

    /// Whether a TCP connect from ns wan to `ip:port` succeeds within 5 s.
    fn tcp_from_wan(&self, ip: &str, port: u16) -> bool {
        let ns = self.ns("wan");
        let probe = format!("exec 3<>/dev/tcp/{ip}/{port}");
        run(6, &["ip", "netns", "exec", &ns, "bash", "-c", &probe], &[])
            .status
            .success()
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        let out = self.topo("down", "stun");
        if !out.status.success() {
            eprintln!("topo.sh down:\n{}", text(&out));
        }
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// `braid relay` inside ns home-host; killed on drop.
struct Relay {
    child: Child,
    lines: Receiver<String>,
    stderr: PathBuf,
    data_dir: PathBuf,
}

impl Relay {
    fn start(topo: &Topo, dir: &Path, udp: u16, tcp: u16, lease: u64) -> Relay {
        let data_dir = dir.join("data");
        let config = format!(
            "nickname = \"netnshome\"\ndata_dir = {data:?}\n\
             listen = [\"/ip4/{HOST_IP}/udp/{udp}/quic-v1\", \"/ip4/{HOST_IP}/tcp/{tcp}\"]\n\
             upnp = true\nupnp_lease_secs = {lease}\n",
            data = data_dir.to_str().unwrap()
        );
        let mut relay = Relay::spawn(&topo.ns("home-host"), dir, "relay", &config);
        relay.data_dir = data_dir;
        relay
    }

    /// Runs `braid SUBCOMMAND --config dir/NAME.toml` (`config` written there) inside `ns`.
    fn spawn(ns: &str, dir: &Path, name: &str, config: &str) -> Relay {
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, config).unwrap();
        let subcommand = if name.starts_with("proxy") {
            "proxy"
        } else {
            "relay"
        };
        let stderr = dir.join(format!("{name}.stderr"));
        // `ip netns exec` execs into braid, so the child's PID is braid's own.
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                env!("CARGO_BIN_EXE_braid"),
                subcommand,
                "--config",
            ])
            .arg(&path)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Relay {
            child,
            lines,
            stderr,
            data_dir: dir.join("data"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (bounded) for the `ready` line; returns it.
    fn wait_ready(&self) -> String {
        match self.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.starts_with("ready") => line,
            other => panic!("not ready: {other:?}\n{}", self.log()),
        }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then a bounded wait for a clean exit.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "relay exit {status}\n{}", self.log());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("relay did not stop within 15 s of SIGTERM\n{}", self.log());
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn has_mapping(list: &str, proto: &str, port: u16) -> bool {
    let want = format!("{port}->{HOST_IP}:{port}");
    list.lines().any(|l| l.contains(proto) && l.contains(&want))
}

#[test]
fn relay_maps_its_ports_advertises_the_router_address_and_unmaps_on_sigterm() {
    let Some(topo) = Topo::up("a", "stun") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp) = (41001, 41002);
    let started = Instant::now();
    let mut relay = Relay::start(&topo, dir.path(), udp, tcp, 3600);
    relay.wait_ready();
    println!("relay ready after {:?}", started.elapsed());
    let log = relay.log();
    assert!(
        log.contains(&format!(
            "UPnP: mapped UDP {ROUTER_WAN_IP}:{udp} -> {HOST_IP}:{udp}"
        )),
        "{log}"
    );

    let descriptor =
        braid_node::relay_node::read_descriptor(&relay.data_dir.join("descriptor")).unwrap();
    let addresses = &descriptor.descriptor().addresses;
    assert_eq!(
        addresses,
        &[
            format!("/ip4/{ROUTER_WAN_IP}/udp/{udp}/quic-v1"),
            format!("/ip4/{ROUTER_WAN_IP}/tcp/{tcp}"),
        ]
    );

    let list = topo.upnpc_list();
    assert!(has_mapping(&list, "UDP", udp), "{list}");
    assert!(has_mapping(&list, "TCP", tcp), "{list}");
    let nft = topo.nft_ruleset();
    assert!(
        nft.contains(&format!("dport {udp}")) && nft.contains(&format!("dport {tcp}")),
        "{nft}"
    );

    // A peer on the internet reaches the relay through the mapping, and an unmapped port
    // stays closed.
    assert!(
        topo.tcp_from_wan(ROUTER_WAN_IP, tcp),
        "TCP from wan through the mapping"
    );
    assert!(
        !topo.tcp_from_wan(ROUTER_WAN_IP, tcp + 10),
        "an unmapped port is reachable"
    );

    relay.terminate();
    let log = relay.log();
    assert!(log.contains("UPnP: mappings removed"), "{log}");
    let list = topo.upnpc_list();
    assert!(
        !has_mapping(&list, "UDP", udp) && !has_mapping(&list, "TCP", tcp),
        "{list}"
    );
    let nft = topo.nft_ruleset();
    assert!(
        !nft.contains(&format!("dport {udp}")) && !nft.contains(&format!("dport {tcp}")),
        "{nft}"
    );
    assert!(
        !topo.tcp_from_wan(ROUTER_WAN_IP, tcp),
        "TCP still open after SIGTERM"
    );
}

#[test]
fn a_refusing_router_leaves_the_relay_running_unadvertised() {
    let Some(topo) = Topo::up("b", "none") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A stale descriptor from an earlier run must not survive either.
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/descriptor"), "00\n").unwrap();
    let mut relay = Relay::start(&topo, dir.path(), 41011, 41012, 3600);
    relay.wait_ready();
    let log = relay.log();
    let line = log
        .lines()
        .find(|l| l.contains("UPnP: no mapping"))
        .unwrap_or_else(|| panic!("no UPnP line:\n{log}"));
    println!("{line}");
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains("without advertising"), "{line}");
    assert!(
        !relay.data_dir.join("descriptor").exists(),
        "a descriptor was written"
    );
    assert!(!has_mapping(&topo.upnpc_list(), "UDP", 41011));
    std::thread::sleep(Duration::from_secs(2));
    assert!(relay.running(), "the relay stopped:\n{}", relay.log());
    relay.terminate();
}

#[test]
fn a_short_lease_is_renewed() {
    let Some(topo) = Topo::up("c", "stun") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (udp, tcp) = (41021, 41022);
    let mut relay = Relay::start(&topo, dir.path(), udp, tcp, 10);
    relay.wait_ready();
    let list = topo.upnpc_list();
    assert!(
        has_mapping(&list, "UDP", udp) && has_mapping(&list, "TCP", tcp),
        "{list}"
    );
    // Three leases later the mappings are still there (miniupnpd drops an expired 10 s lease
    // within a few seconds, see the reference README's gotcha 4).
    std::thread::sleep(Duration::from_secs(30));
    assert!(relay.running(), "{}", relay.log());
    let list = topo.upnpc_list();
    assert!(
        has_mapping(&list, "UDP", udp) && has_mapping(&list, "TCP", tcp),
        "{list}"
    );
    assert!(
        topo.tcp_from_wan(ROUTER_WAN_IP, tcp),
        "TCP from wan after 30 s"
    );
    // The lease is real: killed without cleanup (no renewal, no removal), the relay's mappings
    // disappear by themselves, so it was the renewals that kept them.
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    let killed = Instant::now();
    loop {
        let list = topo.upnpc_list();
        if !has_mapping(&list, "UDP", udp) && !has_mapping(&list, "TCP", tcp) {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(25),
            "mappings outlived their lease:\n{list}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    println!(
        "mappings lapsed {:?} after the relay was killed",
        killed.elapsed()
    );
}

/// A child process inside a namespace, killed on drop.
struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn curl_through_a_circuit_that_crosses_the_home_relay() {
    let Some(topo) = Topo::up("d", "stun") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let wan = topo.ns("wan");
    let mut home = Relay::start(&topo, dir.path(), 41031, 41032, 3600);
    home.wait_ready();
    let mut descriptors = vec![home.data_dir.join("descriptor")];
    // A guard and an exit on the internet side: the home relay is the guard or the middle of
    // every 3-hop circuit, reached through its UPnP mapping either way.
    let mut wan_relays = Vec::new();
    for (i, policy) in [(0, "reject *:*"), (1, "accept *:*")] {
        let sub = dir.path().join(format!("wan{i}"));
        std::fs::create_dir_all(&sub).unwrap();
        let port = 42001 + 2 * i;
        let config = format!(
            "nickname = \"wan{i}\"\ndata_dir = {data:?}\n\
             listen = [\"/ip4/198.18.0.1/udp/{port}/quic-v1\", \"/ip4/198.18.0.1/tcp/{tcp}\"]\n\
             exit_policy = [{policy:?}]\n",
            data = sub.join("data").to_str().unwrap(),
            tcp = port + 1,
        );
        let relay = Relay::spawn(&wan, &sub, "relay", &config);
        relay.wait_ready();
        descriptors.push(relay.data_dir.join("descriptor"));
        wan_relays.push(relay);
    }
    let directory = dir.path().join("directory.json");
    let out = Command::new(env!("CARGO_BIN_EXE_braid"))
        .arg("directory")
        .arg("--out")
        .arg(&directory)
        .args(&descriptors)
        .output()
        .unwrap();
    assert!(out.status.success(), "braid directory: {}", text(&out));
    let proxy = Relay::spawn(
        &wan,
        dir.path(),
        "proxy",
        &format!(
            "socks_listen = \"127.0.0.1:1080\"\ndirectory = {:?}\nhops = 3\ndata_dir = {:?}\n",
            directory.to_str().unwrap(),
            dir.path().join("proxy-data").to_str().unwrap()
        ),
    );
    proxy.wait_ready();

    // An HTTP server on the internet side, serving 1 MiB of fixed bytes.
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(www.join("blob"), &body).unwrap();
    let _http = Bg(Command::new("ip")
        .args([
            "netns",
            "exec",
            &wan,
            "python3",
            "-m",
            "http.server",
            "--bind",
            "198.18.0.1",
        ])
        .args(["--directory", www.to_str().unwrap(), "8080"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap());
    let fetched = dir.path().join("fetched");
    let home_rx_before = topo.home_rx_bytes();
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(40) {
        let out = run(
            30,
            &[
                "ip",
                "netns",
                "exec",
                &wan,
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--socks5-hostname",
                "127.0.0.1:1080",
                "-o",
                fetched.to_str().unwrap(),
                "http://198.18.0.1:8080/blob",
            ],
            &[],
        );
        if out.status.success() {
            break;
        }
        last = text(&out);
        std::thread::sleep(Duration::from_millis(500));
    }
    let got = std::fs::read(&fetched).unwrap_or_default();
    assert!(
        got == body,
        "curl through the circuit failed ({} of {} bytes): {last}\nproxy:\n{}\nhome:\n{}",
        got.len(),
        body.len(),
        proxy.log(),
        home.log()
    );
    println!("1 MiB through the home relay in {:?}", started.elapsed());
    // The body crossed the home relay: its interface received at least the whole body.
    let home_rx = topo.home_rx_bytes() - home_rx_before;
    assert!(
        home_rx > body.len() as u64,
        "home-host received only {home_rx} bytes"
    );
    assert!(home.running() && wan_relays.iter_mut().all(Relay::running));
}

/// Starts `braid relay` in ns wan on 198.18.0.1 (a plain relay: it answers dial-back
/// requests) and returns it with its `/p2p` QUIC address, read from its "relay started" line.
fn wan_helper(topo: &Topo, dir: &Path, port: u16) -> (Relay, String) {
    let sub = dir.join("helper");
    std::fs::create_dir_all(&sub).unwrap();
    let config = format!(
        "nickname = \"helper\"\ndata_dir = {data:?}\n\
         listen = [\"/ip4/198.18.0.1/udp/{port}/quic-v1\", \"/ip4/198.18.0.1/tcp/{port}\"]\n",
        data = sub.join("data").to_str().unwrap(),
    );
    let helper = Relay::spawn(&topo.ns("wan"), &sub, "relay", &config);
    helper.wait_ready();
    let log = helper.log();
    let peer_id = log
        .lines()
        .filter(|l| l.contains("relay started"))
        .find_map(|l| l.split("peer_id=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no peer id in the helper's log:\n{log}"))
        .to_string();
    (
        helper,
        format!("/ip4/198.18.0.1/udp/{port}/quic-v1/p2p/{peer_id}"),
    )
}

/// Starts `braid relay` in ns home-host with its own data directory `dir/name/data`; `extra`
/// is appended to a config that listens on HOST_IP with these ports.
fn home_relay(topo: &Topo, dir: &Path, name: &str, udp: u16, tcp: u16, extra: &str) -> Relay {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    let config = format!(
        "nickname = \"{name}\"\ndata_dir = {data:?}\n\
         listen = [\"/ip4/{HOST_IP}/udp/{udp}/quic-v1\", \"/ip4/{HOST_IP}/tcp/{tcp}\"]\n{extra}",
        data = sub.join("data").to_str().unwrap(),
    );
    Relay::spawn(&topo.ns("home-host"), &sub, "relay", &config)
}

/// The one `reachability:` line of the log that contains `what`.
fn reachability_line(relay: &Relay, what: &str) -> Option<String> {
    relay
        .log()
        .lines()
        .find(|l| l.contains("reachability: ") && l.contains(what))
        .map(str::to_string)
}

/// Waits (bounded) for a `reachability:` line containing `what`.
fn wait_reachability_line(relay: &Relay, what: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(line) = reachability_line(relay, what) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no \"reachability: ...{what}\" line within {secs} s:\n{}",
            relay.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn upnpc(topo: &Topo, args: &[&str]) -> String {
    let ns = topo.ns("home-host");
    let mut cmd = vec!["ip", "netns", "exec", &ns, "upnpc", "-u", IGD_URL];
    cmd.extend_from_slice(args);
    text(&run(15, &cmd, &[]))
}

#[test]
fn reachability_confirmed_through_the_mapping_then_lost_and_recovered() {
    let Some(topo) = Topo::up("e", "stun") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (helper, helper_addr) = wan_helper(&topo, dir.path(), 42101);
    let (udp, tcp) = (41041, 41042);
    let extra = format!(
        "upnp = true\nreachability_peers = [{helper_addr:?}]\nreachability_interval_secs = 10\n"
    );
    let started = Instant::now();
    let mut home = home_relay(&topo, dir.path(), "home", udp, tcp, &extra);
    let ready = home.wait_ready();
    println!("home relay ready after {:?}: {ready}", started.elapsed());
    let descriptor_path = home.data_dir.join("descriptor");
    assert_eq!(
        ready,
        format!("ready descriptor={}", descriptor_path.display())
    );
    let quic = format!("/ip4/{ROUTER_WAN_IP}/udp/{udp}/quic-v1");
    let tcp_addr = format!("/ip4/{ROUTER_WAN_IP}/tcp/{tcp}");
    let line = reachability_line(&home, "confirmed by").unwrap_or_else(|| panic!("{}", home.log()));
    println!("{line}");
    assert!(
        line.contains(&format!("{quic}, {tcp_addr}; advertising")),
        "{line}"
    );
    let descriptor = braid_node::relay_node::read_descriptor(&descriptor_path).unwrap();
    assert_eq!(
        descriptor.descriptor().addresses,
        [quic.clone(), tcp_addr.clone()]
    );

    // The router forgets the mappings: the next re-test fails and the descriptor goes.
    let lost_at = Instant::now();
    upnpc(&topo, &["-d", &udp.to_string(), "UDP"]);
    upnpc(&topo, &["-d", &tcp.to_string(), "TCP"]);
    assert!(!has_mapping(&topo.upnpc_list(), "UDP", udp));
    let line = wait_reachability_line(&home, "lost", 40);
    println!("after {:?}: {line}", lost_at.elapsed());
    assert!(
        line.contains("WARN") && line.contains("descriptor removed"),
        "{line}"
    );
    assert!(
        line.contains(&format!("addr {quic}: unreachable")),
        "{line}"
    );
    assert!(
        !descriptor_path.exists(),
        "the descriptor survived the loss"
    );

    // The mappings come back: so does the descriptor.
    let recovered_at = Instant::now();
    for proto in ["UDP", "TCP"] {
        let port = if proto == "UDP" { udp } else { tcp }.to_string();
        let out = upnpc(
            &topo,
            &["-e", "test", "-a", HOST_IP, &port, &port, proto, "3600"],
        );
        assert!(out.contains("is redirected"), "{out}");
    }
    let line = wait_reachability_line(&home, "recovered", 30);
    println!("after {:?}: {line}", recovered_at.elapsed());
    let descriptor = braid_node::relay_node::read_descriptor(&descriptor_path).unwrap();
    assert_eq!(descriptor.descriptor().addresses, [quic, tcp_addr]);

    // The helper served the dial-backs without naming the home relay's address in its log.
    assert!(!helper.log().contains(ROUTER_WAN_IP), "{}", helper.log());
    assert!(home.running());
    home.terminate();
}

#[test]
fn addresses_the_internet_cannot_reach_are_not_advertised() {
    let Some(topo) = Topo::up("f", "stun") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_helper, helper_addr) = wan_helper(&topo, dir.path(), 42111);
    let peers = format!("reachability_peers = [{helper_addr:?}]\n");
    // A relay without UPnP claims its LAN address: the helper refuses to dial another IP than
    // the one the request came from (the router's). A stale descriptor must go too.
    std::fs::create_dir_all(dir.path().join("lan/data")).unwrap();
    std::fs::write(dir.path().join("lan/data/descriptor"), "00\n").unwrap();
    let mut lan = home_relay(&topo, dir.path(), "lan", 41051, 41052, &peers);
    // A relay that claims the router's public address with no port forwarded: dialed, and
    // unreachable.
    let unforwarded = format!(
        "{peers}advertise = [\"/ip4/{ROUTER_WAN_IP}/udp/41061/quic-v1\", \
         \"/ip4/{ROUTER_WAN_IP}/tcp/41062\"]\n"
    );
    let started = Instant::now();
    let mut closed = home_relay(&topo, dir.path(), "closed", 41061, 41062, &unforwarded);

    let ready = lan.wait_ready();
    assert!(ready.starts_with("ready descriptor=none"), "{ready}");
    let line = reachability_line(&lan, "not confirmed").unwrap_or_else(|| panic!("{}", lan.log()));
    println!("{line}");
    assert!(
        line.contains("WARN") && line.ends_with("— not advertising"),
        "{line}"
    );
    assert!(
        line.contains(&format!(
            "addr /ip4/{HOST_IP}/udp/41051/quic-v1: refused: not dialed: {HOST_IP} is not the \
             address the request came from ({ROUTER_WAN_IP})"
        )),
        "{line}"
    );
    assert!(!lan.data_dir.join("descriptor").exists());

    let ready = closed.wait_ready();
    println!("unforwarded relay ready after {:?}", started.elapsed());
    assert!(ready.starts_with("ready descriptor=none"), "{ready}");
    let line =
        reachability_line(&closed, "not confirmed").unwrap_or_else(|| panic!("{}", closed.log()));
    println!("{line}");
    assert!(
        line.contains(&format!(
            "addr /ip4/{ROUTER_WAN_IP}/udp/41061/quic-v1: unreachable: dial failed"
        )) && line.contains(&format!(
            "addr /ip4/{ROUTER_WAN_IP}/tcp/41062: unreachable: dial failed"
        )),
        "{line}"
    );
    assert!(!closed.data_dir.join("descriptor").exists());
    // Both keep serving.
    assert!(lan.running() && closed.running());
    lan.terminate();
    closed.terminate();
}
