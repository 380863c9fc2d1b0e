//! Path selection: which relays a new circuit goes through, chosen I/O-free from a list of
//! candidates with an RNG passed in.
//!
//! The exit is chosen first (or forced, when strands must share an exit), then the guard, then
//! the middles, each weighted by its bandwidth times its class's weight at that position
//! ([`weights`]: Tor's bandwidth weights, so that when exit bandwidth is scarce exits are kept
//! for the exit position). A relay whose position weight is 0 is never picked there; among the
//! relays allowed at a position, bandwidth-0 relays are picked only when all have bandwidth 0.
//!
//! Rules every path keeps:
//! - all hops distinct; no hop in [`PathConstraints::exclude`] or
//!   [`PathConstraints::siblings`];
//! - no two hops of one declared family ([`Candidate::family`]), and no guard or middle in a
//!   declared family with a sibling (a guard or middle of the stream's other strands). Never
//!   relaxed.
//! - networks ([`SubnetRule`]): no two hops in one IPv4 /16 (IPv6 /32), and no guard or middle
//!   in the network of a sibling. Relaxed only when no path can keep it: first the siblings'
//!   networks are given up, then the rule altogether (a loopback test network, where every
//!   relay is in 127.0/16). [`select_path_with_rule`] says which level held.
//!
//! Each level is tried a bounded number of times ([`ATTEMPTS_PER_LEVEL`]) before the next:
//! hops are drawn one after the other, and a draw can leave a later hop with no allowed relay
//! even when another draw would not.
//!
//! This module does not know relays, descriptors or exit policies: the caller flattens its
//! directory into [`Candidate`]s (flags, declared families as candidate indexes). Entry
//! guards are chosen in [`crate::guards`]; a path's first hop may be forced
//! ([`PathConstraints::guard`]), and then obeys every rule above but the guard position weight.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use rand::{Rng, RngExt};

mod family;
pub mod weights;

pub use family::SubnetRule;
use family::{same_family, same_subnet};
use weights::{Position, PositionWeights};

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests;

/// The default number of hops of a circuit.
pub const DEFAULT_HOPS: usize = 3;
/// The most hops a circuit may have.
pub const MAX_HOPS: usize = 8;

/// One relay the path may use, as the caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The caller's index for this relay; paths are returned as these values.
    pub index: usize,
    /// The relay's first address, for the same-subnet test (/16 for IPv4, /32 for IPv6);
    /// `None` means unknown, which never conflicts.
    pub ip: Option<IpAddr>,
    /// The relay's bandwidth: times its class's position weight, its selection weight.
    pub bandwidth: u64,
    /// Precomputed by the caller: this relay's exit policy may accept the target.
    pub exit_for_target: bool,
    /// The relay may serve as a guard (the Guard flag); a relay without it is never a guard.
    pub guard: bool,
    /// The relay exits in general (the Exit flag), for the position weights; which relay may
    /// exit to this target is `exit_for_target`.
    pub exit: bool,
    /// Indexes of the relays in a declared family with this one (declared both ways); never
    /// on one path with it, nor on a guard or middle hop of a sibling strand.
    pub family: Vec<usize>,
}

/// What the caller requires of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathConstraints {
    /// Number of hops, `1..=MAX_HOPS`; default [`DEFAULT_HOPS`].
    pub hops: usize,
    /// Candidate indexes not to use at any position, e.g. the guards of sibling strands.
    pub exclude: Vec<usize>,
    /// Use this candidate index as the exit (strands of one stream share an exit).
    pub exit: Option<usize>,
    /// The guards and middles of the stream's other strands: never used, and this path's
    /// guard and middles share no declared family (and, when the relays allow, no network)
    /// with them.
    pub siblings: Vec<usize>,
    /// Use this candidate index as the first hop (an entry guard, see [`crate::guards`]).
    pub guard: Option<usize>,
}

impl Default for PathConstraints {
    fn default() -> Self {
        Self {
            hops: DEFAULT_HOPS,
            exclude: Vec::new(),
            exit: None,
            siblings: Vec::new(),
            guard: None,
        }
    }
}

