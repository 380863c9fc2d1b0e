//! README.md's "A whole network on one machine", run as written: the test takes the shell block
//! between the `readme-network` markers, runs its set-up part with bash (only the scratch
//! directory and the first port are the test's own), starts exactly the processes its last
//! lines start (3 registries, 4 relays, a proxy), and fetches through the proxy with curl.
//!
//! It checks what a newcomer sees: the first fetch within 30 s of the start, and the
//! start-up lines (the proxy's port open at once, "not ready: ..." while it waits, `ready` only
//! with relays). Then it kills the Raft leader and restarts it, and checks from the registries'
//! `role` lines and the leader-only job's log lines (each co-signed snapshot names its term)
//! that no two registries acted as leader for one term and that no job of an older term ran
//! after one of a newer term, and says how long the election took.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{HttpServer, Proc, braid_bin, curl_fetch, expected_sha256, strip_ansi};

/// The README's promise, checked.
const FIRST_FETCH: Duration = Duration::from_secs(30);

/// The lines of the README block that start the nodes, which the test runs itself (it must
/// own each process to kill the leader).
const RUN_LINES: [&str; 3] = [
    "for i in 0 1 2; do braid registry --config $D/registry$i.toml & done",
    "for i in 0 1 2 3; do braid relay --config $D/relay$i.toml & done",
    "braid proxy --config $D/proxy.toml &",
];

/// The README's block, split at the first line that starts a node.
fn readme_block() -> (String, Vec<String>) {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let begin = readme
        .find("<!-- readme-network: begin -->")
        .expect("README.md lost its readme-network block");
    let end = readme[begin..]
        .find("<!-- readme-network: end -->")
        .expect("README.md lost the end of its readme-network block");
    let block = &readme[begin..begin + end];
    let code = block
        .split("```sh\n")
        .nth(1)
        .and_then(|c| c.split("```").next())
        .expect("a sh code block");
    let lines: Vec<&str> = code.lines().collect();
    let first_run = lines
        .iter()
        .position(|l| l.starts_with("for i in 0 1 2; do braid registry"))
        .expect("the block starts registries");
    let setup = lines[..first_run].join("\n");
    let run = lines[first_run..].iter().map(|l| l.to_string()).collect();
    (setup, run)
}

/// A first port P such that UDP P..P+6 and TCP P+7 are free on 127.0.0.1 now.
fn free_ports() -> u16 {
    for _ in 0..200 {
        let base = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if base > 65_000 {
            continue;
        }
        let udp_free = (0..7).all(|i| UdpSocket::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok());
        if udp_free && TcpListener::bind((Ipv4Addr::LOCALHOST, base + 7)).is_ok() {
            return base;
        }
    }
    panic!("no 8 free ports in a row on 127.0.0.1");
}

