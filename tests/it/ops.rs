//! The operator surface of the `braid` binary, run as processes: the five error messages that
//! used to be wrong, `braid check`, and the log's form (no ANSI when stderr is a file, JSON).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::support::{Proc, braid_bin, sigterm, write_file};

/// A registry peer id that is not this node's (from configs/registry.toml).
const OTHER_PEER: &str = "12D3KooWGp54vP9mXieYwragpuCVPsesxTPaJfe5Lv9NqnY4p9F1";

fn run(args: &[&str], config: &Path) -> Output {
    let out = Command::new(braid_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    eprintln!(
        "braid {args:?}: {}\nstdout: {}stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_port_in_use_is_named_with_its_reason_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = TcpListener::bind("127.0.0.71:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tmp.path().join("data");
    let config = format!(
        "data_dir = {:?}\nlisten = [\"/ip4/127.0.0.71/tcp/{port}\"]\n",
        data.display().to_string()
    );
    let path = write_file(tmp.path(), "relay.toml", &config);
    let started = std::time::Instant::now();
    let out = run(&["relay"], &path);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot listen on /ip4/127.0.0.71/tcp/{port}: "))
            && err.contains("Address already in use"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn registry_errors_name_the_real_file_and_bad_listen_addresses() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let registries = format!(
        "[[registries]]\npeer = \"{OTHER_PEER}\"\naddress = \"/ip4/198.51.100.7/udp/9400/quic-v1\"\n"
    );
    // A listen address that is not one is an error, not dropped.
    let bad_listen = format!(
        "data_dir = {:?}\nlisten = [\"/ip4/127.0.0.72/udp/0/quic-v1\", \"bogus\"]\n{registries}",
        data.display().to_string()
    );
    let path = write_file(tmp.path(), "bad-listen.toml", &bad_listen);
    let err = stderr(&run(&["registry"], &path));
    assert!(
        err.contains(&path.display().to_string())
            && err.contains("key `listen`")
            && err.contains("bogus"),
        "{err}"
    );
    assert!(
        !data.exists(),
        "a rejected config created {}",
        data.display()
    );
    // This node missing from the list: the message names the file, not a placeholder.
    let not_listed = format!(
        "data_dir = {:?}\nlisten = [\"/ip4/127.0.0.72/udp/0/quic-v1\"]\n{registries}",
        data.display().to_string()
    );
    let path = write_file(tmp.path(), "not-listed.toml", &not_listed);
    let out = run(&["registry"], &path);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(&format!("config file {}: key `registries`", path.display()))
            && err.contains("is not in the list")
            && !err.contains("<registry config>"),
        "{err}"
    );
}

#[test]
fn an_unsupported_multiaddr_is_refused_before_any_key_exists() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, addr) in [
        "/ip4/127.0.0.73/tcp/0/ws",
        "/dns4/localhost/tcp/0",
        "/ip4/127.0.0.73/udp/0/quic",
    ]
    .iter()
    .enumerate()
    {
        let data = tmp.path().join(format!("data{i}"));
        let config = format!(
            "data_dir = {:?}\nlisten = [{addr:?}]\n",
            data.display().to_string()
        );
        let path = write_file(tmp.path(), &format!("relay{i}.toml"), &config);
        let out = run(&["relay"], &path);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("unsupported address") && err.contains(addr),
            "{err}"
        );
        assert!(
            !data.exists(),
            "{addr}: a key was created in {}",
            data.display()
        );
        // braid check says the same, and creates nothing either.
        let out = run(&["check", "--role", "relay"], &path);
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr(&out).contains("unsupported address"));
        assert!(!data.exists());
    }
}

#[test]
fn braid_directory_calls_a_bad_descriptor_a_descriptor() {
    let tmp = tempfile::tempdir().unwrap();
    let not_hex = write_file(tmp.path(), "not-hex", "garbage\n");
    let not_descriptor = write_file(tmp.path(), "short", "abcd\n");
    for file in [&not_hex, &not_descriptor] {
        let out = Command::new(braid_bin())
            .arg("directory")
            .arg("--out")
            .arg(tmp.path().join("dir.json"))
            .arg(file)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains(&format!("descriptor file {}: ", file.display()))
                && !err.contains("key file")
                && !err.contains("config"),
            "{err}"
        );
    }
}

