//! `braid relay`, `braid proxy`, `braid registry` and `braid directory`: running one node.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use braid_directory::Directory;
use braid_node::config::RegistryConfig;
use braid_node::{ProxyConfig, ProxyNode, RegistryNode, RelayConfig, RelayNode, load_config};

use super::stop::wait_for_stop;
use role_line::{rfc3339_utc, short_peer};

mod role_line;

pub(crate) async fn relay(config: PathBuf) -> Result<ExitCode> {
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

pub(crate) async fn proxy(config: PathBuf) -> Result<ExitCode> {
    let cfg: ProxyConfig = load_config(&config)?;
    let node = ProxyNode::from_config(&cfg).await?;
    // The port is bound and answers (with a SOCKS failure until circuits can be built);
    // `ready` only once they can, what it waits for is logged meanwhile.
    tokio::select! {
        stop = wait_for_stop(None) => {
            stop?;
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
    wait_for_stop(None).await?;
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn registry(config: PathBuf) -> Result<ExitCode> {
    let cfg: RegistryConfig = load_config(&config)?;
    let node = RegistryNode::from_config(&cfg).await?;
    println!("ready peer_id={}", node.peer_id());
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
    tokio::select! {
        stop = wait_for_stop(None) => stop?,
        () = roles => {}
    }
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
