//! Path selection: which relays a new circuit goes through, chosen I/O-free from a list of
//! candidates with an RNG passed in.
//!
//! The exit is chosen first, bandwidth-weighted among the candidates whose exit policy may
//! accept the target (or forced, when strands must share an exit). The other hops are then
//! chosen bandwidth-weighted among the remaining candidates, guard first; all hops are distinct.
//! Relays in the same IPv4 /16 (IPv6 /32) are treated as one family, and a path first tries to
//! use each family at most once; only when the candidates cannot satisfy that (as on a loopback
//! test network, where every relay is in 127.0/16) is the rule dropped for the whole path.
//!
//! This module does not know relays, descriptors or exit policies: the caller flattens its
//! directory into [`Candidate`]s. Entry guards are chosen in [`crate::guards`]; a path's first
//! hop may be forced (`PathConstraints::guard`). It has no declared-family handling and
//! no position-specific weights (Tor's Wgg/Wmm/Wee); a relay's weight is its bandwidth. Relays
//! whose bandwidth is 0 are only picked when every remaining relay has bandwidth 0.

use std::collections::HashSet;
use std::net::IpAddr;

use rand::{Rng, RngExt};

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
    /// The relay's bandwidth: its selection weight.
    pub bandwidth: u64,
    /// Precomputed by the caller: this relay's exit policy may accept the target.
    pub exit_for_target: bool,
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
    /// Use this candidate index as the first hop (an entry guard, see [`crate::guards`]).
    pub guard: Option<usize>,
}

impl Default for PathConstraints {
    fn default() -> Self {
        Self {
            hops: DEFAULT_HOPS,
            exclude: Vec::new(),
            exit: None,
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
}

/// Chooses a path of `constraints.hops` distinct candidates and returns their `index` values,
/// guard first and exit last.
pub fn select_path<R: Rng + ?Sized>(
    candidates: &[Candidate],
    constraints: &PathConstraints,
    rng: &mut R,
) -> Result<Vec<usize>, PathError> {
    let hops = constraints.hops;
    if !(1..=MAX_HOPS).contains(&hops) {
        return Err(PathError::BadHops(hops));
    }
    if let Some(guard) = constraints.guard {
        return select_from_guard(candidates, constraints, guard, rng);
    }
    let excluded: HashSet<usize> = constraints.exclude.iter().copied().collect();
    // Distinct by index: a duplicated index counts once (its first entry is used).
    let mut seen = HashSet::new();
    let usable: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| !excluded.contains(&c.index) && seen.insert(c.index))
        .collect();

    let exit = match constraints.exit {
        Some(index) => *usable
            .iter()
            .find(|c| c.index == index && c.exit_for_target)
            .ok_or(PathError::ExitNotUsable { index })?,
        None => {
            let exits: Vec<&Candidate> = usable
                .iter()
                .copied()
                .filter(|c| c.exit_for_target)
                .collect();
            pick_weighted(&exits, rng).ok_or(PathError::NoExit)?
        }
    };
    if usable.len() < hops {
        return Err(PathError::NotEnoughRelays {
            needed: hops,
            available: usable.len(),
        });
    }

    let others: Vec<&Candidate> = usable
        .iter()
        .copied()
        .filter(|c| c.index != exit.index)
        .collect();
    let needed = hops - 1;
    // With the family rule each pick rules out exactly one family (or one relay of unknown
    // address), so greedy picking succeeds exactly when enough families remain: check first,
    // then pick, so that the fallback is taken only when no path satisfies the rule.
    let distinct_families = family_slots(&others, subnet(exit)) >= needed;
    let mut path: Vec<&Candidate> = Vec::with_capacity(hops);
    let mut families: Vec<Subnet> = subnet(exit).into_iter().collect();
    for _ in 0..needed {
        let pool: Vec<&Candidate> = others
            .iter()
            .copied()
            .filter(|c| !path.iter().any(|p| p.index == c.index))
            .filter(|c| !distinct_families || subnet(c).is_none_or(|s| !families.contains(&s)))
            .collect();
        // `others` has at least `needed` entries and the family check above guarantees enough
        // families, so the pool is never empty; the error arm is kept rather than an `expect`.
        let pick = pick_weighted(&pool, rng).ok_or(PathError::NotEnoughRelays {
            needed: hops,
            available: usable.len(),
        })?;
        families.extend(subnet(pick));
        path.push(pick);
    }
    path.push(exit);
    Ok(path.into_iter().map(|c| c.index).collect())
}

/// [`select_path`] with the first hop forced to `guard`: the rest of the path is chosen as
/// usual among the other candidates (out of the guard's /16 or /32 when that leaves a path).
fn select_from_guard<R: Rng + ?Sized>(
    candidates: &[Candidate],
    constraints: &PathConstraints,
    guard: usize,
    rng: &mut R,
) -> Result<Vec<usize>, PathError> {
    let not_usable = PathError::GuardNotUsable { index: guard };
    let g = candidates
        .iter()
        .find(|c| c.index == guard)
        .filter(|_| !constraints.exclude.contains(&guard))
        .ok_or(not_usable.clone())?;
    if constraints.hops == 1 {
        // A one-hop path: the guard is the exit.
        let only = PathConstraints {
            guard: None,
            exit: Some(guard),
            ..constraints.clone()
        };
        return select_path(candidates, &only, rng).map_err(|_| not_usable);
    }
    if constraints.exit == Some(guard) {
        return Err(not_usable);
    }
    let mut rest = PathConstraints {
        hops: constraints.hops - 1,
        guard: None,
        ..constraints.clone()
    };
    rest.exclude.push(guard);
    let family: Vec<usize> = candidates
        .iter()
        .filter(|c| c.index != guard && subnet(c).is_some() && subnet(c) == subnet(g))
        .map(|c| c.index)
        .collect();
    let mut apart = rest.clone();
    apart.exclude.extend(family);
    let tail = match select_path(candidates, &apart, rng) {
        Ok(tail) => tail,
        Err(_) => select_path(candidates, &rest, rng)?,
    };
    Ok(std::iter::once(guard).chain(tail).collect())
}

/// A relay family by address: the IPv4 /16 or the IPv6 /32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subnet {
    V4([u8; 2]),
    V6([u8; 4]),
}

