//! `braid relay`, `braid proxy`, `braid registry` and `braid directory`: running one node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use braid_directory::Directory;
use braid_node::config::RegistryConfig;
use braid_node::{ProxyConfig, ProxyNode, RegistryNode, RelayConfig, RelayNode, load_config};

use super::log::Logging;
use super::notify;
use super::stop::Signals;
use role_line::{rfc3339_utc, short_peer};

mod role_line;

/// Re-reads the config at `path` on SIGHUP and applies its log level; `None` (and a warning)
/// when the file does not load, so the node keeps its running config.
fn reload<T>(path: &Path, logging: &mut Logging, level: impl Fn(&T) -> &str) -> Option<T>
where
    T: serde::de::DeserializeOwned + braid_node::config::Validate + serde::Serialize,
{
    let new: T = match load_config(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("reload: {e}; keeping the running config");
            return None;
        }
    };
    if let Some(line) = logging.set_level(level(&new)) {
        tracing::info!("reload: {line}");
    }
    Some(new)
}

/// Logs the keys that changed in a reloaded config and cannot change while running.
fn needs_restart<T: serde::Serialize>(old: &T, new: &T) {
    let keys = braid_node::config::changed_keys(old, new);
    let keys: Vec<_> = keys.iter().filter(|k| *k != "log.level").collect();
    if keys.is_empty() {
        tracing::info!("reload: nothing else changed");
    }
    for key in keys {
        tracing::warn!("reload: {key} changed: needs a restart");
    }
}

pub(crate) async fn relay(config: PathBuf, logging: &mut Logging) -> Result<ExitCode> {
    let mut signals = Signals::install()?;
    let cfg: RelayConfig = load_config(&config)?;
    notify::status("starting");
    let started = RelayNode::from_config_or_stop(&cfg, signals.stopped()).await;
    let Some(node) = started.map_err(|e| e.in_file(&config))? else {
        return Ok(ExitCode::SUCCESS);
    };
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
    notify::ready(&format!("ready advertised={}", node.advertises()));
    let mut running = cfg;
    signals
        .serve(|| {
            let Some(new) = reload(&config, logging, |c: &RelayConfig| &c.log.level) else {
                return;
            };
            let lines = node.reload(&running, &new);
            for line in &lines {
                match line {
                    braid_node::relay_node::ReloadLine::Applied(l) => {
                        tracing::info!("reload: {l}");
                    }
                    braid_node::relay_node::ReloadLine::NeedsRestart(l) => {
                        tracing::warn!("reload: {l}");
                    }
                }
            }
            if lines.is_empty() {
                tracing::info!("reload: nothing else changed");
            }
            running = braid_node::relay_node::merged(&running, &new, &lines);
        })
        .await;
    notify::stopping();
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn proxy(config: PathBuf, logging: &mut Logging) -> Result<ExitCode> {
    let mut signals = Signals::install()?;
    let cfg: ProxyConfig = load_config(&config)?;
    notify::status("starting");
    let node = tokio::select! {
        node = ProxyNode::from_config(&cfg) => node.map_err(|e| e.in_file(&config))?,
        () = signals.stopped() => return Ok(ExitCode::SUCCESS),
    };
    if let Some(http) = node.http_connect_addr() {
        println!("http_connect={http}");
    }
    // The port is bound and answers (with a SOCKS failure until circuits can be built);
    // `ready` only once they can, what it waits for is logged meanwhile.
    tokio::select! {
        () = signals.stopped() => {
            node.shutdown().await;
            return Ok(ExitCode::SUCCESS);
        }
        _ = node.wait_ready(None) => {}
    }
    tracing::info!(
        socks5 = %node.socks_addr(),
        relays = node.manager().relay_count(),
        "ready: circuits can be built"
    );
    println!("ready socks5={}", node.socks_addr());
    notify::ready(&format!("ready socks5={}", node.socks_addr()));
    let mut running = cfg;
    signals
        .serve(|| {
            if let Some(new) = reload(&config, logging, |c: &ProxyConfig| &c.log.level) {
                needs_restart(&running, &new);
                running.log.level = new.log.level;
            }
        })
        .await;
    notify::stopping();
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn registry(config: PathBuf, logging: &mut Logging) -> Result<ExitCode> {
    let mut signals = Signals::install()?;
    let cfg: RegistryConfig = load_config(&config)?;
    notify::status("starting");
    let node = tokio::select! {
        node = RegistryNode::from_config(&cfg) => node.map_err(|e| e.in_file(&config))?,
        () = signals.stopped() => return Ok(ExitCode::SUCCESS),
    };
    println!("ready peer_id={}", node.peer_id());
    notify::ready(&format!("ready peer_id={}", node.peer_id()));
    // One stdout line whenever the Raft role changes (operators and tests watch these), naming
    // the leader by its short peer id, with the time (RFC 3339, UTC) the change was seen.
    let members = node.raft_members();
    let short = |id: u64| members.get(&id).map_or(format!("raft#{id}"), short_peer);
    let roles = async {
        let mut last = None;
        loop {
            let s = node.raft_status();
            let role = (s.leader == Some(s.id), s.leader, s.term);
            if last != Some(role) {
                let at = rfc3339_utc(std::time::SystemTime::now());
                match s.leader {
                    Some(l) if l == s.id => {
                        println!("role leader term={} peer={} at={at}", s.term, short(l));
                    }
                    Some(l) => {
                        println!("role follower leader={} term={} at={at}", short(l), s.term)
                    }
                    None => println!("role candidate term={} at={at}", s.term),
                }
                last = Some(role);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut running = cfg;
    let serve = signals.serve(|| {
        if let Some(new) = reload(&config, logging, |c: &RegistryConfig| &c.log.level) {
            needs_restart(&running, &new);
            running.log.level = new.log.level;
        }
    });
    tokio::select! {
        () = serve => {}
        () = roles => {}
    }
    notify::stopping();
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn directory(out: PathBuf, descriptors: Vec<PathBuf>) -> Result<ExitCode> {
    let mut all = Vec::new();
    for p in &descriptors {
        all.push(braid_node::relay_node::read_descriptor(p)?);
    }
    let dir = Directory::new(all)?;
    std::fs::write(&out, dir.to_text()).with_context(|| format!("writing {}", out.display()))?;
    Ok(ExitCode::SUCCESS)
}