#[test]
fn braid_check_validates_without_creating_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    for (file, role) in [
        ("relay-home.toml", "relay"),
        ("exit.toml", "relay"),
        ("proxy.toml", "proxy"),
        ("registry.toml", "registry"),
    ] {
        let out = run(&["check"], &configs.join(file));
        assert!(out.status.success(), "{file}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("config OK ({role})\n")
        );
    }
    let data = tmp.path().join("data");
    let bad = format!(
        "nickname = \"x\"\ndata_dir = {:?}\nbandwidth_rate = \"10 XB/s\"\n",
        data.display().to_string()
    );
    let path = write_file(tmp.path(), "bad-units.toml", &bad);
    let out = run(&["check"], &path);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("bandwidth_rate") && err.contains("10 XB/s"),
        "{err}"
    );
    let good = format!(
        "nickname = \"x\"\ndata_dir = {:?}\nlisten = [\"/ip4/127.0.0.74/tcp/1\"]\n\
         bandwidth_rate = \"2 MB/s\"\naccounting_max = \"1.5 GiB\"\nupnp_lease_secs = \"2 h\"\n",
        data.display().to_string()
    );
    let path = write_file(tmp.path(), "good.toml", &good);
    let out = run(&["check"], &path);
    assert!(out.status.success());
    // Only shared keys: the role must be given.
    let path = write_file(tmp.path(), "shared.toml", "data_dir = \"/nonexistent\"\n");
    let out = run(&["check"], &path);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--role"));
    assert!(run(&["check", "--role", "proxy"], &path).status.success());
    assert!(!data.exists());
}

#[test]
fn logs_have_no_ansi_off_a_terminal_and_json_on_request() {
    let tmp = tempfile::tempdir().unwrap();
    let config = |name: &str, extra: &str| {
        let data = tmp.path().join(name);
        write_file(
            tmp.path(),
            &format!("{name}.toml"),
            &format!(
                "data_dir = {:?}\nlisten = [\"/ip4/127.0.0.75/tcp/0\"]\n{extra}",
                data.display().to_string()
            ),
        )
    };
    let start = |name: &str, args: &[&str], path: &Path| {
        let mut cmd = Command::new(braid_bin());
        cmd.args(args).arg("relay").arg("--config").arg(path);
        cmd.env_remove("RUST_LOG").env_remove("NO_COLOR");
        let mut p = Proc::spawn(name, cmd, &tmp.path().join(format!("{name}.stderr")));
        p.wait_line("ready descriptor=", Duration::from_secs(30));
        sigterm(p.pid());
        assert!(
            p.wait_exit(Duration::from_secs(10))
                .is_some_and(|s| s.success())
        );
        p.stderr()
    };
    let text = start("text", &[], &config("text", ""));
    assert!(text.contains("relay started"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI escapes in a log file:\n{text}"
    );
    // --log-format json: every line is one JSON object.
    let json = start("json", &["--log-format", "json"], &config("json", ""));
    check_json(&json);
    // The [log] table does the same, and its level quiets info lines.
    let quiet = start(
        "quiet",
        &[],
        &config("quiet", "[log]\nlevel = \"warn\"\nformat = \"json\"\n"),
    );
    assert!(!quiet.contains("relay started"), "{quiet}");
    check_json(&quiet);
    // --log-level overrides the table.
    let loud = start(
        "loud",
        &["--log-level", "info"],
        &config("loud", "[log]\nlevel = \"warn\"\n"),
    );
    assert!(loud.contains("relay started"), "{loud}");
}

fn check_json(log: &str) {
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v.get("level").is_some() && v.get("fields").is_some(),
            "{line}"
        );
    }
}

#[test]
fn sigterm_during_the_reachability_test_stops_cleanly_and_sighup_kills_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A reachability peer nobody answers for: the relay waits for its dial to time out.
    let config = format!(
        "data_dir = {:?}\nlisten = [\"/ip4/127.0.0.76/udp/0/quic-v1\"]\n\
         reachability_peers = [\"/ip4/127.0.0.77/udp/9/quic-v1/p2p/{OTHER_PEER}\"]\n",
        data.display().to_string()
    );
    let path = write_file(tmp.path(), "relay.toml", &config);
    let mut cmd = Command::new(braid_bin());
    cmd.arg("relay").arg("--config").arg(&path);
    let mut relay = Proc::spawn("relay", cmd, &tmp.path().join("relay.stderr"));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !relay.stderr().contains("relay started") {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            relay.stderr_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGHUP during start-up is logged and ignored, not the default action (death).
    let hup = Command::new("kill")
        .args(["-HUP", &relay.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        relay.is_running(),
        "SIGHUP killed the relay\n{}",
        relay.stderr_tail()
    );
    sigterm(relay.pid());
    let status = relay
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("still running 5 s after SIGTERM\n{}", relay.stderr_tail()));
    assert!(status.success(), "{status}\n{}", relay.stderr_tail());
    let log = relay.stderr();
    assert!(log.contains("SIGHUP: nothing to reload now"), "{log}");
    assert!(
        log.contains("stop requested during the reachability test"),
        "{log}"
    );
    assert!(relay.drain_lines().is_empty(), "printed a ready line");
}
