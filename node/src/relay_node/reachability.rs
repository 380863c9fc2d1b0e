//! What a relay advertises, and the reachability self-test that decides it.
//!
//! With `reachability_peers` configured, the relay asks those nodes (in order) to dial back the
//! addresses it would advertise (`/braid/dialback/1`, see `braid_transport::dialback`). The
//! first answer that confirms at least one address decides; an answer that confirms nothing, or
//! no answer, makes the relay ask the next peer. Only confirmed addresses go into the
//! descriptor; with none, no descriptor is written. The test is repeated every
//! `reachability_interval_secs`: on loss the descriptor file is removed, on recovery (or when
//! the confirmed set changes) it is signed again and written. A round in which no peer answers
//! changes nothing but the first (nothing is advertised before a confirmation). Every change
//! is logged as one `reachability: ...` line.
//!
//! The decisions (`judge`, `next_step`) are plain functions; `Monitor` does the asking and
//! applies them to the `Advert`. This module does not serve dial-backs (the relay's
//! `DialbackServer` does).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use braid_transport::dialback::{self, Verdict};
use braid_transport::{Multiaddr, PeerId, Transport};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::advert::{Advert, Status, remove_descriptor_file, write_descriptor_file};
use crate::config::RelayConfig;
use crate::error::NodeError;

