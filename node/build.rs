//! Embeds the git commit the node is built from as `BRAID_GIT_COMMIT` (shown by the local
//! API's `/v1/version`); "unknown" when git or the repository is absent. Never fails.

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit()))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BRAID_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves (a worktree's .git is a file; then only rerun on build.rs).
    let git = std::path::Path::new("../.git");
    if git.is_dir() {
        println!("cargo:rerun-if-changed=../.git/HEAD");
        println!("cargo:rerun-if-changed=../.git/refs/heads");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
