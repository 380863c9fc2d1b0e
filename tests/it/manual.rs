//! `braid completions <shell>` and `braid man`: generated from the clap definitions, printed
//! to stdout (or, for `man --out-dir`, written as one page per subcommand).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::process::Command;

use crate::support::braid_bin;

fn braid(args: &[&str]) -> String {
    let out = Command::new(braid_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "braid {args:?}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_cover_the_subcommands() {
    let bash = braid(&["completions", "bash"]);
    assert!(bash.contains("_braid()"), "{bash}");
    for sub in ["relay", "proxy", "registry", "completions", "man"] {
        assert!(bash.contains(sub), "bash completion lacks {sub}");
    }
    for shell in ["zsh", "fish"] {
        let script = braid(&["completions", shell]);
        assert!(
            script.contains("braid") && script.contains("relay"),
            "{shell}"
        );
    }
    let bad = Command::new(braid_bin())
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!bad.status.success(), "an unknown shell is refused");
}

#[test]
fn man_page_names_braid_and_its_subcommands() {
    let page = braid(&["man"]);
    assert!(
        page.starts_with(".ie") || page.contains(".TH braid 1"),
        "{page}"
    );
    assert!(page.contains(".TH braid 1"), "{page}");
    for sub in ["relay", "proxy", "registry"] {
        assert!(page.contains(sub), "man page lacks {sub}");
    }
    let dir = tempfile::tempdir().unwrap();
    braid(&["man", "--out-dir", &dir.path().display().to_string()]);
    let relay = std::fs::read_to_string(dir.path().join("braid-relay.1")).unwrap();
    assert!(relay.contains("\\-\\-config"), "{relay}");
    assert!(dir.path().join("braid.1").is_file());
}
