//! The receiving side of `/braid/raft/1`: accepts streams on the node's transport, reads one
//! request, hands it to openraft (or proposes a forwarded command) and answers. It does not
//! send requests (that is `network`).
//!
//! Bounds: streams from peers that are not configured members are refused before anything is
//! read (counted; at most [`MAX_REFUSALS_IN_FLIGHT`] get an `Error` frame at once, the rest are
//! dropped); `max_inbound_per_peer` RPCs served at once per member (further streams are
//! dropped unread, counted as busy); `rpc_timeout` to receive a request; a frame body over
//! `max_rpc_bytes` is refused from its header; a snapshot whose chunks would reach past the
//! largest state image is refused. A request that does not decode gets an `Error` frame naming
//! the problem and changes nothing; the server goes on serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use braid_transport::{IncomingStreams, PeerId, Stream};
use futures::{AsyncWriteExt as _, StreamExt as _};
use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::timeout;
use tracing::debug;

use super::frame::Frame;
use super::io::{ReadError, read_frame, write_frame};
use super::types::{EntryData, TypeConfig};
use super::wire::{self, ForwardResponse, RpcRequest, RpcResponse};
use crate::state::{Command, MAX_COMMAND_LEN};

/// Refusals (to non-members) being written at once; more non-member streams are just dropped.
pub(super) const MAX_REFUSALS_IN_FLIGHT: usize = 4;

/// What the server has seen, for status and tests.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Streams from members given a slot (their request is then read and served).
    pub accepted: AtomicU64,
    /// Requests answered.
    pub served: AtomicU64,
    /// Streams from peers that are not members, refused.
    pub refused_non_member: AtomicU64,
    /// Streams dropped because the member already had `max_inbound_per_peer` RPCs in progress.
    pub busy: AtomicU64,
    /// Requests that were not a valid frame or message (answered with an `Error` frame).
    pub bad_requests: AtomicU64,
}

/// What the server needs.
pub(super) struct ServerShared {
    /// The local openraft node.
    pub raft: Raft<TypeConfig>,
    /// Member peer id to node id (this node excluded).
    pub members: HashMap<PeerId, u64>,
    /// The frame body limit.
    pub max_rpc_bytes: usize,
    /// The bound on reading a request and on an append, vote or forwarded submit.
    pub rpc_timeout: Duration,
    /// The bound on installing a snapshot chunk.
    pub snapshot_timeout: Duration,
    /// The largest state image a snapshot may carry.
    pub max_snapshot_bytes: u64,
    /// RPCs served at once per member.
    pub max_inbound_per_peer: usize,
    /// Counters.
    pub counters: Arc<Counters>,
}

/// Starts serving `incoming` (the node's `/braid/raft/1` streams) in a task; aborting the task
/// stops the server and every RPC in progress.
pub(super) fn spawn(shared: Arc<ServerShared>, mut incoming: IncomingStreams) -> JoinHandle<()> {
    let slots: HashMap<PeerId, Arc<Semaphore>> = shared
        .members
        .keys()
        .map(|p| (*p, Arc::new(Semaphore::new(shared.max_inbound_per_peer))))
        .collect();
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    tokio::spawn(async move {
        let mut handlers = JoinSet::new();
        loop {
            tokio::select! {
                next = incoming.next() => {
                    let Some((peer, stream)) = next else { break };
                    let Some(slot) = slots.get(&peer) else {
                        shared.counters.refused_non_member.fetch_add(1, Ordering::Relaxed);
                        debug!(%peer, "raft: stream from a non-member refused");
                        if let Ok(permit) = Arc::clone(&refusals).try_acquire_owned() {
                            handlers.spawn(refuse(stream, permit));
                        }
                        continue;
                    };
                    match Arc::clone(slot).try_acquire_owned() {
                        Ok(permit) => {
                            shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
                            handlers.spawn(handle(Arc::clone(&shared), peer, stream, permit));
                        }
                        Err(_) => {
                            shared.counters.busy.fetch_add(1, Ordering::Relaxed);
                            debug!(%peer, "raft: too many RPCs from this member; stream dropped");
                        }
                    }
                }
                Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
            }
        }
        debug!("raft server: listener ended");
    })
}

async fn refuse(mut stream: Stream, _permit: OwnedSemaphorePermit) {
    let frame = Frame::Error("not a member of this registry group".into());
    let write = async {
        write_frame(&mut stream, &frame).await?;
        stream.close().await
    };
    let _ = timeout(Duration::from_secs(2), write).await;
}

