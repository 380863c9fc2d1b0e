//! The local API of `braid sim --serve`'s proxy, end to end: the `ready` line names the API and
//! its token file, the token is required, status numbers move after a curl download through
//! the SOCKS port, `/v1/circuits` never names the target, `braid status` prints the table (and
//! a clear error when no node runs), and the status page shows the traffic in a real headless
//! Chromium (Debian's `chromium`, installed by `.ci/run`), with a screenshot saved to
//! `target/artifacts/status-page.png`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use braid_node::api::{Status, client};

use crate::support::{
    HttpServer, Proc, braid_bin, curl_fetch, expected_sha256, one_sim_at_a_time, sigterm,
};

/// Runs `cmd` to its end, killing it after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> client::Answer {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(client::get(addr, path, token))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn status(addr: SocketAddr, token: &str) -> Status {
    let a = get(addr, "/v1/status", Some(token));
    assert_eq!(a.status, 200, "{}", a.body);
    serde_json::from_str(&a.body).unwrap()
}

/// `ready socks5=ADDR api=http://ADDR token=PATH` → (socks, api, token file).
fn parse_ready(rest: &str) -> (SocketAddr, SocketAddr, PathBuf) {
    let mut parts = rest.split_whitespace();
    let socks = parts.next().unwrap().parse().unwrap();
    let api = parts
        .next()
        .and_then(|p| p.strip_prefix("api=http://"))
        .unwrap_or_else(|| panic!("no api= in {rest:?}"))
        .parse()
        .unwrap();
    let token = parts
        .next()
        .and_then(|p| p.strip_prefix("token="))
        .unwrap_or_else(|| panic!("no token= in {rest:?}"));
    (socks, api, PathBuf::from(token))
}

