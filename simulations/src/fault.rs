//! Scenario faults: what a `[[faults]]` entry says, its validation, and firing it against a
//! running [`SimNetwork`].
//!
//! A fault belongs to one fetch group (`group`, 0-based, default 0) and fires `at_ms`
//! milliseconds after that group's first fetch started. If the group finishes first, the fault
//! does not fire and the report says so. Faults are real: a killed relay's transport is shut
//! down, so every circuit through it dies and its neighbours see the connection close.
//!
//! A cut link (`cut = [a, b]`, or `cut = "strand"` for the guard–middle link of an active
//! strand) is real too: each relay's transport blocks the other (`Transport::block`), so their
//! connection closes, every circuit over it dies, and neither can reach the other again for the
//! rest of the run, while both keep serving everyone else.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::SimNetwork;

/// Faults per scenario, at most.
pub const MAX_FAULTS: usize = 64;
/// Latest time a fault may be scheduled, in ms from its group's start (one hour).
pub const MAX_AT_MS: u64 = 3_600_000;
/// How long before firing a `strand-*` fault the strand circuits' cell counters are sampled,
/// to find the strand carrying the most traffic.
pub const ACTIVITY_WINDOW: Duration = Duration::from_millis(100);
/// How long a `strand-*` fault keeps looking for an active strand before it gives up.
pub const FIND_ACTIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// One scenario fault (`[[faults]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Milliseconds after the start of fetch group `group`.
    pub at_ms: u64,
    /// The fetch group (0-based index of `[[fetch]]`) whose start `at_ms` counts from.
    #[serde(default)]
    pub group: usize,
    /// Kill a relay: its index, or `"strand-middle"` / `"strand-guard"` for that relay of a
    /// strand carrying the running stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillTarget>,
    /// Cut the link between two relays: their indexes, or `"strand"` for the first link
    /// (guard to the next hop) of a strand carrying the running stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<CutTarget>,
}

/// Which link a `cut` fault severs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CutTarget {
    /// The link between relays `a` and `b`.
    Relays([usize; 2]),
    /// `"strand"`: the guard's link to the next hop of an active strand.
    Named(String),
}

/// The name of the strand link target.
pub const STRAND_LINK: &str = "strand";

/// The first link of a strand's `path` (guard first, exit last): guard and next hop.
pub fn strand_link(path: &[usize]) -> Option<(usize, usize)> {
    match path {
        [a, b, ..] => Some((*a, *b)),
        _ => None,
    }
}

/// Which relay a `kill` fault stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KillTarget {
    /// Relay `i` (index in the scenario: exits first).
    Relay(usize),
    /// A role on an active strand, by name: see [`StrandRole::parse`].
    Named(String),
}

/// A non-exit position on a strand's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrandRole {
    /// The hop after the guard (the guard itself on a 2-hop path).
    Middle,
    /// The first hop.
    Guard,
}

impl StrandRole {
    /// `"strand-middle"` or `"strand-guard"`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "strand-middle" => Some(StrandRole::Middle),
            "strand-guard" => Some(StrandRole::Guard),
            _ => None,
        }
    }

    /// The relay at this position of `path` (guard first, exit last); never the exit.
    pub fn pick(self, path: &[usize]) -> Option<usize> {
        let non_exit = &path[..path.len().saturating_sub(1)];
        match self {
            StrandRole::Guard => non_exit.first().copied(),
            StrandRole::Middle => non_exit.get(1).or(non_exit.first()).copied(),
        }
    }
}

impl FaultSpec {
    /// Checks the fault against a network of `relays` relays and `groups` fetch groups.
    pub fn validate(&self, relays: usize, groups: usize) -> Result<(), String> {
        if self.at_ms > MAX_AT_MS {
            return Err(format!("fault at_ms {} is over {MAX_AT_MS}", self.at_ms));
        }
        if self.group >= groups.max(1) {
            return Err(format!(
                "fault group {} does not exist ({groups} fetch groups)",
                self.group
            ));
        }
        let relay = |i: usize| {
            if i < relays {
                Ok(())
            } else {
                Err(format!("fault names relay {i}, but relays are 0..{relays}"))
            }
        };
        match (&self.kill, &self.cut) {
            (Some(KillTarget::Relay(i)), None) => relay(*i),
            (Some(KillTarget::Named(name)), None) => match StrandRole::parse(name) {
                Some(_) => Ok(()),
                None => Err(format!(
                    "fault kill = {name:?}: expected a relay index, \"strand-middle\" or \
                     \"strand-guard\""
                )),
            },
            (None, Some(CutTarget::Relays([a, b]))) => {
                relay(*a)?;
                relay(*b)?;
                if a == b {
                    return Err(format!("fault cut = [{a}, {b}]: a link needs two relays"));
                }
                Ok(())
            }
            (None, Some(CutTarget::Named(name))) if name == STRAND_LINK => Ok(()),
            (None, Some(CutTarget::Named(name))) => Err(format!(
                "fault cut = {name:?}: expected [a, b] (two relay indexes) or \"{STRAND_LINK}\""
            )),
            (None, None) => Err("fault needs one of kill or cut".into()),
            (Some(_), Some(_)) => Err("fault has both kill and cut; give one".into()),
        }
    }
}

