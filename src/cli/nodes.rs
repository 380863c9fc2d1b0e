//! `braid relay`, `braid proxy`, `braid registry` and `braid directory`: running one node.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use braid_directory::Directory;
use braid_node::config::RegistryConfig;
use braid_node::{ProxyConfig, ProxyNode, RegistryNode, RelayConfig, RelayNode, load_config};

use super::notify;
use super::stop::wait_for_stop;

pub(crate) async fn relay(config: PathBuf) -> Result<ExitCode> {
    let cfg: RelayConfig = load_config(&config)?;
    notify::status("starting");
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
    notify::ready(&format!("ready advertised={}", node.advertises()));
    wait_for_stop(None).await?;
    notify::stopping();
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn proxy(config: PathBuf) -> Result<ExitCode> {
    let cfg: ProxyConfig = load_config(&config)?;
    notify::status("starting");
    let node = ProxyNode::from_config(&cfg).await?;
    if let Some(http) = node.http_connect_addr() {
        println!("http_connect={http}");
    }
    println!("ready socks5={}", node.socks_addr());
    notify::ready(&format!("ready socks5={}", node.socks_addr()));
    wait_for_stop(None).await?;
    notify::stopping();
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn registry(config: PathBuf) -> Result<ExitCode> {
    let cfg: RegistryConfig = load_config(&config)?;
    notify::status("starting");
    let node = RegistryNode::from_config(&cfg).await?;
    println!("ready peer_id={}", node.peer_id());
    notify::ready(&format!("ready peer_id={}", node.peer_id()));
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
