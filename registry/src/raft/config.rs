//! The registry group's configuration: who the members are and every bound, each default a
//! named function. Checked by [`RaftConfig::validate`] before anything starts.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use braid_transport::{Multiaddr, PeerId};

use super::error::RaftError;
use super::frame::HARD_MAX_BODY;
use crate::state::MAX_COMMAND_LEN;
use crate::store::StoreLimits;

/// The most members a group may have (like the registry set, 1 to 9).
pub const MAX_MEMBERS: usize = 9;

/// A bound on one encoded log entry of this group: a maximal command, or the membership entry
/// of at most [`MAX_MEMBERS`] members whose addresses are at most [`MAX_MEMBER_ADDR_LEN`]
/// bytes, plus the entry's log id and tags.
pub const MAX_ENTRY_LEN: usize = 8 * 1024;

/// The longest member address (a multiaddr's text, `/p2p/..` suffix included).
pub const MAX_MEMBER_ADDR_LEN: usize = 512;

/// Room in a frame for what surrounds entries or a snapshot chunk (vote, log ids, snapshot
/// meta with the membership, tags).
pub const FRAME_OVERHEAD: usize = 16 * 1024;

/// One registry of the group, as every member's config lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftMember {
    /// Its Raft node id (distinct within the group).
    pub id: u64,
    /// Its transport identity: RPCs are accepted only from members' peer ids.
    pub peer: PeerId,
    /// Where to reach it (`/ip4|ip6/../udp/../quic-v1` or `/tcp/..`).
    pub addr: Multiaddr,
}

/// How one registry runs its Raft node.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    /// This registry's node id; must be one of `members`.
    pub id: u64,
    /// Every member of the group, this one included (1 to [`MAX_MEMBERS`]).
    pub members: Vec<RaftMember>,
    /// Where `store.sqlite` (the state) and `raft.sqlite` (log and vote) live.
    pub data_dir: PathBuf,
    /// How often the leader sends heartbeats, in ms; also openraft's timeout for one append.
    pub heartbeat_ms: u64,
    /// Shortest election timeout, in ms (above `heartbeat_ms`).
    pub election_min_ms: u64,
    /// Longest election timeout, in ms (above `election_min_ms`).
    pub election_max_ms: u64,
    /// Log entries applied since the last snapshot that trigger a new one.
    pub snapshot_every: u64,
    /// Entries kept in the log after a snapshot, for followers slightly behind.
    pub logs_kept_after_snapshot: u64,
    /// Bytes of snapshot per install-snapshot RPC.
    pub snapshot_chunk_bytes: usize,
    /// Entries per append RPC.
    pub max_payload_entries: u64,
    /// The largest frame body sent or accepted on `/braid/raft/1`.
    pub max_rpc_bytes: usize,
    /// Bound on one RPC exchange other than a snapshot chunk (vote, forwarded submit, reading a
    /// request), in ms.
    pub rpc_timeout_ms: u64,
    /// Bound on sending and installing one snapshot chunk, in ms.
    pub snapshot_timeout_ms: u64,
    /// RPCs served at once for one member; more streams are dropped unread. Half of it (at
    /// least 1) is how many submits one node forwards to the leader at once (further submits
    /// wait their turn locally), which leaves room for openraft's own RPCs (at most 3 at once
    /// per peer: replication, heartbeat, vote). At least 8.
    pub max_inbound_per_peer: usize,
    /// The state machine's bounds.
    pub store_limits: StoreLimits,
}

/// 500 ms. openraft also uses it as the deadline of each AppendEntries (heartbeat) RPC, so it
/// must cover a WAN round trip on a busy registry: 250 ms timed out on a loaded 2-core machine
/// while ten relays published at once, and the group kept re-electing.
pub fn default_heartbeat_ms() -> u64 {
    500
}
/// 2000 ms (four heartbeats; also openraft's bound on one vote request). openraft 0.9 waits
/// longer than this range says: a follower that knows a leader starts an election only
/// `election_max_ms` (openraft's leader lease) plus its drawn timeout after the last
/// heartbeat, and refuses to vote for others during the lease. With 2000 / 4000 a dead leader
/// is replaced 6 to 8 s after its last heartbeat (plus up to one 750 ms tick); 3000 / 6000
/// gave 9 to 12 s (10.4 and 11.1 s measured). Not lower: on a loaded 2-core machine vote
/// requests took over 1.5 s.
pub fn default_election_min_ms() -> u64 {
    2000
}
/// 4000 ms (also openraft's leader lease, see [`default_election_min_ms`]).
pub fn default_election_max_ms() -> u64 {
    4000
}
/// 1000 entries.
pub fn default_snapshot_every() -> u64 {
    1000
}
/// 1000 entries.
pub fn default_logs_kept_after_snapshot() -> u64 {
    1000
}
/// 1 MiB.
pub fn default_snapshot_chunk_bytes() -> usize {
    1024 * 1024
}
/// 256 entries (at most 2 MiB of entries at [`MAX_ENTRY_LEN`]).
pub fn default_max_payload_entries() -> u64 {
    256
}
/// 4 MiB.
pub fn default_max_rpc_bytes() -> usize {
    4 * 1024 * 1024
}
/// 5000 ms.
pub fn default_rpc_timeout_ms() -> u64 {
    5000
}
/// 30 000 ms: a chunk of a maximal state also verifies up to 10 000 descriptor signatures when
/// it is the last one.
pub fn default_snapshot_timeout_ms() -> u64 {
    30_000
}
/// 16 RPCs per member (so 8 forwarded submits in flight).
pub fn default_max_inbound_per_peer() -> usize {
    16
}

