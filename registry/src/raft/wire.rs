//! The messages inside `/braid/raft/1` frames: one request and one answer per stream, as
//! postcard (a compact, non-self-describing serde format: byte vectors cost their length plus a
//! varint, field names cost nothing).
//!
//! The sender of a request is a group member: a leader or candidate (append, vote, snapshot) or
//! a follower forwarding a client's command to the leader. The receiver hands append, vote and
//! snapshot requests to its openraft node and answers with openraft's result; it proposes a
//! forwarded command if it leads, and otherwise says who leads. Nothing here does I/O.

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::types::{AppliedWire, TypeConfig};

/// A request, sent as the body of a `Request` frame.
// Requests are built, encoded and dropped one at a time: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    /// From the leader: replicate entries (or a heartbeat). Answer: [`RpcResponse::Append`].
    Append(AppendEntriesRequest<TypeConfig>),
    /// From a candidate: ask for a vote. Answer: [`RpcResponse::Vote`].
    Vote(VoteRequest<u64>),
    /// From the leader: one chunk of a snapshot. Answer: [`RpcResponse::Snapshot`].
    Snapshot(InstallSnapshotRequest<TypeConfig>),
    /// From a follower: propose this encoded command. Answer: [`RpcResponse::Forward`].
    Forward(Vec<u8>),
}

/// An answer, sent as the body of a `Response` frame.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    /// openraft's answer to an append.
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    /// openraft's answer to a vote request.
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    /// openraft's answer to a snapshot chunk.
    Snapshot(Result<InstallSnapshotResponse<u64>, RaftError<u64, InstallSnapshotError>>),
    /// The answer to a forwarded command.
    Forward(ForwardResponse),
}

/// What the receiver of a forwarded command did with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardResponse {
    /// It led, proposed the command, and the entry was committed and applied at this log
    /// position with this outcome.
    Applied {
        /// The entry's term.
        term: u64,
        /// The entry's index.
        index: u64,
        /// What applying it did.
        outcome: AppliedWire,
    },
    /// It does not lead; `leader` is who it believes does (if anyone). The sender retries there.
    NotLeader {
        /// The believed leader's node id.
        leader: Option<u64>,
    },
    /// The command was not proposed or its outcome is unknown (bad bytes, shutting down,
    /// timeout); the reason is for logs.
    Failed {
        /// Why.
        reason: String,
    },
}

/// Why a body is not a message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("raft message does not decode: {reason}")]
pub struct BodyError {
    /// postcard's reason, or "trailing bytes".
    pub reason: String,
}

/// Encodes a message. Fails only if serde refuses a value (none of ours do).
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, BodyError> {
    postcard::to_allocvec(message).map_err(|e| BodyError {
        reason: e.to_string(),
    })
}

/// Decodes a whole body as one message; trailing bytes are an error.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    let (message, rest) = postcard::take_from_bytes(body).map_err(|e| BodyError {
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(BodyError {
            reason: format!("{} trailing bytes after the message", rest.len()),
        });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, Vote};

    use crate::raft::types::EntryData;

    #[test]
    fn requests_round_trip() {
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(3, 0), 9),
            payload: EntryPayload::Normal(EntryData(vec![1, 2, 3])),
        };
        let append = RpcRequest::Append(AppendEntriesRequest {
            vote: Vote::new_committed(3, 1),
            prev_log_id: Some(LogId::new(CommittedLeaderId::new(3, 0), 8)),
            entries: vec![entry],
            leader_commit: None,
        });
        let bytes = encode(&append).unwrap();
        let back: RpcRequest = decode(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{append:?}"));
        let forward = RpcRequest::Forward(vec![1, 2, 3]);
        // tag 3, length 3, bytes: no per-byte overhead.
        assert_eq!(encode(&forward).unwrap(), vec![3, 3, 1, 2, 3]);
    }

    #[test]
    fn trailing_bytes_and_garbage_are_refused() {
        let mut bytes = encode(&RpcRequest::Forward(vec![7])).unwrap();
        bytes.push(0);
        assert!(decode::<RpcRequest>(&bytes).is_err());
        assert!(decode::<RpcRequest>(&[0xff, 0xff, 0xff]).is_err());
        assert!(decode::<RpcRequest>(&[]).is_err());
    }
}
