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
    assert!(n >= 2);
    let d = Scenario::load(&dir.join("default.toml")).expect("default");
    assert_eq!(d, Scenario::default());
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
    ] {
        let p = dir.join("s.toml");
        std::fs::write(&p, text).expect("write");
        let err = Scenario::load(&p).expect_err(text).to_string();
        assert!(err.contains(what) && err.contains("s.toml"), "{err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
