//! The registries' votes in the replicated state, sans-IO: what the store keeps of the
//! attestations it applied (each registry's latest clock, each registry's latest attestation of
//! each relay, when each listed relay became eligible), the rules that turn them into the state
//! clock, the listing and the measured bandwidth, and their encoding in a state image.
//!
//! Rules (the same on every replica, so they are functions of the applied log only):
//!
//! - **State clock**: the `threshold`-th largest of the configured registries' latest attested
//!   clocks (a registry that never attested counts as 0). A majority reached at least that
//!   time, so one registry (or any minority) cannot move it past the honest ones. It never
//!   goes back.
//! - **Eligible** (listed): the relay's current descriptor is fresh at the state clock and a
//!   majority of the configured registries attested a descriptor of it with the same
//!   addresses, each within [`ATTESTATION_WINDOW_SECS`] before the state clock.
//! - **Measured bandwidth**: the low median of the counted attestations' measurements, `None`
//!   unless a majority of the configured registries measured.
//! - **Listed since**: the state clock when the relay last became eligible; dropping out
//!   forgets it.

use braid_codec::{Reader, Writer};
use braid_directory::snapshot::{MAX_REGISTRIES, SnapshotError};

/// How long an attestation counts towards a relay's listing, in seconds of state clock.
/// Registries re-verify listed relays well within it ([`REATTEST_AFTER_SECS`]), so a relay that
/// stops answering dial-backs drops out within about this long.
pub const ATTESTATION_WINDOW_SECS: u64 = 3600;

/// After how many seconds (of state clock) a registry verifies a relay again even if its
/// descriptor did not change.
pub const REATTEST_AFTER_SECS: u64 = 1200;

/// The votes needed out of `n` configured registries: a strict majority.
pub fn threshold(n: usize) -> usize {
    n / 2 + 1
}

/// The state clock the registries' latest attested clocks allow: the `threshold(n)`-th largest
/// of `clocks` (missing registries count as 0).
pub fn attested_clock(clocks: &[u64], n: usize) -> u64 {
    let mut sorted = clocks.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted
        .get(threshold(n).saturating_sub(1))
        .copied()
        .unwrap_or(0)
}

/// The low median of `measured`, if at least `threshold(n)` registries measured.
pub fn median_bandwidth(measured: &[u64], n: usize) -> Option<u64> {
    if measured.is_empty() || measured.len() < threshold(n) {
        return None;
    }
    let mut sorted = measured.to_vec();
    sorted.sort_unstable();
    sorted.get((sorted.len() - 1) / 2).copied()
}

/// A registry's latest attestation position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistryClock {
    /// The registry's key.
    pub registry: [u8; 32],
    /// Its latest attested `now`.
    pub now: u64,
    /// Its latest attested `seq`.
    pub seq: u64,
}

/// A registry's latest attestation of one relay, as the store keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The relay's identity key.
    pub relay: [u8; 32],
    /// The attesting registry's key.
    pub registry: [u8; 32],
    /// Digest of the exact descriptor attested.
    pub digest: [u8; 32],
    /// Digest of that descriptor's addresses ([`super::addresses_digest`]): a newer descriptor
    /// with the same addresses keeps the vote.
    pub addresses: [u8; 32],
    /// The attestation's `now`.
    pub at: u64,
    /// The bandwidth measured, if any.
    pub measured_bw: Option<u64>,
}

/// All the votes a state holds, sorted: clocks by registry, votes by (relay, registry),
/// listed by relay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Votes {
    /// Each registry's latest attestation position.
    pub clocks: Vec<RegistryClock>,
    /// Each registry's latest attestation of each relay.
    pub votes: Vec<Vote>,
    /// Each eligible relay and the state clock when it became eligible.
    pub listed: Vec<([u8; 32], u64)>,
}