/// Serves one stream: read the request, answer it, close.
async fn handle(
    shared: Arc<ServerShared>,
    peer: PeerId,
    mut stream: Stream,
    slot: OwnedSemaphorePermit,
) {
    let bad = |reason: String| {
        shared.counters.bad_requests.fetch_add(1, Ordering::Relaxed);
        debug!(%peer, %reason, "raft: bad request");
        Frame::Error(format!("bad request: {reason}"))
    };
    let answer = match timeout(
        shared.rpc_timeout,
        read_frame(&mut stream, shared.max_rpc_bytes),
    )
    .await
    {
        Err(_) => bad(format!("no whole request within {:?}", shared.rpc_timeout)),
        Ok(Err(ReadError::Io(error))) => {
            debug!(%peer, %error, "raft: request not read");
            return;
        }
        Ok(Err(ReadError::Frame(e))) => bad(e.to_string()),
        Ok(Ok(Frame::Request(body))) => match wire::decode::<RpcRequest>(&body) {
            Err(e) => bad(e.to_string()),
            Ok(request) => match serve(&shared, request).await {
                Ok(response) => match wire::encode(&response) {
                    Ok(body) => {
                        shared.counters.served.fetch_add(1, Ordering::Relaxed);
                        Frame::Response(body)
                    }
                    Err(e) => Frame::Error(format!("server error: {e}")),
                },
                Err(refusal) => bad(refusal),
            },
        },
        Ok(Ok(_)) => bad("expected a Request frame".into()),
    };
    let write = async {
        write_frame(&mut stream, &answer).await?;
        // The work is done: free the member's slot before waiting for the close to complete.
        drop(slot);
        stream.close().await
    };
    if let Err(error) = timeout(shared.rpc_timeout, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        debug!(%peer, %error, "raft: answer not delivered");
    }
}

/// Runs one request against the local node. `Err` is a refusal of the request itself.
async fn serve(shared: &ServerShared, request: RpcRequest) -> Result<RpcResponse, String> {
    let late = |what: &str| format!("{what} not done within the server's bound");
    Ok(match request {
        RpcRequest::Append(rpc) => RpcResponse::Append(
            timeout(shared.rpc_timeout, shared.raft.append_entries(rpc))
                .await
                .map_err(|_| late("append"))?,
        ),
        RpcRequest::Vote(rpc) => RpcResponse::Vote(
            timeout(shared.rpc_timeout, shared.raft.vote(rpc))
                .await
                .map_err(|_| late("vote"))?,
        ),
        RpcRequest::Snapshot(rpc) => {
            let end = rpc.offset.saturating_add(rpc.data.len() as u64);
            if end > shared.max_snapshot_bytes {
                return Err(format!(
                    "snapshot chunk reaches byte {end}, past the largest state image ({})",
                    shared.max_snapshot_bytes
                ));
            }
            RpcResponse::Snapshot(
                timeout(shared.snapshot_timeout, shared.raft.install_snapshot(rpc))
                    .await
                    .map_err(|_| late("snapshot chunk"))?,
            )
        }
        RpcRequest::Forward(bytes) => {
            RpcResponse::Forward(propose(&shared.raft, bytes, shared.rpc_timeout).await)
        }
    })
}

/// Proposes an encoded command if this node leads; says who leads otherwise.
pub(super) async fn propose(
    raft: &Raft<TypeConfig>,
    bytes: Vec<u8>,
    bound: Duration,
) -> ForwardResponse {
    if bytes.len() > MAX_COMMAND_LEN {
        return ForwardResponse::Failed {
            reason: format!("command of {} bytes is over {MAX_COMMAND_LEN}", bytes.len()),
        };
    }
    if let Err(e) = Command::decode(&bytes) {
        return ForwardResponse::Failed {
            reason: format!("bad command: {e}"),
        };
    }
    match timeout(bound, raft.client_write(EntryData(bytes))).await {
        Ok(Ok(response)) => ForwardResponse::Applied {
            term: response.log_id.leader_id.term,
            index: response.log_id.index,
            outcome: response.data,
        },
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            ForwardResponse::NotLeader {
                leader: f.leader_id,
            }
        }
        Ok(Err(e)) => ForwardResponse::Failed {
            reason: e.to_string(),
        },
        Err(_) => ForwardResponse::Failed {
            reason: format!("not committed within {bound:?}"),
        },
    }
}
