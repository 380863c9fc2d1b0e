//! Shared harness for the end-to-end tests: runs `braid relay`, `braid directory` and
//! `braid proxy` as separate OS processes in a temporary directory, an HTTP server with
//! deterministic bodies inside the test process, and small SOCKS5/curl helpers.
//!
//! Every child process is owned by a [`Proc`] guard that kills it on drop (also when a test
//! panics), and every wait is bounded. This module does not check product behaviour itself: the
//! test modules do.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a relay or proxy may take to print its `ready` line.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a raw SOCKS exchange may take before the test fails.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Held by the tests that run a whole registry network as processes (and the one that times
/// its start-up): they run one at a time, so a start-up time measured under the others' load
/// says something about braid. Poisoning by a failed test is ignored.
pub(crate) fn one_network_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Held by each test that runs a whole `braid sim` network: the same lock as
/// [`one_network_at_a_time`], so no two whole networks starve each other's Raft timers.
pub(crate) fn one_sim_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    one_network_at_a_time()
}

/// The `braid` binary Cargo built for these tests.
pub(crate) fn braid_bin() -> &'static str {
    env!("CARGO_BIN_EXE_braid")
}

/// A child process that is killed and reaped when dropped. Its stdout lines arrive on a channel
/// (read by a thread, so the pipe never fills); its stderr goes to a file for failure reports.
pub(crate) struct Proc {
    /// A name for messages.
    pub name: String,
    child: Child,
    lines: Receiver<String>,
    stderr_path: PathBuf,
}

impl Proc {
    /// Spawns `cmd` with stdout piped and stderr written to `stderr_path`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, stderr_path: &Path) -> Proc {
        let stderr = std::fs::File::create(stderr_path).unwrap();
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Proc {
            name: name.to_string(),
            child,
            lines,
            stderr_path: stderr_path.to_path_buf(),
        }
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for a stdout line starting with `prefix` and returns the rest of it. Panics with
    /// the process's stderr if it exits or stays silent past `timeout`.
    pub(crate) fn wait_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => match line.strip_prefix(prefix) {
                    Some(rest) => return rest.to_string(),
                    None => seen.push(line),
                },
                Err(RecvTimeoutError::Timeout) => panic!(
                    "{} printed no `{prefix}` line within {timeout:?}; stdout {seen:?}\n{}",
                    self.name,
                    self.stderr_tail()
                ),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.wait_exit(Duration::from_secs(5));
                    panic!(
                        "{} closed stdout ({status:?}) before `{prefix}`; stdout {seen:?}\n{}",
                        self.name,
                        self.stderr_tail()
                    )
                }
            }
        }
    }

    /// The stdout lines that arrived so far and are not consumed yet.
    pub(crate) fn drain_lines(&mut self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still running.
    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGKILL now and reaps the process (bounded); returns how it ended. Panics if it
    /// is still there after 5 s.
    pub(crate) fn sigkill(&mut self) -> ExitStatus {
        let _ = self.child.kill();
        self.wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{} survived SIGKILL for 5 s", self.name))
    }

    /// Whether the process has not exited yet.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last part of the process's stderr, for failure messages.
    pub(crate) fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let start = text.len().saturating_sub(4000);
        let start = (start..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        format!("--- {} stderr (tail) ---\n{}", self.name, &text[start..])
    }

    /// The whole stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `pid` with the `kill` command.
pub(crate) fn sigterm(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid} failed: {status}");
}

/// One relay of a test network.
#[derive(Clone, Debug)]
pub(crate) struct RelaySpec {
    /// Exit policy lines; `["reject *:*"]` for a non-exit.
    pub exit_policy: Vec<String>,
}

impl RelaySpec {
    /// A relay that is not an exit.
    pub(crate) fn middle() -> Self {
        RelaySpec {
            exit_policy: vec!["reject *:*".into()],
        }
    }

