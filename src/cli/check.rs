//! `braid check --config FILE [--role ROLE]`: validates a config like `tor --verify-config`.
//! Without `--role` the role is told from the keys only one role has (`nickname`,
//! `socks_listen`, `snapshot_interval_secs` ...); a file with none of them needs `--role`.
//! Nothing is created or bound: the file is only parsed and range-checked.

use std::path::Path;
use std::process::ExitCode;

use braid_node::config::{Role, check as check_config, detect_role};

/// Prints `config OK (ROLE)` and succeeds, or prints the error to stderr and fails.
pub(crate) fn check(path: &Path, role: Option<&str>) -> ExitCode {
    let role = match role.map(str::parse::<Role>) {
        Some(Ok(r)) => r,
        Some(Err(e)) => return fail(&e),
        None => match detect_role(path) {
            Ok(Some(r)) => r,
            Ok(None) => {
                return fail(&format!(
                    "config file {}: cannot tell the role from its keys; pass --role relay, \
                     proxy or registry",
                    path.display()
                ));
            }
            Err(e) => return fail(&e.to_string()),
        },
    };
    match check_config(path, role) {
        Ok(()) => {
            println!("config OK ({role})");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&super::error_text(&e.into())),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("braid: {message}");
    ExitCode::FAILURE
}