fn subnet(candidate: &Candidate) -> Option<Subnet> {
    // An IPv4-mapped IPv6 address is its IPv4 address.
    Some(match candidate.ip?.to_canonical() {
        IpAddr::V4(ip) => {
            let [a, b, _, _] = ip.octets();
            Subnet::V4([a, b])
        }
        IpAddr::V6(ip) => {
            let [a, b, c, d, ..] = ip.octets();
            Subnet::V6([a, b, c, d])
        }
    })
}

/// How many hops can be chosen from `pool` with no two (nor any and `taken`) in one family:
/// one per distinct family other than `taken`, plus every relay of unknown address.
fn family_slots(pool: &[&Candidate], taken: Option<Subnet>) -> usize {
    let mut families = HashSet::new();
    let mut unknown = 0;
    for candidate in pool {
        match subnet(candidate) {
            Some(s) if Some(s) != taken => {
                families.insert(s);
            }
            Some(_) => {}
            None => unknown += 1,
        }
    }
    families.len() + unknown
}

/// Picks one candidate with probability proportional to its bandwidth; uniformly when every
/// bandwidth is 0; `None` when `pool` is empty.
fn pick_weighted<'a, R: Rng + ?Sized>(
    pool: &[&'a Candidate],
    rng: &mut R,
) -> Option<&'a Candidate> {
    if pool.is_empty() {
        return None;
    }
    let total: u128 = pool.iter().map(|c| u128::from(c.bandwidth)).sum();
    if total == 0 {
        return pool.get(rng.random_range(0..pool.len())).copied();
    }
    let mut point = rng.random_range(0..total);
    for candidate in pool {
        let weight = u128::from(candidate.bandwidth);
        if point < weight {
            return Some(candidate);
        }
        point -= weight;
    }
    // `point < total` = the sum of the weights, so the loop always returns.
    pool.last().copied()
}
