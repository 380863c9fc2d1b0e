//! `braid relay`, `braid proxy`, `braid registry` and `braid directory`: running one node.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use braid_directory::Directory;
use braid_node::config::RegistryConfig;
use braid_node::{ProxyConfig, ProxyNode, RegistryNode, RelayConfig, RelayNode, load_config};

use super::stop::wait_for_stop;

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

/// A peer id as operators recognise it: its last 8 characters after an ellipsis
/// (`…Lv9NqnY4`), the part that differs between peers (every Ed25519 id starts `12D3KooW`).
fn short_peer(peer: &impl std::fmt::Display) -> String {
    let text = peer.to_string();
    let tail = text.len().saturating_sub(8);
    format!("…{}", text.get(tail..).unwrap_or(&text))
}

/// `time` as RFC 3339 in UTC with milliseconds (`2026-12-07T21:04:05.123Z`).
fn rfc3339_utc(time: std::time::SystemTime) -> String {
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339_utc;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // 2026-12-07T21:04:05.123Z, and a leap day.
        let t = UNIX_EPOCH + Duration::from_millis(1_796_677_445_123);
        assert_eq!(rfc3339_utc(t), "2026-12-07T21:04:05.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339_utc(leap), "2000-02-29T00:00:00.000Z");
    }
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