    /// An exit with these policy lines.
    pub(crate) fn exit(policy: &[&str]) -> Self {
        RelaySpec {
            exit_policy: policy.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// Writes `text` to `dir/name` and returns the path.
pub(crate) fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A TOML string literal (basic string, escaped).
fn toml_str(s: &str) -> String {
    format!("{s:?}")
}

/// How [`Network::start_with`] configures and runs its proxy.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProxyOptions {
    /// `strands = N` in the proxy config; the built-in default when `None`.
    pub strands: Option<usize>,
    /// The proxy's `RUST_LOG` (its log goes to its stderr file, see [`Proc::stderr`]);
    /// inherited from the test's environment when `None`.
    pub rust_log: Option<String>,
}

/// More proxy settings for [`Network::start_extra`] (apart from [`ProxyOptions`], so that
/// struct literals of it elsewhere stay valid).
#[derive(Clone, Debug, Default)]
pub(crate) struct ProxyExtras {
    /// Also serve HTTP CONNECT (`http_listen = "127.0.0.1:0"`); its address is
    /// [`Network::http_connect`].
    pub http_connect: bool,
    /// More environment variables for the proxy process.
    pub env: Vec<(String, String)>,
}

/// A network of relay processes and one proxy process. Fields drop in order: the proxy first,
/// then the relays, then the directory holding their files.
pub(crate) struct Network {
    /// The proxy process.
    pub proxy: Proc,
    /// The relay processes, in the order of the specs.
    pub relays: Vec<Proc>,
    /// The proxy's SOCKS5 address.
    pub socks: SocketAddr,
    /// The proxy's HTTP CONNECT address, with [`ProxyExtras::http_connect`].
    pub http_connect: Option<SocketAddr>,
    /// The descriptor file each relay announced, in the order of `relays`.
    descriptors: Vec<PathBuf>,
    dir: tempfile::TempDir,
}

impl Network {
    /// Starts one relay per spec, relay `i` on `127.0.0.(base + i)` with QUIC and TCP on port 0,
    /// bundles their descriptors and starts a 3-hop proxy on `127.0.0.1:0`.
    /// Three relays, the last the only exit (accepting everything), so every circuit is
    /// guard, middle, exit.
    pub(crate) fn three_hop(base: u8) -> Network {
        Network::start(
            base,
            &[
                RelaySpec::middle(),
                RelaySpec::middle(),
                RelaySpec::exit(&["accept *:*"]),
            ],
        )
    }

    /// Starts one relay per spec, relay `i` on `127.0.0.(base + i)`, and a 3-hop proxy with
    /// the built-in defaults otherwise.
    pub(crate) fn start(base: u8, specs: &[RelaySpec]) -> Network {
        Network::start_with(base, specs, &ProxyOptions::default())
    }

    /// Like [`Network::start`], with the proxy configured and run as `options` say.
    pub(crate) fn start_with(base: u8, specs: &[RelaySpec], options: &ProxyOptions) -> Network {
        Network::start_extra(base, specs, options, &ProxyExtras::default())
    }

    /// Like [`Network::start_with`], with the `extras` too.
    pub(crate) fn start_extra(
        base: u8,
        specs: &[RelaySpec],
        options: &ProxyOptions,
        extras: &ProxyExtras,
    ) -> Network {
        let started = Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let mut relays = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let ip = Ipv4Addr::new(127, 0, 0, base + i as u8);
            let data_dir = dir.path().join(format!("relay{i}"));
            let policy: Vec<String> = spec.exit_policy.iter().map(|l| toml_str(l)).collect();
            let config = format!(
                "nickname = \"r{base}x{i}\"\n\
                 data_dir = {}\n\
                 listen = [\"/ip4/{ip}/udp/0/quic-v1\", \"/ip4/{ip}/tcp/0\"]\n\
                 exit_policy = [{}]\n",
                toml_str(&data_dir.display().to_string()),
                policy.join(", ")
            );
            let path = write_file(dir.path(), &format!("relay{i}.toml"), &config);
            let mut cmd = Command::new(braid_bin());
            cmd.arg("relay").arg("--config").arg(&path);
            let err = dir.path().join(format!("relay{i}.stderr"));
            relays.push(Proc::spawn(&format!("relay {i} ({ip})"), cmd, &err));
        }
        let mut descriptors = Vec::new();
        for relay in &mut relays {
            let path = relay.wait_line("ready descriptor=", READY_TIMEOUT);
            assert!(
                Path::new(&path).is_file(),
                "{} announced a descriptor file that does not exist: {path}",
                relay.name
            );
            descriptors.push(path);
        }
        let directory = dir.path().join("directory.json");
        let out = Command::new(braid_bin())
            .arg("directory")
            .arg("--out")
            .arg(&directory)
            .args(&descriptors)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "braid directory failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut config = format!(
            "socks_listen = \"127.0.0.1:0\"\ndirectory = {}\nhops = 3\ndata_dir = {}\n",
            toml_str(&directory.display().to_string()),
            toml_str(&dir.path().join("proxy").display().to_string())
        );
        if let Some(k) = options.strands {
            config.push_str(&format!("strands = {k}\n"));
        }
        if extras.http_connect {
            config.push_str("http_listen = \"127.0.0.1:0\"\n");
        }
        let path = write_file(dir.path(), "proxy.toml", &config);
        let mut cmd = Command::new(braid_bin());
        cmd.arg("proxy").arg("--config").arg(&path);
        if let Some(filter) = &options.rust_log {
            cmd.env("RUST_LOG", filter).env("NO_COLOR", "1");
        }
        cmd.envs(extras.env.iter().map(|(k, v)| (k, v)));
        let mut proxy = Proc::spawn("proxy", cmd, &dir.path().join("proxy.stderr"));
        // `braid proxy` prints the HTTP CONNECT address before its `ready` line.
        let http_connect = extras.http_connect.then(|| {
            let addr = proxy.wait_line("http_connect=", READY_TIMEOUT);
            addr.parse::<SocketAddr>()
                .unwrap_or_else(|e| panic!("proxy printed a bad address {addr:?}: {e}"))
        });
        let addr = proxy.wait_line("ready socks5=", READY_TIMEOUT);
        let socks: SocketAddr = addr
            .parse()
            .unwrap_or_else(|e| panic!("proxy printed a bad address {addr:?}: {e}"));
        eprintln!(
            "network at 127.0.0.{base}: {} relays + proxy {socks} ready in {:?}",
            specs.len(),
            started.elapsed()
        );
        Network {
            proxy,
            relays,
            socks,
            http_connect,
            descriptors: descriptors.into_iter().map(PathBuf::from).collect(),
            dir,
        }
    }

