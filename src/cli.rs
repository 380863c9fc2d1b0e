//! Command-line parsing and the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use braid_directory::Directory;
use braid_node::config::RegistryConfig;
use braid_node::{ProxyConfig, ProxyNode, RegistryNode, RelayConfig, RelayNode, load_config};
use braid_simulations::{Scenario, SimNetwork, exposure, run};
use clap::{Parser, Subcommand};

/// braid: an onion-style privacy relay network.
#[derive(Debug, Parser)]
#[command(name = "braid", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole network in this process and fetch through it (default scenario if none given).
    Sim {
        /// A scenario file (TOML); the embedded default when absent.
        scenario: Option<PathBuf>,
        /// Keep the network up, print `ready socks5=ADDR`, and run until SIGINT/SIGTERM.
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
    let default_level = match cli.command {
        Command::Sim { .. } => "warn",
        _ => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("braid: {}", error_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause shown once even when a message already quotes it.
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text = format!("{text}: {c}");
        }
    }
    text
}

async fn dispatch(command: Command) -> Result<ExitCode> {
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
        Command::Relay { config } => relay(config).await,
        Command::Proxy { config } => proxy(config).await,
        Command::Registry { config } => registry(config).await,
        Command::Id { data_dir } => {
            println!("{}", braid_node::keys::node_id(&data_dir)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Directory { out, descriptors } => directory(out, descriptors),
    }
}

async fn sim(
    scenario: Option<PathBuf>,
    serve: bool,
    for_secs: Option<u64>,
    report_json: Option<PathBuf>,
) -> Result<ExitCode> {
    let s = match &scenario {
        Some(p) => Scenario::load(p)?,
        None => Scenario::default(),
    };
    let net = SimNetwork::start(&s).await?;
    run::wait_ready(&net, Duration::from_secs(30)).await?;
    if serve {
        println!("ready socks5={}", net.socks_addr());
        wait_for_stop(for_secs).await?;
        net.shutdown().await;
        return Ok(ExitCode::SUCCESS);
    }
    let report = run::run_fetches(&s, &net).await;
    println!("{}", report.table());
    if let Some(ready) = net.directory_ready {
        println!(
            "registries: {} (one Raft group); every relay listed in the proxy's verified directory \
             {:.2} s after the relays started",
            net.registries.len(),
            ready.as_secs_f64()
        );
    }
    if let Some(path) = report_json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    net.shutdown().await;
    Ok(if report.all_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn relay(config: PathBuf) -> Result<ExitCode> {
    let cfg: RelayConfig = load_config(&config)?;
    let node = RelayNode::from_config(&cfg).await?;
    if node.advertises() {
        println!(
            "ready descriptor={}",
            cfg.data_dir
                .join(braid_node::relay_node::DESCRIPTOR_FILE)
                .display()
        );
    } else {
        println!(
            "ready descriptor=none ({})",
            node.why_not_advertised()
                .unwrap_or_else(|| "not advertised".into())
        );
    }
    wait_for_stop(None).await?;
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn proxy(config: PathBuf) -> Result<ExitCode> {
    let cfg: ProxyConfig = load_config(&config)?;
    let node = ProxyNode::from_config(&cfg).await?;
    println!("ready socks5={}", node.socks_addr());
    wait_for_stop(None).await?;
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn registry(config: PathBuf) -> Result<ExitCode> {
    let cfg: RegistryConfig = load_config(&config)?;
    let node = RegistryNode::from_config(&cfg).await?;
    println!("ready peer_id={}", node.peer_id());
    // One stdout line whenever the Raft role changes (operators and tests watch these).
    let roles = async {
        let mut last = None;
        loop {
            let s = node.raft_status();
            let role = (s.leader == Some(s.id), s.leader, s.term);
            if last != Some(role) {
                match s.leader {
                    Some(l) if l == s.id => println!("role leader term={}", s.term),
                    Some(l) => println!("role follower leader={l} term={}", s.term),
                    None => println!("role candidate term={}", s.term),
                }
                last = Some(role);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        stop = wait_for_stop(None) => stop?,
        () = roles => {}
    }
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn directory(out: PathBuf, descriptors: Vec<PathBuf>) -> Result<ExitCode> {
    let mut all = Vec::new();
    for p in &descriptors {
        all.push(braid_node::relay_node::read_descriptor(p)?);
    }
    let dir = Directory::new(all)?;
    std::fs::write(&out, dir.to_text()).with_context(|| format!("writing {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for SIGINT, SIGTERM, or `for_secs` seconds.
async fn wait_for_stop(for_secs: Option<u64>) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let limit = async {
        match for_secs {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = limit => {}
    }
    Ok(())
}
