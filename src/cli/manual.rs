//! `braid completions <shell>` and `braid man`: shell completion scripts and man pages
//! generated from the clap definitions of [`super::Cli`], so they never drift from the
//! command. Not a place for any node logic.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

/// Prints the completion script for `shell` to stdout.
pub(crate) fn completions(shell: Shell) -> ExitCode {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "braid", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// Prints the man page `braid(1)` to stdout, or with `out_dir` writes it and one page per
/// subcommand (`braid-relay.1`, ...) there.
pub(crate) fn man(out_dir: Option<&Path>) -> Result<ExitCode> {
    let cmd = Cli::command();
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("writing man pages to {}", dir.display()))?;
        }
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .context("writing the man page to stdout")?,
    }
    Ok(ExitCode::SUCCESS)
}