    /// Each relay's libp2p peer id (base58, as logs print it), computed from the identity key
    /// in the descriptor file the relay announced; in the order of `relays`.
    pub(crate) fn relay_peer_ids(&self) -> Vec<String> {
        self.descriptors
            .iter()
            .map(|path| {
                let signed = braid_node::relay_node::read_descriptor(path)
                    .unwrap_or_else(|e| panic!("cannot read descriptor {}: {e}", path.display()));
                ed25519_peer_id(&signed.descriptor().identity)
            })
            .collect()
    }

    /// The temporary directory holding configs, keys and logs.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every process's stderr tail, for failure messages.
    pub(crate) fn logs(&self) -> String {
        let mut out = self.proxy.stderr_tail();
        for r in &self.relays {
            out.push('\n');
            out.push_str(&r.stderr_tail());
        }
        out
    }
}

/// The libp2p peer id of an Ed25519 public key, base58btc: the identity multihash (code 0,
/// length 36) of the protobuf `PublicKey { key_type: Ed25519 (1), data: key }`.
pub(crate) fn ed25519_peer_id(public: &[u8; 32]) -> String {
    let mut bytes = vec![0x00, 36, 0x08, 0x01, 0x12, 32];
    bytes.extend_from_slice(public);
    base58(&bytes)
}

