//! The openraft type configuration of the registry group and the small conversions between
//! openraft's types and the store's: log ids, the entry payload, and the apply outcome.
//!
//! Log ids map one to one because the crate builds openraft with `single-term-leader` (standard
//! Raft: one leader per term), so a committed log id is `(term, index)` exactly like
//! [`state::LogId`](crate::state::LogId). Nothing here does I/O.

use std::io::Cursor;

use openraft::{BasicNode, CommittedLeaderId, Membership};
use serde::{Deserialize, Serialize};

use crate::state::{self, Rejection};
use crate::store::Applied;

openraft::declare_raft_types!(
    /// The registry group's openraft types: entries carry an encoded
    /// [`Command`](crate::state::Command), snapshots are [`StateImage`](crate::state::StateImage)
    /// bytes in memory.
    pub TypeConfig:
        D = EntryData,
        R = AppliedWire,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// openraft's log id for this group.
pub(super) type RaftLogId = openraft::LogId<u64>;
/// openraft's membership for this group.
pub(super) type RaftMembership = Membership<u64, BasicNode>;

/// A normal log entry's payload: a [`Command`](crate::state::Command) in its encoded form. It is
/// applied with [`Store::apply_encoded`](crate::store::Store::apply_encoded), so bytes that do
/// not decode are a deterministic rejection, never a failure to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryData(pub Vec<u8>);

/// What applying an entry did, in a form that crosses the wire (a forwarded submit's answer).
/// Mirrors [`Applied`].
#[allow(missing_docs)] // each variant is the `Applied` / `Rejection` variant of the same name
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppliedWire {
    Stored {
        replaced: bool,
    },
    Unchanged,
    Expired {
        removed: u64,
    },
    Membership,
    Blank,
    AlreadyApplied,
    RejectedBadCommand {
        reason: String,
    },
    RejectedExpired {
        expires: u64,
        clock: u64,
    },
    RejectedStale {
        published: u64,
        listed: u64,
    },
    RejectedFull {
        max: u64,
    },
    RejectedTimeOutOfRange {
        value: u64,
    },
    Attested {
        counted: u64,
        clock: u64,
    },
    RejectedUnknownSigner,
    RejectedReplayed {
        now: u64,
        seq: u64,
        last_now: u64,
        last_seq: u64,
    },
}

impl From<&Applied> for AppliedWire {
    fn from(applied: &Applied) -> Self {
        match applied {
            Applied::Stored { replaced } => Self::Stored {
                replaced: *replaced,
            },
            Applied::Unchanged => Self::Unchanged,
            Applied::Expired { removed } => Self::Expired {
                removed: *removed as u64,
            },
            Applied::Membership => Self::Membership,
            Applied::Blank => Self::Blank,
            Applied::AlreadyApplied => Self::AlreadyApplied,
            Applied::Attested { counted, clock } => Self::Attested {
                counted: *counted as u64,
                clock: *clock,
            },
            Applied::Rejected(r) => match r {
                Rejection::BadCommand(e) => Self::RejectedBadCommand {
                    reason: e.to_string(),
                },
                Rejection::Expired { expires, clock } => Self::RejectedExpired {
                    expires: *expires,
                    clock: *clock,
                },
                Rejection::Stale { published, listed } => Self::RejectedStale {
                    published: *published,
                    listed: *listed,
                },
                Rejection::Full { max } => Self::RejectedFull { max: *max as u64 },
                Rejection::TimeOutOfRange { value } => {
                    Self::RejectedTimeOutOfRange { value: *value }
                }
                Rejection::UnknownSigner => Self::RejectedUnknownSigner,
                Rejection::Replayed {
                    now,
                    seq,
                    last_now,
                    last_seq,
                } => Self::RejectedReplayed {
                    now: *now,
                    seq: *seq,
                    last_now: *last_now,
                    last_seq: *last_seq,
                },
            },
        }
    }
}

impl From<AppliedWire> for Applied {
    /// The inverse of `From<&Applied>`, except that a `BadCommand` rejection's inner error comes
    /// back as a fixed `Malformed` error (its text is not kept). Forwarded commands are decoded
    /// by the leader before they are proposed, so the leader never answers one.
    fn from(wire: AppliedWire) -> Self {
        let saturate = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        match wire {
            AppliedWire::Stored { replaced } => Applied::Stored { replaced },
            AppliedWire::Unchanged => Applied::Unchanged,
            AppliedWire::Expired { removed } => Applied::Expired {
                removed: saturate(removed),
            },
            AppliedWire::Membership => Applied::Membership,
            AppliedWire::Blank => Applied::Blank,
            AppliedWire::AlreadyApplied => Applied::AlreadyApplied,
            AppliedWire::RejectedBadCommand { .. } => {
                Applied::Rejected(Rejection::BadCommand(braid_directory::Error::Malformed {
                    what: "the leader found the command undecodable",
                }))
            }
            AppliedWire::RejectedExpired { expires, clock } => {
                Applied::Rejected(Rejection::Expired { expires, clock })
            }
            AppliedWire::RejectedStale { published, listed } => {
                Applied::Rejected(Rejection::Stale { published, listed })
            }
            AppliedWire::RejectedFull { max } => {
                Applied::Rejected(Rejection::Full { max: saturate(max) })
            }
            AppliedWire::RejectedTimeOutOfRange { value } => {
                Applied::Rejected(Rejection::TimeOutOfRange { value })
            }
            AppliedWire::Attested { counted, clock } => Applied::Attested {
                counted: saturate(counted),
                clock,
            },
            AppliedWire::RejectedUnknownSigner => Applied::Rejected(Rejection::UnknownSigner),
            AppliedWire::RejectedReplayed {
                now,
                seq,
                last_now,
                last_seq,
            } => Applied::Rejected(Rejection::Replayed {
                now,
                seq,
                last_now,
                last_seq,
            }),
        }
    }
}

/// openraft's log id to the store's.
pub(super) fn to_state_log_id(id: &RaftLogId) -> state::LogId {
    state::LogId {
        term: id.leader_id.term,
        index: id.index,
    }
}

/// The store's log id to openraft's.
pub(super) fn to_raft_log_id(id: state::LogId) -> RaftLogId {
    openraft::LogId::new(CommittedLeaderId::new(id.term, 0), id.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_map_both_ways() {
        let id = state::LogId { term: 7, index: 42 };
        let raft = to_raft_log_id(id);
        assert_eq!(raft.index, 42);
        assert_eq!(raft.leader_id.term, 7);
        assert_eq!(to_state_log_id(&raft), id);
    }

    #[test]
    fn applied_round_trips_through_the_wire_form() {
        for applied in [
            Applied::Stored { replaced: true },
            Applied::Unchanged,
            Applied::Expired { removed: 3 },
            Applied::Membership,
            Applied::Blank,
            Applied::AlreadyApplied,
            Applied::Rejected(Rejection::Stale {
                published: 1,
                listed: 2,
            }),
            Applied::Rejected(Rejection::Full { max: 10 }),
            Applied::Rejected(Rejection::Expired {
                expires: 5,
                clock: 6,
            }),
            Applied::Rejected(Rejection::TimeOutOfRange { value: u64::MAX }),
            Applied::Attested {
                counted: 3,
                clock: 9,
            },
            Applied::Rejected(Rejection::UnknownSigner),
            Applied::Rejected(Rejection::Replayed {
                now: 1,
                seq: 2,
                last_now: 3,
                last_seq: 4,
            }),
        ] {
            let wire = AppliedWire::from(&applied);
            let bytes = postcard::to_allocvec(&wire).unwrap();
            let back: AppliedWire = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(Applied::from(back), applied);
        }
    }
}
