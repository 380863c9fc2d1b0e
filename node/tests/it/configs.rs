//! Every file in configs/ parses, and its commented-out values are exactly the defaults.

use std::path::{Path, PathBuf};

use braid_node::config::RegistryConfig;
use braid_node::config::Validate;
use braid_node::{ProxyConfig, RelayConfig, load_config};
use serde::de::DeserializeOwned;

fn configs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

/// The file's section headers plus its commented `# key = value` lines, uncommented.
fn commented_defaults(text: &str) -> String {
    let mut out = String::new();
    // `[[...]]` tables (the registry list) are data, not defaults: skip them to the next table.
    let mut in_array_table = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("[[") {
            in_array_table = true;
        } else if t.starts_with('[') {
            in_array_table = false;
            out += t;
            out += "\n";
        } else if !in_array_table && let Some(rest) = t.strip_prefix("# ") {
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
fn registry_config_parses_and_documents_defaults() {
    check::<RegistryConfig>("registry.toml");
    let cfg: RegistryConfig = load_config(&configs_dir().join("registry.toml")).expect("parse");
    let list = braid_node::config::parse_registries(
        std::path::Path::new("registry.toml"),
        "registries",
        &cfg.registries,
    )
    .expect("registries");
    assert_eq!(list.len(), 3);
    // Every example registry's key is the one its peer id carries.
    for r in &list {
        assert_eq!(
            braid_transport::peer_id_from_public(&r.key).expect("key"),
            r.peer
        );
    }
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
        [
            "exit.toml",
            "proxy.toml",
            "registry.toml",
            "relay-home.toml",
            "relay.toml"
        ]
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
        ("family = [\"not-a-peer\"]\n", "family"),
        (
            "family = [\"12D3KooWGp54vP9mXieYwragpuCVPsesxTPaJfe5Lv9NqnY4p9F1\", \
             \"12D3KooWGp54vP9mXieYwragpuCVPsesxTPaJfe5Lv9NqnY4p9F1\"]\n",
            "family",
        ),
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
    let p = write(dir.path(), "preemptive_circuits = 9\n");
    let err = load_config::<ProxyConfig>(&p)
        .expect_err("preemptive_circuits")
        .to_string();
    assert!(err.contains("preemptive_circuits"), "{err}");
    let p = write(dir.path(), "preemptive_circuits = 0\n");
    let cfg = load_config::<ProxyConfig>(&p).expect("0 turns it off");
    assert_eq!(cfg.router_settings().preemptive, 0);
    // Registry lists: a bad peer id, a duplicate, a /p2p/ part naming another peer, too many.
    let peer = "12D3KooWGp54vP9mXieYwragpuCVPsesxTPaJfe5Lv9NqnY4p9F1";
    let other = "12D3KooWHXd9dgMsSQ1rK1My9hKxJ7BFyxgPLQ9uue7XCih5qxE2";
    let entry = |p: &str, a: &str| format!("[[registries]]\npeer = \"{p}\"\naddress = \"{a}\"\n");
    let quic = "/ip4/127.0.0.1/udp/9400/quic-v1";
    let cases = [
        (entry("not-a-peer", quic), "not-a-peer"),
        (entry(peer, quic) + &entry(peer, quic), "twice"),
        (entry(peer, &format!("{quic}/p2p/{other}")), "another peer"),
        (entry(peer, "nowhere"), "nowhere"),
        (
            "directory_refresh_secs = 1\n".to_string(),
            "directory_refresh_secs",
        ),
    ];
    for (text, what) in &cases {
        let p = write(dir.path(), text);
        let err = load_config::<ProxyConfig>(&p).expect_err(text).to_string();
        assert!(err.contains(what), "{text}: {err}");
    }
    let ten: String = (0..10)
        .map(|_| {
            entry(
                &braid_transport::Identity::generate().peer_id().to_string(),
                quic,
            )
        })
        .collect();
    let err = load_config::<ProxyConfig>(&write(dir.path(), &ten))
        .expect_err("ten")
        .to_string();
    assert!(err.contains("at most 9"), "{err}");
    let p = write(dir.path(), "republish_interval_secs = 86400\n");
    let err = load_config::<RelayConfig>(&p)
        .expect_err("republish")
        .to_string();
    assert!(err.contains("republish_interval_secs"), "{err}");
    // The listing caps and the unmeasured weight must be at least 1.
    for key in [
        "max_relays_per_ipv4_24",
        "max_relays_per_ipv6_48",
        "unmeasured_weight",
    ] {
        let text = format!("{key} = 0\n{}", entry(peer, quic));
        let err = load_config::<RegistryConfig>(&write(dir.path(), &text))
            .expect_err(key)
            .to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
    let text = format!(
        "max_relays_per_ipv4_24 = 50\nguard_min_uptime_secs = 0\n{}",
        entry(peer, quic)
    );
    let cfg = load_config::<RegistryConfig>(&write(dir.path(), &text)).expect("a test network");
    let params = cfg.listing_params();
    assert_eq!(
        (params.max_per_ipv4_24, params.guard_min_uptime_secs),
        (50, 0)
    );
    // A registry must list its group.
    let err = load_config::<RegistryConfig>(&write(dir.path(), "max_relays = 5\n"))
        .expect_err("no registries")
        .to_string();
    assert!(err.contains("registries"), "{err}");
    let missing = dir.path().join("missing.toml");
    let err = load_config::<ProxyConfig>(&missing)
        .expect_err("missing")
        .to_string();
    assert!(err.contains("missing.toml"), "{err}");
}

#[test]
fn http_listen_stays_on_loopback_unless_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "http_listen = \"0.0.0.0:8118\"\n");
    let err = load_config::<ProxyConfig>(&p)
        .expect_err("a public HTTP CONNECT port")
        .to_string();
    assert!(
        err.contains("http_listen") && err.contains("loopback"),
        "{err}"
    );
    let p = write(
        dir.path(),
        "http_listen = \"0.0.0.0:8118\"\nhttp_listen_allow_remote = true\n",
    );
    let cfg = load_config::<ProxyConfig>(&p).expect("allowed explicitly");
    assert_eq!(cfg.http_listen, Some("0.0.0.0:8118".parse().expect("addr")));
    let p = write(
        dir.path(),
        "socks_listen = \"127.0.0.1:1080\"\nhttp_listen = \"127.0.0.1:1080\"\n",
    );
    let err = load_config::<ProxyConfig>(&p)
        .expect_err("one port for both")
        .to_string();
    assert!(err.contains("socks_listen"), "{err}");
    let p = write(dir.path(), "http_listen = \"[::1]:8118\"\n");
    assert!(load_config::<ProxyConfig>(&p).is_ok());
}