impl RaftConfig {
    /// A config with every bound at its default.
    pub fn new(id: u64, members: Vec<RaftMember>, data_dir: PathBuf) -> Self {
        Self {
            id,
            members,
            data_dir,
            heartbeat_ms: default_heartbeat_ms(),
            election_min_ms: default_election_min_ms(),
            election_max_ms: default_election_max_ms(),
            snapshot_every: default_snapshot_every(),
            logs_kept_after_snapshot: default_logs_kept_after_snapshot(),
            snapshot_chunk_bytes: default_snapshot_chunk_bytes(),
            max_payload_entries: default_max_payload_entries(),
            max_rpc_bytes: default_max_rpc_bytes(),
            rpc_timeout_ms: default_rpc_timeout_ms(),
            snapshot_timeout_ms: default_snapshot_timeout_ms(),
            max_inbound_per_peer: default_max_inbound_per_peer(),
            store_limits: StoreLimits::default(),
        }
    }

    /// The RPC bound as a duration.
    pub fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
    }

    /// The longest election timeout as a duration.
    pub fn election_max(&self) -> Duration {
        Duration::from_millis(self.election_max_ms)
    }

    /// This node's entry in `members`.
    pub fn me(&self) -> Option<&RaftMember> {
        self.members.iter().find(|m| m.id == self.id)
    }

    /// Forwarded submits in flight to the leader at once: half of `max_inbound_per_peer`.
    pub fn max_forwards_in_flight(&self) -> usize {
        (self.max_inbound_per_peer / 2).max(1)
    }

    /// Rejects: a member count outside 1..=[`MAX_MEMBERS`], repeated ids or peer ids, an `id`
    /// not among the members, an address over [`MAX_MEMBER_ADDR_LEN`], `max_inbound_per_peer`
    /// under 8, zero counts, sizes or
    /// timeouts, timeouts out of order (heartbeat < election min < election max), and sizes
    /// that could make a frame exceed `max_rpc_bytes` (a snapshot chunk or a full append must
    /// fit with [`FRAME_OVERHEAD`]; `max_rpc_bytes` at most 64 MiB).
    pub fn validate(&self) -> Result<(), RaftError> {
        let bad = |reason: String| Err(RaftError::Config { reason });
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return bad(format!(
                "{} members; a group has 1 to {MAX_MEMBERS}",
                self.members.len()
            ));
        }
        let mut ids = HashSet::new();
        let mut peers = HashSet::new();
        for m in &self.members {
            if !ids.insert(m.id) {
                return bad(format!("member id {} is listed twice", m.id));
            }
            if !peers.insert(m.peer) {
                return bad(format!("peer {} is listed twice", m.peer));
            }
            if m.addr.to_string().len() + 60 > MAX_MEMBER_ADDR_LEN {
                return bad(format!("member {}: address is too long", m.id));
            }
        }
        if self.me().is_none() {
            return bad(format!("id {} is not one of the members", self.id));
        }
        for (field, value) in [
            ("heartbeat_ms", self.heartbeat_ms),
            ("snapshot_every", self.snapshot_every),
            ("max_payload_entries", self.max_payload_entries),
            ("rpc_timeout_ms", self.rpc_timeout_ms),
            ("snapshot_timeout_ms", self.snapshot_timeout_ms),
        ] {
            if value == 0 {
                return bad(format!("{field} must be greater than zero"));
            }
        }
        if self.snapshot_chunk_bytes == 0 {
            return bad("snapshot_chunk_bytes must be greater than zero".into());
        }
        if self.max_inbound_per_peer < 8 {
            return bad(format!(
                "max_inbound_per_peer {} is under 8: forwarded submits would crowd out Raft's RPCs",
                self.max_inbound_per_peer
            ));
        }
        if !(self.heartbeat_ms < self.election_min_ms
            && self.election_min_ms < self.election_max_ms)
        {
            return bad(format!(
                "need heartbeat_ms < election_min_ms < election_max_ms, got {} / {} / {}",
                self.heartbeat_ms, self.election_min_ms, self.election_max_ms
            ));
        }
        if self.max_rpc_bytes > HARD_MAX_BODY {
            return bad(format!(
                "max_rpc_bytes {} is over the frame limit of {HARD_MAX_BODY}",
                self.max_rpc_bytes
            ));
        }
        let chunk_frame = self.snapshot_chunk_bytes.saturating_add(FRAME_OVERHEAD);
        if chunk_frame > self.max_rpc_bytes {
            return bad(format!(
                "a snapshot chunk of {} bytes plus {FRAME_OVERHEAD} of overhead does not fit \
                 max_rpc_bytes {}",
                self.snapshot_chunk_bytes, self.max_rpc_bytes
            ));
        }
        let entries = usize::try_from(self.max_payload_entries).unwrap_or(usize::MAX);
        let append_frame = entries
            .saturating_mul(MAX_ENTRY_LEN)
            .saturating_add(FRAME_OVERHEAD);
        if append_frame > self.max_rpc_bytes {
            return bad(format!(
                "{entries} entries of up to {MAX_ENTRY_LEN} bytes do not fit max_rpc_bytes {}",
                self.max_rpc_bytes
            ));
        }
        Ok(())
    }
}

// A maximal command must fit the per-entry bound.
const _: () = assert!(MAX_COMMAND_LEN + 64 <= MAX_ENTRY_LEN);
