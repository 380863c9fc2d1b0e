use super::*;
use crate::config::load_config;

fn parse(text: &str) -> Result<RelayConfig, NodeError> {
    let cfg: RelayConfig = toml::from_str(text).map_err(|e| NodeError::ConfigParse {
        path: PathBuf::from("t.toml"),
        message: e.to_string(),
    })?;
    cfg.validate(Path::new("t.toml"))?;
    Ok(cfg)
}

#[test]
fn bandwidth_keys_default_to_no_limit() {
    let cfg = parse("").expect("empty config");
    assert_eq!(cfg.bandwidth_limit(), None);
    assert_eq!(cfg.accounting_limit(), None);
    assert_eq!(cfg.accounting_period, AccountingPeriod::Month);
}

#[test]
fn bandwidth_burst_defaults_to_the_rate() {
    let cfg = parse("bandwidth_rate = 1000000\n").expect("rate only");
    let l = cfg.bandwidth_limit().expect("limited");
    assert_eq!((l.rate.get(), l.burst.get()), (1_000_000, 1_000_000));
    let cfg = parse("bandwidth_rate = 1000000\nbandwidth_burst = 4096\n").expect("both");
    let l = cfg.bandwidth_limit().expect("limited");
    assert_eq!((l.rate.get(), l.burst.get()), (1_000_000, 4096));
}

#[test]
fn accounting_keys_map_to_the_relay_budget() {
    let cfg =
        parse("accounting_max = 200000000000\naccounting_period = \"day\"\n").expect("accounting");
    let a = cfg.accounting_limit().expect("budget");
    assert_eq!(a.budget.get(), 200_000_000_000);
    assert_eq!(a.period, braid_relay::ratelimit::Period::Day);
    let cfg = parse("accounting_max = 1\n").expect("month");
    assert_eq!(
        cfg.accounting_limit().expect("budget").period,
        braid_relay::ratelimit::Period::Month
    );
}

#[test]
fn bad_bandwidth_values_name_the_key() {
    let cases = [
        ("bandwidth_rate = 0\n", "bandwidth_rate"),
        ("bandwidth_rate = 4095\n", "bandwidth_rate"),
        (
            "bandwidth_rate = 10000\nbandwidth_burst = 4095\n",
            "bandwidth_burst",
        ),
        ("bandwidth_burst = 10000\n", "bandwidth_burst"),
        ("accounting_max = 0\n", "accounting_max"),
        ("accounting_period = \"week\"\n", "accounting_period"),
        ("bandwidth_rate = -1\n", "bandwidth_rate"),
        ("upnp_lease_secs = 9\n", "upnp_lease_secs"),
        ("upnp_lease_secs = 604801\n", "upnp_lease_secs"),
        (
            "upnp = true\nadvertise = [\"/ip4/8.8.8.8/tcp/1\"]\n",
            "advertise",
        ),
    ];
    for (text, key) in cases {
        let err = parse(text).expect_err(text).to_string();
        assert!(err.contains(key), "{text:?}: {err}");
    }
    // The smallest valid values: one cell.
    parse("bandwidth_rate = 4096\nbandwidth_burst = 4096\n").expect("one cell");
    parse("upnp = true\nupnp_lease_secs = 10\n").expect("shortest lease");
    parse("upnp_lease_secs = 604800\n").expect("longest lease");
}

#[test]
fn reachability_keys_are_checked() {
    let cfg = parse("").expect("empty config");
    assert!(cfg.reachability_peers.is_empty());
    assert_eq!(cfg.reachability_interval_secs, 1200);
    let id = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    let good = format!(
        "reachability_peers = [\"/ip4/198.51.100.1/udp/9401/quic-v1/p2p/{id}\", \
         \"/ip6/2001:db8::1/tcp/9401/p2p/{id}\"]\nreachability_interval_secs = 10\n"
    );
    let cfg = parse(&good).expect("two peers, shortest interval");
    assert_eq!(cfg.reachability_peers.len(), 2);
    parse("reachability_interval_secs = 86400\n").expect("longest interval");
    let many = format!(
        "reachability_peers = [{}]\n",
        vec![format!("\"/ip4/198.51.100.1/tcp/1/p2p/{id}\""); 17].join(", ")
    );
    for text in [
        "reachability_interval_secs = 9\n".to_string(),
        "reachability_interval_secs = 86401\n".into(),
        "reachability_peers = [\"/ip4/198.51.100.1/tcp/9401\"]\n".into(),
        format!("reachability_peers = [\"/dns4/example.org/tcp/1/p2p/{id}\"]\n"),
        "reachability_peers = [\"/ip4/198.51.100.1/tcp/1/p2p/nope\"]\n".into(),
        many,
    ] {
        let err = parse(&text).expect_err(&text).to_string();
        assert!(err.contains("reachability_"), "{text:?}: {err}");
    }
}

#[test]
fn the_home_relay_config_sets_realistic_limits_and_documents_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/relay-home.toml");
    let cfg: RelayConfig = load_config(&path).expect("relay-home.toml");
    let bw = cfg.bandwidth_limit().expect("rate limited");
    assert_eq!((bw.rate.get(), bw.burst.get()), (1_000_000, 2_000_000));
    let acct = cfg.accounting_limit().expect("budget");
    assert_eq!(acct.budget.get(), 200_000_000_000);
    assert_eq!(acct.period, braid_relay::ratelimit::Period::Month);
    assert!(
        !ExitPolicy::parse_rules(&cfg.exit_policy)
            .expect("policy")
            .is_exit()
    );
    // The commented "# key = value" lines, uncommented, are the defaults (the same rule
    // node/tests/it/configs.rs applies to every file).
    let text = std::fs::read_to_string(&path).expect("read");
    let commented: String = text
        .lines()
        .map(str::trim)
        .filter_map(|t| {
            if t.starts_with('[') {
                return Some(format!("{t}\n"));
            }
            let rest = t.strip_prefix("# ")?;
            let (k, _) = rest.split_once(" = ")?;
            k.chars()
                .all(|c| c.is_ascii_lowercase() || c == '_')
                .then(|| format!("{rest}\n"))
        })
        .collect();
    let defaults: RelayConfig = toml::from_str(&commented).expect("commented defaults");
    assert_eq!(defaults, RelayConfig::default());
}