fn artifacts_dir() -> PathBuf {
    // CARGO_BIN_EXE_braid is <target>/<profile>/braid.
    let target = Path::new(braid_bin()).parent().unwrap().parent().unwrap();
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Loads `url` in headless Chromium over the DevTools protocol (`tests/browser/page_probe.py`:
/// `--dump-dom` cannot wait on a page that keeps an EventSource open), waits up to 40 s for
/// `condition`, returns the JSON of `value` and whether the condition held, and saves a
/// screenshot to `shot`.
fn browser_probe(
    url: &str,
    condition: &str,
    value: &str,
    shot: &Path,
    profile: &Path,
) -> (bool, serde_json::Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/page_probe.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .args([url, condition, value])
        .arg(shot)
        .arg("40")
        .arg(profile);
    let out = run_bounded(cmd, Duration::from_secs(90));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser probe failed ({:?}; is `chromium` installed? .ci/run installs it): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    (v["condition_met"] == true, v["value"].clone())
}

#[test]
fn sim_api_status_numbers_move_and_the_page_shows_traffic_in_chromium() {
    let _sim = one_sim_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let http = HttpServer::loopback();
    let mut cmd = Command::new(braid_bin());
    cmd.args(["sim", "--serve", "--for", "120"]);
    let mut sim = Proc::spawn("braid sim --serve", cmd, &tmp.path().join("sim.stderr"));
    let rest = sim.wait_line("ready socks5=", Duration::from_secs(120));
    let (socks, api, token_file) = parse_ready(&rest);
    assert!(api.ip().is_loopback(), "{api}");
    let token = client::read_token(&token_file).unwrap();

    // Cookie authentication.
    assert_eq!(get(api, "/v1/status", None).status, 401);
    assert_eq!(get(api, "/v1/status", Some("0123")).status, 401);
    let before = status(api, &token);
    assert_eq!(before.role, "proxy");
    assert!(before.directory.as_ref().unwrap().relays >= 3, "{before:?}");

    // Traffic moves the numbers (the sampler runs each second).
    let url = format!("http://localhost:{}/bytes/2097152", http.port());
    let digest = curl_fetch(socks, &url, &tmp.path().join("body"), 60)
        .unwrap_or_else(|e| panic!("{e}\n{}", sim.stderr_tail()));
    assert_eq!(digest, expected_sha256(2 << 20));
    let deadline = Instant::now() + Duration::from_secs(10);
    let after = loop {
        let s = status(api, &token);
        if s.traffic.bytes_in >= before.traffic.bytes_in + (2 << 20) {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "bytes_in did not grow by the 2 MiB fetched: before {:?} now {:?}",
            before.traffic,
            s.traffic
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(after.traffic.bytes_out > before.traffic.bytes_out);
    assert!(after.circuits_open.unwrap() >= 1, "{after:?}");

    // Circuits by nickname, never the target.
    let circuits = get(api, "/v1/circuits", Some(&token));
    assert_eq!(circuits.status, 200);
    let v: serde_json::Value = serde_json::from_str(&circuits.body).unwrap();
    let list = v["circuits"].as_array().unwrap();
    assert!(!list.is_empty(), "{}", circuits.body);
    assert!(
        list.iter()
            .all(|c| c["path"].as_array().unwrap().len() == 3)
    );
    for secret in [
        "localhost",
        "127.0.0.1",
        "/bytes/",
        &format!(":{}", http.port()),
    ] {
        assert!(
            !circuits.body.contains(secret),
            "{secret} in {}",
            circuits.body
        );
    }

    // `braid status` prints the table from the data dir; a stopped node is a clear error.
    let data_dir = token_file.parent().unwrap();
    let mut cmd = Command::new(braid_bin());
    cmd.arg("status").arg("--data-dir").arg(data_dir);
    let out = run_bounded(cmd, Duration::from_secs(30));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{table}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "role",
        "proxy",
        "directory",
        "circuits",
        "traffic",
        "circuit path",
    ] {
        assert!(table.contains(want), "no {want:?} in\n{table}");
    }
    eprintln!("braid status:\n{table}");
    let mut cmd = Command::new(braid_bin());
    cmd.args(["status", "--data-dir"]).arg(tmp.path());
    let out = run_bounded(cmd, Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("api.addr") && err.contains("running"), "{err}");

    // The page in a real browser, loaded while a slow download runs so the graph has traffic.
    let slow = Command::new("curl")
        .arg("--socks5-hostname")
        .arg(socks.to_string())
        .args([
            "-sS",
            "--max-time",
            "40",
            "--limit-rate",
            "1M",
            "-o",
            "/dev/null",
        ])
        .arg(format!("http://localhost:{}/bytes/33554432", http.port()))
        .spawn()
        .unwrap();
    let mut slow = scopeguard(slow);
    std::thread::sleep(Duration::from_secs(2));
    let page = format!("http://{api}/?token={token}");
    let shot = artifacts_dir().join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    let graph = "document.getElementById('graph').dataset";
    let (met, seen) = browser_probe(
        &page,
        &format!("Number({graph}.peak) > 0 && Number({graph}.samples) >= 3"),
        &format!(
            "({{bytes_in: Number(document.getElementById('bytes-in').dataset.value), \
             samples: Number({graph}.samples), peak: Number({graph}.peak), \
             live: document.getElementById('live').textContent, \
             role: document.getElementById('role').textContent, \
             circuits: document.querySelectorAll('#circuits tbody tr').length, \
             url: location.href}})"
        ),
        &shot,
        &tmp.path().join("chromium"),
    );
    eprintln!("page: {seen}");
    assert!(
        met,
        "the graph never showed traffic: {seen}\n{}",
        sim.stderr_tail()
    );
    assert!(seen["bytes_in"].as_u64().unwrap() >= 2 << 20, "{seen}");
    assert_eq!(seen["role"], "proxy", "{seen}");
    assert_eq!(seen["live"], "live", "{seen}");
    assert!(seen["circuits"].as_u64().unwrap() >= 1, "{seen}");
    // The page took the token out of the address bar.
    assert!(!seen["url"].as_str().unwrap().contains("token"), "{seen}");
    let png =
        std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {}: {e}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
    let _ = slow.0.kill();
    let _ = slow.0.wait();

    sigterm(sim.pid());
    let status = sim.wait_exit(Duration::from_secs(15));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        sim.stderr_tail()
    );
    // The token never reaches the logs.
    assert!(!sim.stderr().contains(&token), "the token was logged");
}

/// Kills the child when dropped (a failed assert must not leave curl running).
struct Guard(std::process::Child);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
fn scopeguard(c: std::process::Child) -> Guard {
    Guard(c)
}
