//! Every scenario file parses and validates; the default file equals the embedded default.

use std::path::Path;

use braid_simulations::Scenario;

#[test]
fn scenario_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("scenarios/") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "toml") {
            Scenario::load(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            n += 1;
        }
    }
    assert!(n >= 3);
    let k = Scenario::load(&dir.join("kill-strand-middle.toml")).expect("kill-strand-middle");
    assert_eq!((k.relays, k.exits, k.hops, k.strands), (10, 2, 3, 3));
    assert_eq!(k.faults.len(), 1);
    let d = Scenario::load(&dir.join("default.toml")).expect("default");
    assert_eq!(d, Scenario::default());
}

/// A one-fetch scenario of 8 relays with one fault whose keys (besides `at_ms`) are `keys`.
fn fault(keys: &str) -> String {
    format!("relays = 8\n[[fetch]]\nsize = 1024\ncount = 1\n[[faults]]\nat_ms = 5\n{keys}\n")
}

#[test]
fn bad_scenarios_are_rejected() {
    let dir = std::env::temp_dir().join(format!("braid-scn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (text, what) in [
        ("relays = 2\nhops = 3\n", "relays"),
        ("exits = 0\n", "exits"),
        ("surprise = 1\n", "surprise"),
        ("hops = 9\n", "hops"),
        (&fault("kill = 12"), "relay 12"),
        (&fault("kill = \"strand-exit\""), "strand-exit"),
        (&fault("cut = [1, 9]"), "relay 9"),
        (&fault("cut = [2, 2]"), "two relays"),
        (&fault("cut = \"strand-exit\""), "strand-exit"),
        (&fault("kill = 1\ngroup = 1"), "group 1"),
        (&fault("kill = 1\ncut = [1, 2]"), "both"),
        (&fault("kill = 1\nwhen = 3"), "when"),
        ("relay_rate = 5\n", "relay_rate"),
        ("exit_rate = 0\n", "exit_rate"),
        ("relay_rate = \"fast\"\n", "relay_rate"),
    ] {
        let p = dir.join("s.toml");
        std::fs::write(&p, text).expect("write");
        let err = Scenario::load(&p).expect_err(text).to_string();
        assert!(err.contains(what) && err.contains("s.toml"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn relay_and_exit_rates_apply_to_their_kind_only() {
    use braid_simulations::network::scenario_relay_config;
    let text = "relays = 5\nexits = 2\nrelay_rate = 10000000\nexit_rate = 50000000\n";
    let s: Scenario = toml::from_str(text).expect("parses");
    s.validate().expect("valid");
    for i in 0..5 {
        let cfg = scenario_relay_config(&s, i);
        let want = if i < 2 { 50_000_000 } else { 10_000_000 };
        assert_eq!(cfg.bandwidth_rate, Some(want), "relay {i}");
        assert_eq!(cfg.bandwidth, want, "relay {i} advertises its rate");
        let accepts = cfg.exit_policy == ["accept *:*"];
        assert_eq!(accepts, i < 2, "relay {i} is an exit");
    }
    let unlimited = Scenario::default();
    assert_eq!(scenario_relay_config(&unlimited, 4).bandwidth_rate, None);
}