impl Votes {
    /// Appends: u8 clock count, each registry (32), now, seq; u32 vote count, each relay (32),
    /// registry (32), digest (32), addresses (32), at, bandwidth flag and value; u32 listed count,
    /// each relay (32), since.
    pub(crate) fn write(&self, w: &mut Writer) {
        // At most MAX_REGISTRIES (9) clocks; votes and listed are bounded by the decode limits.
        w.u8(self.clocks.len() as u8);
        for c in &self.clocks {
            w.bytes(&c.registry);
            w.u64(c.now);
            w.u64(c.seq);
        }
        w.u32(self.votes.len() as u32);
        for v in &self.votes {
            w.bytes(&v.relay);
            w.bytes(&v.registry);
            w.bytes(&v.digest);
            w.bytes(&v.addresses);
            w.u64(v.at);
            match v.measured_bw {
                None => w.u8(0),
                Some(bw) => {
                    w.u8(1);
                    w.u64(bw);
                }
            }
        }
        w.u32(self.listed.len() as u32);
        for (relay, since) in &self.listed {
            w.bytes(relay);
            w.u64(*since);
        }
    }

    /// Reads what [`Votes::write`] wrote: at most [`MAX_REGISTRIES`] clocks,
    /// `MAX_REGISTRIES * max_relays` votes, `max_relays` listed; each list sorted and distinct.
    pub(crate) fn read(r: &mut Reader<'_>, max_relays: usize) -> Result<Self, SnapshotError> {
        let codec = SnapshotError::from_codec;
        let malformed = |what| SnapshotError::Malformed { what };
        let n = usize::from(r.u8("vote clock count").map_err(codec)?);
        if n > MAX_REGISTRIES {
            return Err(malformed("more registry clocks than registries"));
        }
        let mut clocks: Vec<RegistryClock> = Vec::with_capacity(n);
        for _ in 0..n {
            let c = RegistryClock {
                registry: r.array::<32>("vote clock registry").map_err(codec)?,
                now: r.u64("vote clock now").map_err(codec)?,
                seq: r.u64("vote clock seq").map_err(codec)?,
            };
            if clocks.last().is_some_and(|p| p.registry >= c.registry) {
                return Err(malformed("registry clocks are not sorted and distinct"));
            }
            clocks.push(c);
        }
        let n = read_count(r, MAX_REGISTRIES.saturating_mul(max_relays), "votes")?;
        let mut votes: Vec<Vote> = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let relay = r.array::<32>("vote relay").map_err(codec)?;
            let registry = r.array::<32>("vote registry").map_err(codec)?;
            let digest = r.array::<32>("vote digest").map_err(codec)?;
            let addresses = r.array::<32>("vote addresses").map_err(codec)?;
            let at = r.u64("vote time").map_err(codec)?;
            let measured_bw = match r.u8("vote bandwidth flag").map_err(codec)? {
                0 => None,
                1 => Some(r.u64("vote bandwidth").map_err(codec)?),
                _ => return Err(malformed("vote bandwidth flag is neither 0 nor 1")),
            };
            if votes
                .last()
                .is_some_and(|p| (p.relay, p.registry) >= (relay, registry))
            {
                return Err(malformed("votes are not sorted and distinct"));
            }
            votes.push(Vote {
                relay,
                registry,
                digest,
                addresses,
                at,
                measured_bw,
            });
        }
        let n = read_count(r, max_relays, "listed relays")?;
        let mut listed: Vec<([u8; 32], u64)> = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let relay = r.array::<32>("listed relay").map_err(codec)?;
            let since = r.u64("listed since").map_err(codec)?;
            if listed.last().is_some_and(|p| p.0 >= relay) {
                return Err(malformed("listed relays are not sorted and distinct"));
            }
            listed.push((relay, since));
        }
        Ok(Self {
            clocks,
            votes,
            listed,
        })
    }
}

fn read_count(r: &mut Reader<'_>, max: usize, what: &'static str) -> Result<usize, SnapshotError> {
    let n = r.u32(what).map_err(SnapshotError::from_codec)?;
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if n > max {
        return Err(SnapshotError::TooManyDescriptors { count: n, max });
    }
    Ok(n)
}