/// Why no path could be chosen.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No usable candidate may exit to the target.
    #[error("no usable relay allows exiting to the target")]
    NoExit,
    /// The forced exit is not a candidate, is excluded, or may not exit to the target.
    #[error("forced exit {index} is unknown, excluded or does not allow the target")]
    ExitNotUsable {
        /// The forced candidate index.
        index: usize,
    },
    /// The forced first hop is not a candidate, is excluded, or is the exit.
    #[error("forced guard {index} is unknown, excluded or the exit")]
    GuardNotUsable {
        /// The forced candidate index.
        index: usize,
    },
    /// Fewer distinct usable relays than hops.
    #[error("path needs {needed} distinct relays, only {available} are usable")]
    NotEnoughRelays {
        /// The number of hops asked for.
        needed: usize,
        /// The number of distinct, non-excluded candidates.
        available: usize,
    },
    /// The hop count is outside `1..=MAX_HOPS`.
    #[error("{0} hops requested, must be 1..={MAX_HOPS}")]
    BadHops(usize),
    /// No relay is allowed at some hop: position weights, declared families and exclusions
    /// leave none, whatever the earlier hops.
    #[error("no usable relay for hop {hop} (position weights, families, exclusions)")]
    NoRelayForHop {
        /// The hop (0 = guard).
        hop: usize,
    },
}

/// How many times each [`SubnetRule`] level is tried before the next.
pub const ATTEMPTS_PER_LEVEL: usize = 16;

/// Chooses a path of `constraints.hops` distinct candidates and returns their `index` values,
/// guard first and exit last.
pub fn select_path<R: Rng + ?Sized>(
    candidates: &[Candidate],
    constraints: &PathConstraints,
    rng: &mut R,
) -> Result<Vec<usize>, PathError> {
    select_path_with_rule(candidates, constraints, rng).map(|(path, _)| path)
}

/// [`select_path`], also saying which level of the network rule the path keeps.
pub fn select_path_with_rule<R: Rng + ?Sized>(
    candidates: &[Candidate],
    constraints: &PathConstraints,
    rng: &mut R,
) -> Result<(Vec<usize>, SubnetRule), PathError> {
    let hops = constraints.hops;
    if !(1..=MAX_HOPS).contains(&hops) {
        return Err(PathError::BadHops(hops));
    }
    // Distinct by index: a duplicated index counts once (its first entry is used).
    let mut by_index: HashMap<usize, &Candidate> = HashMap::with_capacity(candidates.len());
    let distinct: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !by_index.contains_key(&c.index) && by_index.insert(c.index, c).is_none())
        .collect();
    // Weights over the whole directory, not over what this path may use.
    let weights = PositionWeights::of(&distinct);
    let excluded: HashSet<usize> = constraints
        .exclude
        .iter()
        .chain(&constraints.siblings)
        .copied()
        .collect();
    let usable: Vec<&Candidate> = distinct
        .iter()
        .copied()
        .filter(|c| !excluded.contains(&c.index))
        .collect();
    let siblings: Vec<&Candidate> = constraints
        .siblings
        .iter()
        .filter_map(|i| by_index.get(i).copied())
        .collect();

    let guard = match constraints.guard {
        Some(index) => Some(
            *usable
                .iter()
                .find(|c| c.index == index)
                .ok_or(PathError::GuardNotUsable { index })?,
        ),
        None => None,
    };
    if let Some(g) = guard {
        if hops == 1 {
            // A one-hop path: the guard is the exit.
            return match constraints.exit {
                Some(e) if e != g.index => Err(PathError::GuardNotUsable { index: g.index }),
                _ if g.exit_for_target => Ok((vec![g.index], SubnetRule::Strict)),
                _ => Err(PathError::GuardNotUsable { index: g.index }),
            };
        }
        if constraints.exit == Some(g.index) {
            return Err(PathError::GuardNotUsable { index: g.index });
        }
    }
    let exit = match constraints.exit {
        Some(index) => *usable
            .iter()
            .find(|c| c.index == index && c.exit_for_target)
            .ok_or(PathError::ExitNotUsable { index })?,
        None => {
            let exits: Vec<&Candidate> = usable
                .iter()
                .copied()
                .filter(|c| c.exit_for_target && Some(c.index) != constraints.guard)
                .collect();
            pick_weighted(&exits, &weights, Position::Exit, rng).ok_or(PathError::NoExit)?
        }
    };
    if usable.len() < hops {
        return Err(PathError::NotEnoughRelays {
            needed: hops,
            available: usable.len(),
        });
    }
    // Relays that can never be a guard or middle of this path, whatever the other hops.
    let others: Vec<&Candidate> = usable
        .iter()
        .copied()
        .filter(|c| {
            c.index != exit.index
                && !same_family(c, exit)
                && !siblings.iter().any(|s| same_family(c, s))
        })
        .collect();
    if let Some(g) = guard
        && !others.iter().any(|c| c.index == g.index)
    {
        return Err(PathError::GuardNotUsable { index: g.index });
    }
    let mut last_error = PathError::NoRelayForHop { hop: 0 };
    for rule in [
        SubnetRule::Strict,
        SubnetRule::PathOnly,
        SubnetRule::Dropped,
    ] {
        for _ in 0..ATTEMPTS_PER_LEVEL {
            match draw(&others, exit, guard, &siblings, hops, rule, &weights, rng) {
                Ok(path) => return Ok((path, rule)),
                Err(hop) => last_error = PathError::NoRelayForHop { hop },
            }
        }
    }
    Err(last_error)
}

