//! What `/v1/status`, `/v1/circuits` and `/v1/events` answer, and the [`StatusSource`] each
//! role implements to fill it. Fields that do not apply to a role are `null` (`None`).
//!
//! Nothing here carries a stream's target or a client's address: circuits are described by
//! the nicknames of their relays only.

use std::time::Instant;

use serde::{Deserialize, Serialize};

/// A node's status (`GET /v1/status`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Status {
    /// `relay`, `proxy` or `registry`.
    pub role: String,
    /// The crate version.
    pub version: String,
    /// The git commit the binary was built from (`unknown` without git).
    pub commit: String,
    /// The node's peer id (a proxy's is fresh each start).
    pub peer_id: Option<String>,
    /// The relay's nickname.
    pub nickname: Option<String>,
    /// Seconds since the API started (with the node).
    pub uptime_secs: u64,
    /// Relay: `advertised`, or why the relay does not advertise itself now.
    pub reachability: Option<String>,
    /// Relay: the UPnP mapping (`off`, `mapped`, `not mapped`).
    pub upnp: Option<String>,
    /// Relay: the addresses its descriptor advertises now.
    pub advertised_addresses: Vec<String>,
    /// The registries this node talks to and how the last exchange went.
    pub registries: Option<RegistriesInfo>,
    /// The directory in use.
    pub directory: Option<DirectoryInfo>,
    /// Circuits open now (a relay's through it, a proxy's own).
    pub circuits_open: Option<u64>,
    /// Streams open now on a proxy's circuits.
    pub streams_open: Option<u64>,
    /// Bytes so far and the rates of the last sample.
    pub traffic: Sample,
    /// Relay: the accounting budget.
    pub accounting: Option<AccountingInfo>,
    /// Registry: its Raft state.
    pub raft: Option<RaftInfo>,
}

/// The registries a node is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistriesInfo {
    /// How many are configured.
    pub configured: usize,
    /// How many answered last (relay: 1 after a publication was listed, 0 after every
    /// registry failed; proxy: 1 once a verified snapshot arrived); `None`: nothing tried yet.
    pub reached: Option<usize>,
    /// The last exchange in words (`published 12 s ago`, the error).
    pub last: Option<String>,
}

/// The directory a node uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DirectoryInfo {
    /// Relays it lists (a proxy: usable ones).
    pub relays: usize,
    /// Seconds since the snapshot was issued (`None`: no snapshot, e.g. a directory file).
    pub age_secs: Option<u64>,
    /// When the snapshot stops being valid (unix seconds).
    pub valid_until: Option<u64>,
    /// Why circuits are not built now (the directory is stale), if so.
    pub stale: Option<String>,
}

/// A relay's accounting budget.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountingInfo {
    /// Bytes allowed per period.
    pub max_bytes: u64,
    /// Bytes used in this period, when the node reports it.
    pub used_bytes: Option<u64>,
    /// `day` or `month`.
    pub period: String,
    /// When this period ends (unix seconds, midnight UTC).
    pub period_end: u64,
}

/// A registry's Raft state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RaftInfo {
    /// This node's Raft id.
    pub id: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Whether it is the leader.
    pub is_leader: bool,
    /// The current term.
    pub term: u64,
    /// The last log index applied.
    pub last_applied: Option<u64>,
    /// Voting members.
    pub members: usize,
}

/// One open circuit of a proxy (`GET /v1/circuits`): relays by nickname, never a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CircuitInfo {
    /// Relay nicknames, guard first, exit last.
    pub path: Vec<String>,
    /// Circuits in its strand set (1: a circuit carrying whole streams).
    pub strands: usize,
    /// Its strand set's number in this listing, if it is a strand.
    pub strand_set: Option<usize>,
    /// Seconds since it was built.
    pub age_secs: u64,
    /// Bytes (cells of 4096 bytes) it received.
    pub bytes_in: u64,
    /// Streams on it now.
    pub streams: usize,
}

/// One traffic sample (`/v1/events` sends one each second; `/v1/status` has the latest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sample {
    /// Milliseconds since the API started.
    pub t_ms: u64,
    /// Bytes received so far (cells of 4096 bytes; a relay counts each relayed cell).
    pub bytes_in: u64,
    /// Bytes sent so far.
    pub bytes_out: u64,
    /// Bytes per second received over the last interval.
    pub rate_in: f64,
    /// Bytes per second sent over the last interval.
    pub rate_out: f64,
    /// Circuits open at the sample.
    pub circuits_open: Option<u64>,
}

impl Sample {
    /// The sample after `self`, taken at `now` (the API started at `started`).
    pub(crate) fn next(
        &self,
        now: Instant,
        started: Instant,
        bytes_in: u64,
        bytes_out: u64,
        circuits_open: Option<u64>,
    ) -> Sample {
        let t_ms =
            u64::try_from(now.saturating_duration_since(started).as_millis()).unwrap_or(u64::MAX);
        let dt = t_ms.saturating_sub(self.t_ms) as f64 / 1000.0;
        // The first sample has nothing to compare with: its rates are 0.
        let first = *self == Sample::default();
        let rate = |new: u64, old: u64| match dt > 0.0 && !first {
            true => new.saturating_sub(old) as f64 / dt,
            false => 0.0,
        };
        Sample {
            t_ms,
            bytes_in,
            bytes_out,
            rate_in: rate(bytes_in, self.bytes_in),
            rate_out: rate(bytes_out, self.bytes_out),
            circuits_open,
        }
    }
}

/// What a role tells the API. Implementations read counters the node keeps already; every
/// method is cheap (called each second by the sampler and on each request).
pub trait StatusSource: Send + Sync + 'static {
    /// The role's status; the API fills `version`, `commit`, `uptime_secs` and `traffic`.
    fn status(&self) -> Status;
    /// Bytes received and sent so far.
    fn traffic(&self) -> (u64, u64);
    /// Circuits open now, if the role has any.
    fn circuits_open(&self) -> Option<u64>;
    /// The open circuits (`None`: the role builds none, `/v1/circuits` answers 404).
    fn circuits(&self) -> Option<Vec<CircuitInfo>> {
        None
    }
}

#[cfg(test)]
mod tests;
