//! Every file in configs/ parses, and its commented-out values are exactly the defaults.

use std::path::{Path, PathBuf};

use braid_node::config::Validate;
use braid_node::{ProxyConfig, RelayConfig, load_config};
use serde::de::DeserializeOwned;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// The file's section headers plus its commented `# key = value` lines, uncommented.
fn commented_defaults(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            out += t;
            out += "\n";
        } else if let Some(rest) = t.strip_prefix("# ") {
            let is_kv = rest
                .split_once(" = ")
                .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            if is_kv {
                out += rest;
                out += "\n";
            }
        }
    }
    out
}

fn check<T>(name: &str)
where
    T: DeserializeOwned + Validate + Default + PartialEq + std::fmt::Debug,
{
    let path = configs_dir().join(name);
    load_config::<T>(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let text = std::fs::read_to_string(&path).expect("read");
    let defaults: T = toml::from_str(&commented_defaults(&text))
        .unwrap_or_else(|e| panic!("{name} commented defaults: {e}"));
    assert_eq!(
        defaults,
        T::default(),
        "{name}: a commented value is not the default"
    );
}

#[test]
fn relay_configs_parse_and_document_defaults() {
    check::<RelayConfig>("relay.toml");
    check::<RelayConfig>("exit.toml");
    check::<RelayConfig>("relay-home.toml");
}

#[test]
fn proxy_config_parses_and_documents_defaults() {
    check::<ProxyConfig>("proxy.toml");
}

#[test]
fn every_config_file_is_checked() {
    let mut names: Vec<String> = std::fs::read_dir(configs_dir())
        .expect("configs/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["exit.toml", "proxy.toml", "relay-home.toml", "relay.toml"]
    );
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("bad.toml");
    std::fs::write(&p, text).expect("write");
    p
}

#[test]
fn bad_configs_name_the_key_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: &[(&str, &str)] = &[
        ("bogus_key = 1\n", "bogus_key"),
        ("bandwidth = 0\n", "bandwidth"),
        ("bandwidth = \"fast\"\n", "bandwidth"),
        ("exit_policy = [\"allow everything\"]\n", "exit_policy"),
        ("nickname = \"has space\"\n", "nickname"),
        ("listen = [\"not-a-multiaddr\"]\n", "listen"),
        ("advertise = [\"zzz\"]\n", "advertise"),
        ("[limits]\nmax_circuits = 0\n", "max_circuits"),
        ("[limits]\nsurprise = 1\n", "surprise"),
    ];
    for (text, key) in cases {
        let p = write(dir.path(), text);
        let err = load_config::<RelayConfig>(&p).expect_err(text).to_string();
        assert!(err.contains(key), "{text:?}: {err}");
        assert!(err.contains(&p.display().to_string()), "{text:?}: {err}");
    }
    let p = write(dir.path(), "hops = 0\n");
    let err = load_config::<ProxyConfig>(&p)
        .expect_err("hops")
        .to_string();
    assert!(err.contains("hops") && err.contains("bad.toml"), "{err}");
    let missing = dir.path().join("missing.toml");
    let err = load_config::<ProxyConfig>(&missing)
        .expect_err("missing")
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
}
