//! Command-line parsing and the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use braid_simulations::exposure;
use clap::{Parser, Subcommand};

mod check;
mod log;
mod manual;
mod nodes;
mod notify;
mod sim;
mod status;
mod stop;

use nodes::{directory, proxy, registry, relay};
use sim::sim;
use status::status;

/// braid: an onion-style privacy relay network.
#[derive(Debug, Parser)]
#[command(name = "braid", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Level of braid's log lines: error, warn, info, debug, trace (libraries stay at warn),
    /// or a full tracing filter directive. Overrides the config's [log] level; RUST_LOG
    /// overrides both.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    /// Log format: text (colours only on a terminal) or json (one object per line).
    /// Overrides the config's [log] format.
    #[arg(long, global = true, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole network in this process and fetch through it (default scenario if none given).
    Sim {
        /// A scenario file (TOML); the embedded default when absent.
        scenario: Option<PathBuf>,
        /// Keep the network up, print `ready socks5=ADDR api=http://ADDR token=PATH` (the
        /// proxy's local API and its token file), and run until SIGINT/SIGTERM.
        #[arg(long)]
        serve: bool,
        /// With --serve: stop after this many seconds.
        #[arg(long = "for", value_name = "SECONDS")]
        for_secs: Option<u64>,
        /// Write the report as JSON to this file.
        #[arg(long, value_name = "PATH")]
        report_json: Option<PathBuf>,
    },
    /// The guard exposure experiment: how often an adversary running a share of the relays
    /// holds both a stream's first hop and its exit (real guard and path code, no packets).
    Exposure {
        /// Relays in the synthetic directory.
        #[arg(long, default_value_t = 1000)]
        relays: usize,
        /// How many of them are exits.
        #[arg(long, default_value_t = 250)]
        exits: usize,
        /// The adversary's share of the relays (0..=1).
        #[arg(long, default_value_t = 0.05)]
        adversary: f64,
        /// Clients, each with its own guards.
        #[arg(long, default_value_t = 500)]
        clients: usize,
        /// Streams per client, each on a fresh isolation key.
        #[arg(long, default_value_t = 100)]
        streams: usize,
        /// Strands per stream (K).
        #[arg(long, default_value_t = 3)]
        strands: usize,
        /// Strands rebuilt per stream by clients without guards.
        #[arg(long, default_value_t = 6)]
        rebuilds: usize,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write the report as JSON to this file.
        #[arg(long, value_name = "PATH")]
        report_json: Option<PathBuf>,
    },
    /// Run a relay (and exit, if its policy allows).
    Relay {
        /// The relay's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Run a registry node (one of the group that lists relays and signs the directory).
    Registry {
        /// The registry's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the peer id of the identity in a data directory, creating the identity if absent
    /// (a registry's peer id goes into every node's `[[registries]]` list).
    Id {
        /// The node's data directory.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Run the SOCKS5 proxy.
    Proxy {
        /// The proxy's config file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a config file without starting the node (no key created, no port bound): prints
    /// `config OK (ROLE)` and exits 0, or prints the error and exits 1.
    Check {
        /// The config file.
        #[arg(long)]
        config: PathBuf,
        /// The role the file is for; without it, told from the keys only that role has.
        #[arg(long, value_parser = ["relay", "proxy", "registry"])]
        role: Option<String>,
    },
    /// Print a running node's status from its local API (relay, proxy or registry).
    Status {
        /// The node's data directory (where it wrote `api.addr` and `api_token`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The API's address instead, e.g. `http://127.0.0.1:40123`.
        #[arg(long, value_name = "URL")]
        api: Option<String>,
        /// The token file (default: `DATA_DIR/api_token`).
        #[arg(long, value_name = "FILE")]
        token_file: Option<PathBuf>,
        /// Print the API's JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script to stdout (e.g. `braid completions bash >
    /// /usr/share/bash-completion/completions/braid`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page braid(1) to stdout, or write it and one page per subcommand to a
    /// directory.
    Man {
        /// Write braid.1 and braid-SUBCOMMAND.1 here instead of printing braid.1.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Bundle relays' signed descriptor files into a directory file for proxies.
    Directory {
        /// Where to write the directory.
        #[arg(long)]
        out: PathBuf,
        /// Descriptor files written by `braid relay` (data_dir/descriptor).
        #[arg(required = true)]
        descriptors: Vec<PathBuf>,
    },
}

pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match &cli.command {
        Command::Relay { config } | Command::Proxy { config } | Command::Registry { config } => {
            braid_node::config::LogConfig::peek(config)
        }
        _ => None,
    };
    let default_level = match cli.command {
        Command::Sim { .. } | Command::Status { .. } => "warn",
        _ => "info",
    };
    let format = match cli.log_format.as_deref() {
        Some("json") => braid_node::config::LogFormat::Json,
        Some(_) => braid_node::config::LogFormat::Text,
        None => config.as_ref().map(|c| c.format).unwrap_or_default(),
    };
    let logging = match log::init(
        cli.log_level.as_deref(),
        config.as_ref().map(|c| c.level.as_str()),
        default_level,
        format,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("braid: {}", error_text(&e));
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("braid: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, logging)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("braid: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause shown once even when a message already quotes it.
pub(crate) fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

async fn dispatch(command: Command, mut logging: log::Logging) -> Result<ExitCode> {
    match command {
        Command::Sim {
            scenario,
            serve,
            for_secs,
            report_json,
        } => sim(scenario, serve, for_secs, report_json).await,
        Command::Exposure {
            relays,
            exits,
            adversary,
            clients,
            streams,
            strands,
            rebuilds,
            seed,
            report_json,
        } => {
            let params = exposure::ExposureParams {
                relays,
                exits,
                adversary,
                clients,
                streams,
                strands,
                rebuilds,
                seed,
            };
            let report = exposure::run(&params)?;
            println!("{}", report.table());
            if let Some(path) = report_json {
                std::fs::write(&path, serde_json::to_string_pretty(&report)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Relay { config } => relay(config, &mut logging).await,
        Command::Proxy { config } => proxy(config, &mut logging).await,
        Command::Registry { config } => registry(config, &mut logging).await,
        Command::Check { config, role } => Ok(check::check(&config, role.as_deref())),
        Command::Id { data_dir } => {
            println!("{}", braid_node::keys::node_id(&data_dir)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Directory { out, descriptors } => directory(out, descriptors),
        Command::Status {
            data_dir,
            api,
            token_file,
            json,
        } => status(data_dir, api, token_file, json).await,
        Command::Completions { shell } => Ok(manual::completions(shell)),
        Command::Man { out_dir } => manual::man(out_dir.as_deref()),
    }
}