/// Bitcoin-alphabet base58 of `bytes` (leading zero bytes become `1`s).
fn base58(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    // Little-endian base-58 digits of the big-endian number `bytes`.
    let mut digits: Vec<u8> = Vec::new();
    for &b in bytes {
        let mut carry = u32::from(b);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    std::iter::repeat_n(b'1', zeros)
        .chain(digits.iter().rev().map(|&d| ALPHABET[usize::from(d)]))
        .map(char::from)
        .collect()
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`), for parsing colored logs.
pub(crate) fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The deterministic HTTP server of `braid_simulations::http`, run on its own runtime so
/// blocking tests can use it. Stops when dropped.
pub(crate) struct HttpServer {
    /// The addresses it listens on, in the order asked for.
    pub addrs: Vec<SocketAddr>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HttpServer {
    /// Serves `GET /bytes/N` on each of `binds` (port 0 picks a free port).
    pub(crate) fn start(binds: &[SocketAddr]) -> HttpServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut addrs = Vec::new();
        for bind in binds {
            let std_listener = TcpListener::bind(bind)
                .unwrap_or_else(|e| panic!("cannot bind the HTTP server on {bind}: {e}"));
            std_listener.set_nonblocking(true).unwrap();
            addrs.push(std_listener.local_addr().unwrap());
            let _guard = runtime.enter();
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            runtime.spawn(braid_simulations::http::serve(listener));
        }
        HttpServer {
            addrs,
            runtime: Some(runtime),
        }
    }

    /// A server on `127.0.0.1:0` and `[::1]:0`.
    pub(crate) fn loopback() -> HttpServer {
        Self::start(&[
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            SocketAddr::from((Ipv6Addr::LOCALHOST, 0)),
        ])
    }

    /// The port of the first address.
    pub(crate) fn port(&self) -> u16 {
        self.addrs[0].port()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hex SHA-256 of the body `GET /bytes/size` answers.
pub(crate) fn expected_sha256(size: u64) -> String {
    sha256_hex(&braid_simulations::http::expected_body(size))
}

/// Fetches `url` with the curl binary through the SOCKS5 proxy at `socks`, letting the proxy
/// side resolve names (`--socks5-hostname`), into `out`. Returns the hex SHA-256 of the file.
/// Panics if curl is not installed.
pub(crate) fn curl_fetch(
    socks: SocketAddr,
    url: &str,
    out: &Path,
    max_time_secs: u64,
) -> Result<String, String> {
    let started = Instant::now();
    let result = Command::new("curl")
        .arg("--socks5-hostname")
        .arg(socks.to_string())
        .args(["-sS", "--max-time", &max_time_secs.to_string(), "-o"])
        .arg(out)
        .arg(url)
        .output();
    let output = match result {
        Ok(o) => o,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            panic!("the `curl` binary is required by the end-to-end tests but is not installed")
        }
        Err(e) => panic!("cannot run curl: {e}"),
    };
    if !output.status.success() {
        return Err(format!(
            "curl {url} via {socks}: {} after {:?}: {}",
            output.status,
            started.elapsed(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let body = std::fs::read(out).map_err(|e| format!("reading {}: {e}", out.display()))?;
    eprintln!(
        "curl {url}: {} bytes in {:?}",
        body.len(),
        started.elapsed()
    );
    Ok(sha256_hex(&body))
}

/// Fetches `/bytes/size` from `host:port` through `socks` with curl and asserts the body's
/// digest; `host` is put in the URL as is (bracket IPv6 literals).
pub(crate) fn assert_curl_fetch(net: &Network, host: &str, port: u16, size: u64) {
    let url = format!("http://{host}:{port}/bytes/{size}");
    let out = net
        .dir()
        .join(format!("body-{size}-{}", std::process::id()));
    let max_time = 30 + size / (1 << 20);
    match curl_fetch(net.socks, &url, &out, max_time) {
        Ok(digest) => assert_eq!(digest, expected_sha256(size), "body of {url} differs"),
        Err(e) => panic!("{e}\n{}", net.logs()),
    }
    let _ = std::fs::remove_file(&out);
}

/// Connects to the proxy with read/write timeouts set.
pub(crate) fn socks_tcp(socks: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect_timeout(&socks, IO_TIMEOUT).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp
}

/// How a connection ended after the bytes a test sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// The peer closed cleanly (FIN) after sending these bytes.
    Closed(Vec<u8>),
    /// The peer reset the connection after these bytes arrived.
    Reset(Vec<u8>),
}

impl Ending {
    /// The bytes received before the end, whichever way it ended.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Ending::Closed(b) | Ending::Reset(b) => b,
        }
    }
}

/// Reads until the peer closes or resets, at most `limit` bytes; panics if the connection is
/// still open after [`IO_TIMEOUT`] or sends more than `limit`.
pub(crate) fn read_to_end(tcp: &mut TcpStream, limit: usize) -> Ending {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return Ending::Closed(got),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                assert!(
                    got.len() <= limit,
                    "peer sent more than {limit} bytes: {got:02x?}"
                );
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return Ending::Reset(got);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("connection still open after {IO_TIMEOUT:?}; received {got:02x?}")
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "connection still open; received {got:02x?}"
        );
    }
}

/// Sends the NO AUTH greeting and checks the proxy picks it.
pub(crate) fn greet(tcp: &mut TcpStream) {
    tcp.write_all(&[0x05, 0x01, 0x00]).unwrap();
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).unwrap();
    assert_eq!(choice, [0x05, 0x00], "method choice");
}

/// A CONNECT request to an IP address.
pub(crate) fn connect_request_ip(target: SocketAddr) -> Vec<u8> {
    let mut req = vec![0x05, 0x01, 0x00];
    match target {
        SocketAddr::V4(a) => {
            req.push(0x01);
            req.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            req.push(0x04);
            req.extend_from_slice(&a.ip().octets());
        }
    }
    req.extend_from_slice(&target.port().to_be_bytes());
    req
}

/// A CONNECT request to a domain name (sent as a name; the exit resolves it).
pub(crate) fn connect_request_domain(name: &str, port: u16) -> Vec<u8> {
    let mut req = vec![0x05, 0x01, 0x00, 0x03, u8::try_from(name.len()).unwrap()];
    req.extend_from_slice(name.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    req
}

/// The reply the proxy sends for a failed or successful request: `05 REP 00 01 0.0.0.0:0`.
pub(crate) fn reply_bytes(code: u8) -> Vec<u8> {
    vec![0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]
}

/// Greets, sends `request`, and returns the 10-byte reply (the proxy always binds `0.0.0.0:0`)
/// with the stream left open after it.
pub(crate) fn socks_request(socks: SocketAddr, request: &[u8]) -> (TcpStream, [u8; 10]) {
    let mut tcp = socks_tcp(socks);
    greet(&mut tcp);
    tcp.write_all(request).unwrap();
    let mut reply = [0u8; 10];
    tcp.read_exact(&mut reply)
        .unwrap_or_else(|e| panic!("no full reply to {request:02x?}: {e}"));
    (tcp, reply)
}

/// Sends `request` and returns the reply code, after checking the reply's shape and, for a
/// failure, that the proxy then closes the connection.
pub(crate) fn socks_reply_code(socks: SocketAddr, request: &[u8]) -> u8 {
    let (mut tcp, reply) = socks_request(socks, request);
    assert_eq!(reply[0], 0x05, "reply version: {reply:02x?}");
    assert_eq!(reply, reply_bytes(reply[1]).as_slice(), "reply shape");
    if reply[1] != 0 {
        assert_eq!(
            read_to_end(&mut tcp, 0),
            Ending::Closed(Vec::new()),
            "after failure reply {:#04x} the proxy should close",
            reply[1]
        );
    }
    reply[1]
}

/// Performs `GET /bytes/size` on an open SOCKS stream and checks the body.
pub(crate) fn http_get_verify(mut tcp: TcpStream, host: &str, size: u64) {
    let req = format!("GET /bytes/{size} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).unwrap();
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head in {} bytes", response.len()))
        + 4;
    let head = String::from_utf8_lossy(&response[..head_end]);
    assert!(head.starts_with("HTTP/1.1 200"), "status: {head}");
    assert_eq!(
        sha256_hex(&response[head_end..]),
        expected_sha256(size),
        "body of /bytes/{size}"
    );
}

/// Shuts the write half down, ignoring a peer that is already gone.
pub(crate) fn close_write(tcp: &TcpStream) {
    let _ = tcp.shutdown(Shutdown::Write);
}