/// What happened to one scenario fault, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct FaultRecord {
    /// The fetch group it belonged to.
    pub group: usize,
    /// When it was scheduled, ms after the group's start.
    pub at_ms: u64,
    /// The fault as written: `kill 4`, `kill strand-middle`.
    pub fault: String,
    /// The relay it stopped, if it fired (for a cut: one end of the link).
    pub relay: Option<usize>,
    /// For a cut that fired: the other end of the link.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<usize>,
    /// The strand path (relay indexes, guard first, exit last) the relay was chosen from.
    pub strand_path: Option<Vec<usize>>,
    /// When it fired, ms after the group's start; `None`: it did not fire.
    pub fired_at_ms: Option<f64>,
    /// What happened, in words.
    pub outcome: String,
}

impl FaultRecord {
    /// A record for `spec` that has not fired (yet).
    pub fn pending(spec: &FaultSpec, why: &str) -> Self {
        FaultRecord {
            group: spec.group,
            at_ms: spec.at_ms,
            fault: describe(spec),
            relay: None,
            peer: None,
            strand_path: None,
            fired_at_ms: None,
            outcome: why.into(),
        }
    }
}

fn describe(spec: &FaultSpec) -> String {
    match (&spec.kill, &spec.cut) {
        (Some(KillTarget::Relay(i)), _) => format!("kill {i}"),
        (Some(KillTarget::Named(n)), _) => format!("kill {n}"),
        (None, Some(CutTarget::Relays([a, b]))) => format!("cut {a}-{b}"),
        (None, Some(CutTarget::Named(n))) => format!("cut {n}"),
        (None, None) => "none".into(),
    }
}

/// The relay a due fault stops (or the link it cuts), and the strand path it was chosen from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Victim {
    /// The relay's index (for a cut: one end of the link).
    pub relay: usize,
    /// For a cut: the other end of the link.
    pub peer: Option<usize>,
    /// For `strand-*` targets, the strand's path (relay indexes, guard first, exit last).
    pub strand_path: Option<Vec<usize>>,
}

/// Waits until `spec` is due (counting from `start`) and chooses its relay. Cancel-safe: it
/// changes nothing. `Err` says why the fault cannot fire.
pub async fn choose(net: &SimNetwork, spec: &FaultSpec, start: Instant) -> Result<Victim, String> {
    let due = start + Duration::from_millis(spec.at_ms);
    match &spec.kill {
        Some(KillTarget::Relay(i)) => {
            tokio::time::sleep_until(due).await;
            Ok(Victim {
                relay: *i,
                peer: None,
                strand_path: None,
            })
        }
        Some(KillTarget::Named(name)) => {
            let role = StrandRole::parse(name).ok_or_else(|| format!("unknown target {name:?}"))?;
            let sample_at = due.checked_sub(ACTIVITY_WINDOW).unwrap_or(start).max(start);
            tokio::time::sleep_until(sample_at).await;
            let (relay, path) = find_active(net, |p| role.pick(p), due)
                .await
                .ok_or("no strand carried traffic")?;
            Ok(Victim {
                relay,
                peer: None,
                strand_path: Some(path),
            })
        }
        None => match &spec.cut {
            Some(CutTarget::Relays([a, b])) => {
                tokio::time::sleep_until(due).await;
                Ok(Victim {
                    relay: *a,
                    peer: Some(*b),
                    strand_path: None,
                })
            }
            Some(CutTarget::Named(_)) => {
                let sample_at = due.checked_sub(ACTIVITY_WINDOW).unwrap_or(start).max(start);
                tokio::time::sleep_until(sample_at).await;
                let (a, path) = find_active(net, |p| strand_link(p).map(|(a, _)| a), due)
                    .await
                    .ok_or("no strand carried traffic")?;
                let (_, b) = strand_link(&path).ok_or("a strand of one hop has no link")?;
                Ok(Victim {
                    relay: a,
                    peer: Some(b),
                    strand_path: Some(path),
                })
            }
            None => Err("the fault has neither kill nor cut".into()),
        },
    }
}