/// One try at the guard (`guard` when forced) and middles under `rule`: the path's indexes (exit last), or the hop
/// at which no relay was allowed.
#[allow(clippy::too_many_arguments)] // one draw of one path: every input is its own
fn draw<R: Rng + ?Sized>(
    others: &[&Candidate],
    exit: &Candidate,
    guard: Option<&Candidate>,
    siblings: &[&Candidate],
    hops: usize,
    rule: SubnetRule,
    weights: &PositionWeights,
    rng: &mut R,
) -> Result<Vec<usize>, usize> {
    let mut path: Vec<&Candidate> = Vec::with_capacity(hops);
    for hop in 0..hops - 1 {
        let position = if hop == 0 {
            Position::Guard
        } else {
            Position::Middle
        };
        let pool: Vec<&Candidate> = others
            .iter()
            .copied()
            .filter(|c| {
                !path.iter().any(|p| p.index == c.index || same_family(c, p))
                    && match rule {
                        SubnetRule::Strict => {
                            !same_subnet(c, exit)
                                && !path.iter().chain(siblings).any(|p| same_subnet(c, p))
                        }
                        SubnetRule::PathOnly => {
                            !same_subnet(c, exit) && !path.iter().any(|p| same_subnet(c, p))
                        }
                        SubnetRule::Dropped => true,
                    }
            })
            .collect();
        let pick = match guard {
            // The forced guard, if this level's rules allow it.
            Some(g) if hop == 0 => *pool.iter().find(|c| c.index == g.index).ok_or(hop)?,
            _ => pick_weighted(&pool, weights, position, rng).ok_or(hop)?,
        };
        path.push(pick);
    }
    path.push(exit);
    Ok(path.into_iter().map(|c| c.index).collect())
}

/// Picks one candidate of `pool` allowed at `position` (weight factor above 0), with
/// probability proportional to its weight there; uniformly among them when every such weight
/// is 0 (bandwidth 0); `None` when none is allowed.
fn pick_weighted<'a, R: Rng + ?Sized>(
    pool: &[&'a Candidate],
    weights: &PositionWeights,
    position: Position,
    rng: &mut R,
) -> Option<&'a Candidate> {
    let mut allowed: Vec<(&Candidate, u128)> = pool
        .iter()
        .filter(|c| weights.factor(position, weights::Class::of(c.guard, c.exit)) > 0)
        .map(|c| (*c, weights.weight(position, c)))
        .collect();
    if allowed.is_empty() && position == Position::Middle {
        // A tiny network whose weights leave no class for the middle (every relay a guard or
        // an exit, as in a three-relay test network): any relay the path's rules allow, by
        // bandwidth, rather than no path at all.
        allowed = pool.iter().map(|c| (*c, u128::from(c.bandwidth))).collect();
    }
    if allowed.is_empty() {
        return None;
    }
    let total: u128 = allowed.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return allowed
            .get(rng.random_range(0..allowed.len()))
            .map(|(c, _)| *c);
    }
    let mut point = rng.random_range(0..total);
    for (candidate, weight) in &allowed {
        if point < *weight {
            return Some(candidate);
        }
        point -= weight;
    }
    // `point < total` = the sum of the weights, so the loop always returns.
    allowed.last().map(|(c, _)| *c)
}