/// Bound on one round of asking (all peers together), so a long list of silent peers cannot
/// hold up the relay's start.
const ROUND_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the relay is not advertised after a failed self-test (for `braid relay`'s ready line).
const NOT_CONFIRMED: &str = "reachability not confirmed; see the reachability log line";

/// Parses one `reachability_peers` entry: `/ip4|ip6/<ip>/udp/<port>/quic-v1/p2p/<peer id>` or
/// `/ip4|ip6/<ip>/tcp/<port>/p2p/<peer id>`. Returns the peer id and the whole address.
pub fn reachability_peer(text: &str) -> Result<(PeerId, Multiaddr), String> {
    let (dial, id) = text
        .rsplit_once("/p2p/")
        .ok_or("must end in /p2p/<peer id>")?;
    let peer: PeerId = id.parse().map_err(|_| format!("{id:?} is not a peer id"))?;
    let parts: Vec<&str> = dial.split('/').collect();
    let (ip_ok, port) = match parts.as_slice() {
        ["", "ip4", ip, "tcp", port] | ["", "ip4", ip, "udp", port, "quic-v1"] => {
            (ip.parse::<Ipv4Addr>().is_ok(), port)
        }
        ["", "ip6", ip, "tcp", port] | ["", "ip6", ip, "udp", port, "quic-v1"] => {
            (ip.parse::<Ipv6Addr>().is_ok(), port)
        }
        _ => (false, &""),
    };
    if !ip_ok || port.parse::<u16>().is_err() {
        return Err(
            "expected /ip4|ip6/<ip>/udp/<port>/quic-v1/p2p/<peer id> or /ip4|ip6/<ip>/tcp/<port>/p2p/<peer id>"
                .into(),
        );
    }
    let address = text.parse().map_err(|e| format!("not a multiaddr: {e}"))?;
    Ok((peer, address))
}

/// Decides what to advertise at start (see the module doc), writes or removes `path`, and
/// returns the periodic re-test task when `reachability_peers` is set.
pub(crate) async fn publish(
    advert: &Arc<Advert>,
    cfg: &RelayConfig,
    transport: &Transport,
    path: PathBuf,
) -> Result<Option<JoinHandle<()>>, NodeError> {
    let Some(descriptor) = advert.advertised() else {
        // UPnP failed; its own log line said so.
        remove_descriptor_file(&path)?;
        return Ok(None);
    };
    let claimed = advert.claimed();
    if cfg.reachability_peers.is_empty() {
        info!(
            "reachability: not tested (no reachability_peers configured); advertising {} untested",
            claimed.join(", ")
        );
        write_descriptor_file(&path, &descriptor)?;
        return Ok(None);
    }
    let peers = cfg
        .reachability_peers
        .iter()
        .map(|text| reachability_peer(text).map_err(|why| config_error(text, why)))
        .collect::<Result<Vec<_>, _>>()?;
    let claimed = claimed
        .iter()
        .map(|text| {
            text.parse::<Multiaddr>()
                .map(|a| (text.clone(), a))
                .map_err(|e| NodeError::ConfigValue {
                    path: PathBuf::from("<built-in>"),
                    key: "advertise",
                    reason: format!("{text:?} is not a multiaddr: {e}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Nothing from an earlier run stays advertised while the first test runs.
    advert.set(Status::NotAdvertised {
        why: "reachability test in progress".into(),
    });
    remove_descriptor_file(&path)?;
    let monitor = Monitor {
        advert: Arc::clone(advert),
        transport: transport.clone(),
        peers,
        claimed,
        path,
        interval: Duration::from_secs(cfg.reachability_interval_secs),
    };
    monitor.round(true).await?;
    Ok(Some(tokio::spawn(monitor.run())))
}

fn config_error(text: &str, why: String) -> NodeError {
    NodeError::ConfigValue {
        path: PathBuf::from("<built-in>"),
        key: "reachability_peers",
        reason: format!("{text:?}: {why}"),
    }
}

/// What one round found out about the claimed addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// A peer confirmed these addresses (in claim order); `failed` says why the others were not.
    Confirmed {
        by: PeerId,
        confirmed: Vec<String>,
        failed: Vec<String>,
    },
    /// Peers answered but confirmed nothing; why, per address (from the first answer).
    NotConfirmed { failed: Vec<String> },
    /// No peer answered; why, per peer.
    NoAnswer { failures: Vec<String> },
}

/// Combines the answers of one round (in the order the peers were asked).
pub(crate) fn judge(
    claimed: &[String],
    answers: &[(PeerId, Vec<Verdict>)],
    failures: Vec<String>,
) -> Finding {
    let describe = |verdicts: &[Verdict]| -> (Vec<String>, Vec<String>) {
        let mut confirmed = Vec::new();
        let mut failed = Vec::new();
        for (address, verdict) in claimed.iter().zip(verdicts) {
            if verdict.is_reachable() {
                confirmed.push(address.clone());
            } else {
                failed.push(format!("addr {address}: {verdict}"));
            }
        }
        (confirmed, failed)
    };
    if let Some((by, verdicts)) = answers
        .iter()
        .find(|(_, verdicts)| verdicts.iter().any(Verdict::is_reachable))
    {
        let (confirmed, failed) = describe(verdicts);
        return Finding::Confirmed {
            by: *by,
            confirmed,
            failed,
        };
    }
    match answers.first() {
        Some((_, verdicts)) => Finding::NotConfirmed {
            failed: describe(verdicts).1,
        },
        None => Finding::NoAnswer { failures },
    }
}

/// What to do with the descriptor file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// Sign a descriptor with these addresses and write it.
    Write(Vec<String>),
    /// Remove the file; not advertised.
    Remove,
    /// Leave everything as it is.
    Keep,
}

/// How loud a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Debug,
    Info,
    Warn,
}

/// The next step and its log line, given what is advertised now (`None`: nothing) and whether
/// this is the first round (which must leave no stale file behind).
pub(crate) fn next_step(
    advertised: Option<&[String]>,
    first: bool,
    finding: &Finding,
) -> (Step, Level, String) {
    let confirmed_line = |by: &PeerId, confirmed: &[String], failed: &[String]| {
        let mut line = format!("confirmed by {by}: {}", confirmed.join(", "));
        if !failed.is_empty() {
            line += &format!(" (not confirmed: {})", failed.join("; "));
        }
        line
    };
    match (finding, advertised, first) {
        (
            Finding::Confirmed {
                by,
                confirmed,
                failed,
            },
            _,
            true,
        ) => {
            let only = if failed.is_empty() { "" } else { " those only" };
            (
                Step::Write(confirmed.clone()),
                Level::Info,
                format!(
                    "reachability: {}; advertising{only}",
                    confirmed_line(by, confirmed, failed)
                ),
            )
        }
        (Finding::Confirmed { by, confirmed, .. }, Some(now), false) if now == confirmed => (
            Step::Keep,
            Level::Debug,
            format!("reachability: still confirmed by {by}"),
        ),
        (
            Finding::Confirmed {
                by,
                confirmed,
                failed,
            },
            Some(_),
            false,
        ) => (
            Step::Write(confirmed.clone()),
            Level::Info,
            format!(
                "reachability: confirmed addresses changed, {} — descriptor rewritten",
                confirmed_line(by, confirmed, failed)
            ),
        ),
        (
            Finding::Confirmed {
                by,
                confirmed,
                failed,
            },
            None,
            false,
        ) => (
            Step::Write(confirmed.clone()),
            Level::Info,
            format!(
                "reachability: recovered, {} — descriptor written, advertising",
                confirmed_line(by, confirmed, failed)
            ),
        ),
        (Finding::NotConfirmed { failed }, _, true) => (
            Step::Remove,
            Level::Warn,
            format!(
                "reachability: not confirmed ({}) — not advertising",
                failed.join("; ")
            ),
        ),
        (Finding::NotConfirmed { failed }, Some(_), false) => (
            Step::Remove,
            Level::Warn,
            format!(
                "reachability: lost ({}) — descriptor removed, not advertising",
                failed.join("; ")
            ),
        ),
        (Finding::NotConfirmed { failed }, None, false) => (
            Step::Keep,
            Level::Debug,
            format!("reachability: still not confirmed ({})", failed.join("; ")),
        ),
        (Finding::NoAnswer { failures }, _, true) => (
            Step::Remove,
            Level::Warn,
            format!(
                "reachability: not confirmed (no reachability peer answered: {}) — not advertising",
                failures.join("; ")
            ),
        ),
        (Finding::NoAnswer { failures }, Some(_), false) => (
            Step::Keep,
            Level::Warn,
            format!(
                "reachability: no reachability peer answered ({}); still advertising the last confirmed addresses",
                failures.join("; ")
            ),
        ),
        (Finding::NoAnswer { failures }, None, false) => (
            Step::Keep,
            Level::Debug,
            format!(
                "reachability: no reachability peer answered ({}); still not advertising",
                failures.join("; ")
            ),
        ),
    }
}

/// Asks the peers, applies the step, and repeats every interval.
struct Monitor {
    advert: Arc<Advert>,
    transport: Transport,
    peers: Vec<(PeerId, Multiaddr)>,
    /// The claimed addresses as written in the descriptor, and parsed.
    claimed: Vec<(String, Multiaddr)>,
    path: PathBuf,
    interval: Duration,
}

impl Monitor {
    async fn run(self) {
        loop {
            tokio::time::sleep(self.interval).await;
            if let Err(error) = self.round(false).await {
                warn!(%error, "reachability: could not update the descriptor file");
            }
        }
    }

    /// One self-test and its consequence.
    async fn round(&self, first: bool) -> Result<(), NodeError> {
        let finding = self.ask().await;
        let advertised = self
            .advert
            .advertised()
            .map(|d| d.descriptor().addresses.clone());
        let (step, level, line) = next_step(advertised.as_deref(), first, &finding);
        match level {
            Level::Debug => debug!("{line}"),
            Level::Info => info!("{line}"),
            Level::Warn => warn!("{line}"),
        }
        match step {
            Step::Keep => {}
            Step::Write(addresses) => {
                let descriptor = self.advert.sign_with(addresses)?;
                write_descriptor_file(&self.path, &descriptor)?;
                self.advert.set(Status::Advertised {
                    descriptor: Box::new(descriptor),
                });
            }
            Step::Remove => {
                self.advert.set(Status::NotAdvertised {
                    why: NOT_CONFIRMED.into(),
                });
                remove_descriptor_file(&self.path)?;
            }
        }
        Ok(())
    }

    /// Asks the peers in order until one confirms something (bounded by `ROUND_TIMEOUT`).
    async fn ask(&self) -> Finding {
        let deadline = Instant::now() + ROUND_TIMEOUT;
        let addresses: Vec<Multiaddr> = self.claimed.iter().map(|(_, a)| a.clone()).collect();
        let mut answers = Vec::new();
        let mut failures = Vec::new();
        for (peer, address) in &self.peers {
            if *peer == self.transport.peer_id() {
                failures.push(format!("{peer}: that is this relay itself"));
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                failures.push(format!("{peer}: not asked, {ROUND_TIMEOUT:?} used up"));
                continue;
            }
            if let Err(error) = self
                .transport
                .add_addresses(*peer, vec![address.clone()])
                .await
            {
                failures.push(format!("{peer}: {error}"));
                continue;
            }
            let timeout = dialback::DEFAULT_REQUEST_TIMEOUT.min(left);
            match dialback::request_dialback(&self.transport, *peer, addresses.clone(), timeout)
                .await
            {
                Ok(verdicts) => {
                    let confirmed = verdicts.iter().any(Verdict::is_reachable);
                    answers.push((*peer, verdicts));
                    if confirmed {
                        break;
                    }
                }
                Err(error) => failures.push(error.to_string()),
            }
        }
        let claimed: Vec<String> = self.claimed.iter().map(|(t, _)| t.clone()).collect();
        judge(&claimed, &answers, failures)
    }
}

#[cfg(test)]
mod tests;
