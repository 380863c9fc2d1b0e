//! The `braid` command: thin dispatch to the node and simulation crates.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
