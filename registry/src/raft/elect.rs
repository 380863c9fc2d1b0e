//! Breaking split votes.
//!
//! openraft 0.9 draws a node's election timeout once, when the node starts, and checks it on a
//! tick of 1.5 heartbeats. Nodes that start together (as a test or a host's init system starts
//! them) share a tick phase, and nodes that drew timeouts in the same tick slot then time out
//! together after every split vote: each votes for itself, term after term, with no leader.
//! `braid`'s end-to-end test saw three fresh registries stuck as candidates for 30 s.
//!
//! Three remedies:
//! - [`stagger`]: a node waits a random time up to one tick before it creates its Raft core, so
//!   its tick phase differs from its peers'.
//! - [`initialize_delay`]: in a pristine group only the member with the lowest id initializes
//!   the group (which starts its election) at once; the others do only if no leader reached
//!   them well after, so the first election has one candidate.
//! - [`spawn_watchdog`]: while no leader is known, the node starts an election itself at a
//!   time drawn afresh each round, between one and two longest election timeouts. An election
//!   openraft's own timer would have started anyway costs nothing; a tie cannot repeat because
//!   the draw does not.

use std::time::Duration;

use openraft::Raft;
use openraft::metrics::WaitError;
use rand::RngExt as _;
use tokio::task::JoinHandle;
use tracing::debug;

use super::{RaftConfig, TypeConfig};

/// openraft's tick is `heartbeat_interval * 3 / 2`.
fn tick(heartbeat_ms: u64) -> Duration {
    Duration::from_millis(heartbeat_ms.saturating_mul(3) / 2)
}

/// Sleeps a random time below one Raft tick (see the module docs).
pub(super) async fn stagger(heartbeat_ms: u64) {
    let tick = tick(heartbeat_ms);
    let wait = rand::rng().random_range(Duration::ZERO..tick.max(Duration::from_millis(1)));
    tokio::time::sleep(wait).await;
}

/// How long a pristine node waits before it initializes the group (which makes it a voter and
/// starts its election at once; a pristine node that has not initialized never calls an
/// election, it only votes). The member with the lowest id goes first, after one tick (so
/// every member started at the same time serves `/braid/raft/1` by then): its election meets
/// no rival, and its first append initializes the others. The others initialize only if no
/// leader reached them within two longest election timeouts (plus a random part up to half
/// the shortest), so a group whose first member is down still forms. Every member
/// initializing at once split the first votes for up to 10 s on a loaded machine.
pub(super) fn initialize_delay(config: &RaftConfig, first: bool) -> Duration {
    let tick = tick(config.heartbeat_ms);
    if first {
        return tick;
    }
    let spread = Duration::from_millis((config.election_min_ms / 2).max(1));
    tick + config.election_max() * 2 + rand::rng().random_range(Duration::ZERO..spread)
}

/// How long a leaderless node waits before it calls an election itself: drawn from
/// `[election_max, 2 * election_max)`, so openraft's own timer (at most `election_max`) has
/// had its turn first.
fn patience(election_max: Duration) -> Duration {
    let max = election_max.max(Duration::from_millis(1));
    rand::rng().random_range(max..max * 2)
}

/// Spawns the watchdog (see the module docs). It ends when the Raft core shuts down.
pub(super) fn spawn_watchdog(raft: Raft<TypeConfig>, election_max: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let leaderless = raft
                .wait(None)
                .metrics(|m| m.current_leader.is_none(), "no leader")
                .await;
            if leaderless.is_err() {
                return;
            }
            let wait = patience(election_max);
            match raft
                .wait(Some(wait))
                .metrics(|m| m.current_leader.is_some(), "a leader")
                .await
            {
                Ok(_) => {}
                Err(WaitError::Timeout(..)) => {
                    debug!(?wait, "raft: no leader for a while; starting an election");
                    if raft.trigger().elect().await.is_err() {
                        return;
                    }
                }
                Err(WaitError::ShuttingDown) => return,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_is_drawn_between_one_and_two_election_timeouts() {
        let max = Duration::from_millis(6000);
        let draws: Vec<Duration> = (0..200).map(|_| patience(max)).collect();
        assert!(draws.iter().all(|d| *d >= max && *d < max * 2));
        // Fresh draws: two nodes that tied once do not tie again.
        let first = draws[0];
        assert!(draws.iter().any(|d| *d != first));
    }

    #[test]
    fn the_tick_is_openrafts() {
        assert_eq!(tick(500), Duration::from_millis(750));
    }
}
