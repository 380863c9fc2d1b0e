//! Bad config files: `braid relay` and `braid proxy` exit non-zero within seconds, and stderr
//! names the offending key and the file.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Proc, braid_bin, write_file};

/// Runs `braid <role> --config <path>` and returns its stderr, asserting it failed quickly.
fn run_failing(dir: &Path, role: &str, path: &Path) -> String {
    let mut cmd = Command::new(braid_bin());
    cmd.arg(role).arg("--config").arg(path);
    let name = format!("{role} with {}", path.display());
    let err = dir.join(format!("{role}.stderr"));
    let started = Instant::now();
    let mut proc = Proc::spawn(&name, cmd, &err);
    let status = proc
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{name} is still running after 10 s\n{}", proc.stderr_tail()));
    let stdout = proc.drain_lines();
    assert!(!status.success(), "{name} exited with success");
    assert!(stdout.is_empty(), "{name} printed on stdout: {stdout:?}");
    eprintln!("{name}: {status} after {:?}", started.elapsed());
    proc.stderr()
}

/// Writes `config`, runs it, and checks stderr names `key` and the file.
fn assert_rejected(dir: &Path, role: &str, file: &str, config: &str, key: &str) {
    let path = write_file(dir, file, config);
    let stderr = run_failing(dir, role, &path);
    let shown = path.display().to_string();
    assert!(
        stderr.contains(key),
        "{role} stderr does not name `{key}` for {config:?}:\n{stderr}"
    );
    assert!(
        stderr.contains(&shown),
        "{role} stderr does not name the file {shown}:\n{stderr}"
    );
}

#[test]
fn relay_config_errors_name_the_key_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let data = dir.join("data");
    let base = format!(
        "data_dir = {:?}\nlisten = [\"/ip4/127.0.0.70/tcp/0\"]\n",
        data.display().to_string()
    );
    // (file, extra lines, text stderr must contain: the key, as the error reports it)
    let cases = [
        (
            "unknown.toml",
            "bogus_key = 1\n",
            "unknown field `bogus_key`",
        ),
        ("bandwidth.toml", "bandwidth = 0\n", "key `bandwidth`"),
        (
            "type.toml",
            "bandwidth = \"fast\"\n",
            "bandwidth = \"fast\"",
        ),
        (
            "policy.toml",
            "exit_policy = [\"bogus\"]\n",
            "key `exit_policy`",
        ),
        (
            "nickname.toml",
            "nickname = \"no spaces\"\n",
            "key `nickname`",
        ),
        (
            "advertise.toml",
            "advertise = [\"not-a-multiaddr\"]\n",
            "not-a-multiaddr",
        ),
        (
            "lifetime.toml",
            "descriptor_lifetime_secs = 0\n",
            "key `descriptor_lifetime_secs`",
        ),
        (
            "limits.toml",
            "[limits]\nmax_circuits = 0\n",
            "key `limits.max_circuits`",
        ),
        (
            "limits-key.toml",
            "[limits]\nbogus_limit = 3\n",
            "unknown field `bogus_limit`",
        ),
        ("syntax.toml", "bandwidth = \n", "bandwidth = "),
    ];
    for (file, extra, key) in cases {
        assert_rejected(dir, "relay", file, &format!("{base}{extra}"), key);
    }
    let no_listen = format!("data_dir = {:?}\nlisten = []\n", data.display().to_string());
    assert_rejected(
        dir,
        "relay",
        "empty-listen.toml",
        &no_listen,
        "key `listen`",
    );
    // No rejected config got as far as creating keys.
    assert!(
        !data.exists(),
        "a rejected config created {}",
        data.display()
    );
}

#[test]
fn missing_config_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for role in ["relay", "proxy"] {
        let path = dir.join(format!("missing-{role}.toml"));
        let stderr = run_failing(dir, role, &path);
        assert!(
            stderr.contains(&path.display().to_string()),
            "{role} stderr does not name the missing file:\n{stderr}"
        );
    }
}

#[test]
fn proxy_config_errors_name_the_key_and_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = [
        (
            "unknown.toml",
            "bogus_key = true\n",
            "unknown field `bogus_key`",
        ),
        ("hops.toml", "hops = 0\n", "key `hops`"),
        ("hops9.toml", "hops = 9\n", "key `hops`"),
        ("circuits.toml", "max_circuits = 0\n", "key `max_circuits`"),
        (
            "listen.toml",
            "socks_listen = \"nowhere\"\n",
            "socks_listen = \"nowhere\"",
        ),
    ];
    for (file, config, key) in cases {
        assert_rejected(dir, "proxy", file, config, key);
    }
    // A directory file that does not exist is named too.
    let missing = dir.join("no-directory.json");
    let config = format!(
        "socks_listen = \"127.0.0.1:0\"\ndirectory = {:?}\n",
        missing.display().to_string()
    );
    let path = write_file(dir, "nodir.toml", &config);
    let stderr = run_failing(dir, "proxy", &path);
    assert!(
        stderr.contains(&missing.display().to_string()),
        "proxy stderr does not name the missing directory file:\n{stderr}"
    );
}