/// Runs the README's set-up lines with bash, `D` and `P` set by the test.
fn run_setup(setup: &str, dir: &Path, port: u16) {
    let mut script = String::new();
    let mut replaced = false;
    for line in setup.lines() {
        if line.starts_with("cargo build") {
            // The test's own build of `braid` is first in PATH instead.
            continue;
        }
        if line.starts_with("D=") {
            script += &format!("D={} P={port}\n", dir.display());
            replaced = true;
            continue;
        }
        script += line;
        script.push('\n');
    }
    assert!(
        replaced,
        "the README block no longer sets D and P:\n{setup}"
    );
    let bin_dir = Path::new(braid_bin()).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("PATH", path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the README's set-up failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn(dir: &Path, name: &str, role: &str, config: &str) -> Proc {
    let mut cmd = Command::new(braid_bin());
    cmd.arg(role).arg("--config").arg(dir.join(config));
    Proc::spawn(name, cmd, &dir.join(format!("{name}.stderr")))
}

/// A `key=value` field of a line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Seconds since the epoch of an RFC 3339 UTC time with milliseconds (as the role lines and
/// the logs print them), for ordering and differences only.
fn seconds(at: &str) -> f64 {
    let (date, time) = at.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant), enough for differences.
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    days as f64 * 86_400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

/// One registry's `role` lines as (time, leading?, term).
#[derive(Default)]
struct Roles {
    lines: Vec<(f64, bool, u64)>,
}

impl Roles {
    fn take(&mut self, p: &mut Proc) -> Vec<String> {
        let mut all = Vec::new();
        for line in p.drain_lines() {
            if line.starts_with("role ") {
                let at = seconds(field(&line, "at").expect("a role line carries at="));
                let term = field(&line, "term").unwrap().parse().unwrap();
                self.lines.push((at, line.starts_with("role leader"), term));
            }
            all.push(line);
        }
        all
    }

    fn leading(&self) -> bool {
        self.lines.last().is_some_and(|l| l.1)
    }
}

/// The leader-only job's records in a registry's log: (time, term) of each snapshot it had
/// co-signed and served as the leader.
fn jobs(stderr: &str) -> Vec<(f64, u64)> {
    strip_ansi(stderr)
        .lines()
        .filter(|l| l.contains("directory snapshot signed by a majority"))
        .map(|l| {
            let at = l.split_whitespace().next().unwrap();
            let term = field(l, "term").expect("the job line names its term");
            (seconds(at), term.parse().unwrap())
        })
        .collect()
}

struct Net {
    registries: Vec<Option<Proc>>,
    roles: Vec<Roles>,
    others: Vec<Proc>,
}

impl Net {
    fn poll_roles(&mut self) {
        for (p, roles) in self.registries.iter_mut().zip(&mut self.roles) {
            if let Some(p) = p {
                roles.take(p);
            }
        }
    }

    /// The registry leading now by its role lines, waiting up to `timeout` for one.
    fn leader(&mut self, timeout: Duration, not: Option<usize>) -> usize {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.poll_roles();
            let leading: Vec<usize> = (0..3)
                .filter(|&i| Some(i) != not && self.registries[i].is_some())
                .filter(|&i| self.roles[i].leading())
                .collect();
            if let [one] = leading[..] {
                return one;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no single leader within {timeout:?}\n{}", self.logs());
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for p in self.registries.iter().flatten().chain(&self.others) {
            out += &p.stderr_tail();
            out.push('\n');
        }
        out
    }
}

#[test]
fn the_readme_network_fetches_within_30_s_and_keeps_one_leader() {
    let _alone = crate::support::one_network_at_a_time();
    let (setup, run) = readme_block();
    for (want, got) in RUN_LINES.iter().zip(&run) {
        assert_eq!(
            got, want,
            "README's run lines changed; update this test with them"
        );
    }
    let http = HttpServer::start(&[SocketAddr::from((Ipv4Addr::LOCALHOST, 0))]);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let port = free_ports();
    run_setup(&setup, &dir, port);

    // Started as the README starts them: all at once.
    let started = Instant::now();
    let mut net = Net {
        registries: (0..3)
            .map(|i| {
                let name = format!("registry{i}");
                Some(spawn(&dir, &name, "registry", &format!("{name}.toml")))
            })
            .collect(),
        roles: (0..3).map(|_| Roles::default()).collect(),
        others: (0..4)
            .map(|i| {
                let name = format!("relay{i}");
                spawn(&dir, &name, "relay", &format!("{name}.toml"))
            })
            .collect(),
    };
    let mut proxy = spawn(&dir, "proxy", "proxy", "proxy.toml");
    let socks = SocketAddr::from((Ipv4Addr::LOCALHOST, port + 7));

    // The first fetch, tried as `curl --retry` would, once a second.
    let url = format!("http://127.0.0.1:{}/bytes/65536", http.port());
    let body = dir.join("body");
    let mut last = String::new();
    let first = loop {
        assert!(
            started.elapsed() < FIRST_FETCH,
            "no fetch within {FIRST_FETCH:?} of the start: {last}\n{}\n{}",
            net.logs(),
            proxy.stderr_tail()
        );
        match curl_fetch(socks, &url, &body, 10) {
            Ok(digest) => {
                assert_eq!(digest, expected_sha256(65536));
                break started.elapsed();
            }
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("README network: first fetch {first:?} after the start");

    // The proxy said it was ready only with relays, and what it waited for before.
    let ready = proxy.wait_line("ready socks5=", Duration::from_secs(5));
    assert_eq!(ready, socks.to_string());
    let log = strip_ansi(&proxy.stderr());
    let open = log.find("SOCKS5 port open").expect("port-open line");
    let in_use = log.find("directory in use").expect("directory line");
    let ready_at = log
        .find("ready: circuits can be built")
        .expect("ready line");
    assert!(open < in_use && in_use < ready_at, "{log}");
    let ready_line = log[ready_at..].lines().next().unwrap();
    let relays: usize = field(ready_line, "relays").unwrap().parse().unwrap();
    assert!(relays >= 3, "ready with {relays} relays: {ready_line}");

    // Kill the leader; another takes over; restart it and let it rejoin.
    let first_leader = net.leader(Duration::from_secs(10), None);
    let killed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    net.registries[first_leader].as_mut().unwrap().sigkill();
    net.registries[first_leader] = None;
    let second = net.leader(Duration::from_secs(30), Some(first_leader));
    let elected = net.roles[second]
        .lines
        .iter()
        .rev()
        .find(|l| l.1)
        .unwrap()
        .0;
    eprintln!(
        "README network: a new leader {:.1} s after the leader was killed",
        elected - killed_at
    );
    let name = format!("registry{first_leader}");
    let restarted = spawn(
        &dir,
        &format!("{name}-restarted"),
        "registry",
        &format!("{name}.toml"),
    );
    net.registries[first_leader] = Some(restarted);
    net.roles[first_leader] = Roles::default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !net.roles[first_leader]
        .lines
        .iter()
        .any(|l| !l.1 && l.2 > 0)
    {
        assert!(
            Instant::now() < deadline,
            "the restarted registry never followed\n{}",
            net.logs()
        );
        net.poll_roles();
        std::thread::sleep(Duration::from_millis(100));
    }
    // A relay started now makes the leader build again (a leader-only job after the change).
    let extra = dir.join("relay4.toml");
    let text = std::fs::read_to_string(dir.join("relay0.toml"))
        .unwrap()
        .replace("relay0", "relay4")
        .replace(&format!("/udp/{}/", port + 3), "/udp/0/");
    std::fs::write(&extra, text).unwrap();
    net.others
        .push(spawn(&dir, "relay4", "relay", "relay4.toml"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let built = net
            .registries
            .iter()
            .flatten()
            .flat_map(|p| jobs(&p.stderr()))
            .any(|(_, term)| term > 1);
        if built {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no snapshot after the new leader\n{}",
            net.logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    match curl_fetch(socks, &url, &body, 20) {
        Ok(digest) => assert_eq!(digest, expected_sha256(65536)),
        Err(e) => panic!("fetch after the leader change: {e}\n{}", net.logs()),
    }
    net.poll_roles();

    // Leader terms: one registry per term, by the role lines and by the job lines.
    let mut term_of: HashMap<u64, usize> = HashMap::new();
    let mut all_jobs = Vec::new();
    for i in 0..3 {
        for &(_, leading, term) in &net.roles[i].lines {
            if leading {
                let other = *term_of.entry(term).or_insert(i);
                assert_eq!(other, i, "registries {other} and {i} both led term {term}");
            }
        }
    }
    // Both lives of the killed registry.
    for i in 0..3 {
        for life in ["", "-restarted"] {
            let path = dir.join(format!("registry{i}{life}.stderr"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            for (at, term) in jobs(&text) {
                all_jobs.push((at, term, i));
            }
        }
    }
    assert!(
        !all_jobs.is_empty(),
        "no leader-only job ran\n{}",
        net.logs()
    );
    all_jobs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut newest = 0;
    for &(at, term, i) in &all_jobs {
        let led = term_of.entry(term).or_insert(i);
        assert_eq!(
            *led, i,
            "registry {i} ran a leader-only job in term {term}, led by registry {led}"
        );
        assert!(
            term >= newest,
            "registry {i} ran a leader-only job of term {term} at {at} after one of term {newest}"
        );
        newest = term;
    }
    eprintln!("README network: leader-only jobs (time, term, registry): {all_jobs:?}");
    drop(proxy);
    drop(net);
}

/// A proxy config with `socks_listen` on `port` and one registry that does not run.
fn lonely_proxy(dir: &Path, port: u16) -> PathBuf {
    let out = Command::new(braid_bin())
        .args(["id", "--data-dir"])
        .arg(dir.join("registry"))
        .output()
        .unwrap();
    let peer = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let text = format!(
        "socks_listen = \"127.0.0.1:{port}\"\ndata_dir = {:?}\n\n[[registries]]\npeer = {peer:?}\n\
         address = \"/ip4/127.0.0.1/udp/9/quic-v1\"\n",
        dir.join("proxy").display().to_string()
    );
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The SOCKS port is bound before anything waits: a port in use fails the start at once,
/// naming the port.
#[test]
fn a_busy_socks_port_fails_at_once() {
    let busy = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let config = lonely_proxy(dir.path(), port);
    let started = Instant::now();
    let mut cmd = Command::new(braid_bin());
    cmd.arg("proxy").arg("--config").arg(&config);
    let mut p = Proc::spawn("proxy", cmd, &dir.path().join("proxy.stderr"));
    let status = p
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running with its port taken\n{}", p.stderr_tail()));
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let err = strip_ansi(&p.stderr());
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// A proxy whose registries are not up: the port answers at once with a SOCKS failure (no
/// hang), it says what it waits for, and it never says `ready`.
#[test]
fn a_proxy_without_a_directory_says_what_it_waits_for() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = lonely_proxy(dir.path(), port);
    let mut cmd = Command::new(braid_bin());
    cmd.arg("proxy").arg("--config").arg(&config);
    let mut p = Proc::spawn("proxy", cmd, &dir.path().join("proxy.stderr"));
    let socks = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(socks).is_err() {
        assert!(
            Instant::now() < deadline,
            "port never opened\n{}",
            p.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let asked = Instant::now();
    let code = crate::support::socks_reply_code(
        socks,
        &crate::support::connect_request_domain("example.org", 80),
    );
    assert_ne!(code, 0, "a stream succeeded with no directory");
    assert!(asked.elapsed() < Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let err = strip_ansi(&p.stderr());
        if err.contains("not ready: directory: 0 of 1 registries reached, no verified snapshot yet")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no progress line\n{err}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        p.drain_lines().iter().all(|l| !l.starts_with("ready")),
        "ready without a directory"
    );
    assert!(p.is_running());
}