/// Applies a fault whose relay `choose` picked (or says why it could not). Run it to the end:
/// dropping it half way may leave the relay half shut down.
pub async fn apply(
    net: &SimNetwork,
    spec: &FaultSpec,
    victim: Result<Victim, String>,
    start: Instant,
) -> FaultRecord {
    let mut rec = FaultRecord::pending(spec, "");
    let victim = match victim {
        Ok(v) => v,
        Err(why) => {
            rec.outcome = format!("not fired: {why}");
            return rec;
        }
    };
    let relay = victim.relay;
    let fired_at = start.elapsed().as_secs_f64() * 1e3;
    let (done, what) = match victim.peer {
        Some(peer) => (
            net.cut(relay, peer).await,
            format!("cut link {relay}-{peer}"),
        ),
        None => (net.kill(relay).await, format!("killed relay {relay}")),
    };
    match done {
        Ok(()) => {
            rec.fired_at_ms = Some(fired_at);
            rec.relay = Some(relay);
            rec.peer = victim.peer;
            rec.outcome = match &victim.strand_path {
                Some(p) => format!("{what} on strand {p:?}"),
                None => what,
            };
        }
        Err(e) => rec.outcome = format!("not fired: {e}"),
    }
    rec.strand_path = victim.strand_path;
    rec
}

/// Finds the live relay `pick` chooses on the strand circuit that received the most cells
/// over the last sampling window (the busiest strand of a running stream). Samples from now
/// until `first_pick`, then keeps sampling for up to [`FIND_ACTIVE_TIMEOUT`].
async fn find_active(
    net: &SimNetwork,
    pick: impl Fn(&[usize]) -> Option<usize>,
    first_pick: Instant,
) -> Option<(usize, Vec<usize>)> {
    let give_up = first_pick + FIND_ACTIVE_TIMEOUT;
    let mut pick_at = first_pick;
    loop {
        let before: std::collections::HashMap<usize, u64> = net
            .strand_activity()
            .into_iter()
            .map(|a| (a.circuit, a.cells_in))
            .collect();
        tokio::time::sleep_until(pick_at).await;
        let busiest = net
            .strand_activity()
            .into_iter()
            .filter_map(|a| {
                let moved = a.cells_in.saturating_sub(*before.get(&a.circuit)?);
                let relay = pick(&a.path)?;
                (moved > 0 && !net.is_killed(relay)).then_some((moved, relay, a.path))
            })
            .max_by_key(|(moved, _, _)| *moved);
        if let Some((_, relay, path)) = busiest {
            return Some((relay, path));
        }
        if Instant::now() >= give_up {
            return None;
        }
        pick_at = Instant::now() + ACTIVITY_WINDOW;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill(at_ms: u64, target: KillTarget) -> FaultSpec {
        FaultSpec {
            at_ms,
            group: 0,
            kill: Some(target),
            cut: None,
        }
    }

    #[test]
    fn a_strand_link_is_its_first_hop() {
        assert_eq!(strand_link(&[4, 7, 0]), Some((4, 7)));
        assert_eq!(strand_link(&[4, 0]), Some((4, 0)));
        assert_eq!(strand_link(&[0]), None);
    }

    #[test]
    fn roles_pick_non_exit_relays() {
        assert_eq!(StrandRole::Middle.pick(&[4, 7, 0]), Some(7));
        assert_eq!(StrandRole::Guard.pick(&[4, 7, 0]), Some(4));
        assert_eq!(StrandRole::Middle.pick(&[4, 0]), Some(4));
        assert_eq!(StrandRole::Middle.pick(&[0]), None);
        assert_eq!(StrandRole::Middle.pick(&[]), None);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(kill(300, KillTarget::Relay(9)).validate(10, 1).is_ok());
        let e = kill(300, KillTarget::Relay(10))
            .validate(10, 1)
            .unwrap_err();
        assert!(e.contains("relay 10"), "{e}");
        let e = kill(1, KillTarget::Named("strand-exit".into()))
            .validate(10, 1)
            .unwrap_err();
        assert!(e.contains("strand-exit"), "{e}");
        let mut f = kill(1, KillTarget::Named("strand-middle".into()));
        assert!(f.validate(10, 1).is_ok());
        f.group = 1;
        assert!(f.validate(10, 1).unwrap_err().contains("group 1"));
        let cut = FaultSpec {
            at_ms: 1,
            group: 0,
            kill: None,
            cut: Some(CutTarget::Relays([1, 2])),
        };
        assert!(cut.validate(10, 1).is_ok());
        let e = FaultSpec {
            cut: Some(CutTarget::Relays([1, 12])),
            ..cut.clone()
        }
        .validate(10, 1)
        .unwrap_err();
        assert!(e.contains("relay 12"), "{e}");
        let e = FaultSpec {
            cut: Some(CutTarget::Relays([3, 3])),
            ..cut.clone()
        }
        .validate(10, 1)
        .unwrap_err();
        assert!(e.contains("two relays"), "{e}");
        let named = |n: &str| FaultSpec {
            cut: Some(CutTarget::Named(n.into())),
            ..cut.clone()
        };
        assert!(named("strand").validate(10, 1).is_ok());
        let e = named("strand-exit").validate(10, 1).unwrap_err();
        assert!(e.contains("strand-exit"), "{e}");
        let none = FaultSpec { cut: None, ..cut };
        assert!(none.validate(10, 1).is_err());
        assert!(
            kill(MAX_AT_MS + 1, KillTarget::Relay(0))
                .validate(10, 1)
                .is_err()
        );
    }
}
