//! The sending side of `/braid/raft/1`: openraft's network (append, vote, snapshot chunks) and
//! the forwarded submit, each one request and one answer on a new stream of the node's one
//! transport. It does not accept streams (that is `server`) or decide what to send (openraft).
//!
//! Every exchange (opening the stream included) is bounded by a timeout and every frame by
//! `max_rpc_bytes`. A stream that cannot be opened, or an exchange that got no answer in time
//! (a member that died leaves a connection that takes long to time out), is reported to
//! openraft as `Unreachable`: it backs off before retrying, 500 ms doubling up to
//! [`MAX_BACKOFF`], instead of every heartbeat. Anything else that fails on the way is a
//! network error. Each member's failures are logged here with backoff: the first at warn, then
//! at most once a minute with a count ("raft: member ... unreachable (12 failures in 60 s)"),
//! and the recovery once (openraft's own lines about them are its own).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use braid_transport::{PeerId, StreamProtocol, Transport};
use futures::AsyncWriteExt as _;
use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use tracing::{info, warn};

use crate::repeat::{FailureLog, Report};

use super::frame::Frame;
use super::io::{ReadError, read_frame, write_frame};
use super::types::TypeConfig;
use super::wire::{self, RpcRequest, RpcResponse};

/// The stream protocol of the registry group's RPCs.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/braid/raft/1");

/// Why an exchange with a member gave no answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// No stream could be opened (the member is down or unknown).
    #[error("member {peer} unreachable: {reason}")]
    Unreachable {
        /// The member's peer id.
        peer: PeerId,
        /// The transport's reason.
        reason: String,
    },
    /// The request does not fit a frame.
    #[error("request of {len} bytes is over max_rpc_bytes {max}")]
    TooLarge {
        /// Its encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The target node id is not a configured member.
    #[error("node {id} is not a configured member")]
    UnknownMember {
        /// The node id.
        id: u64,
    },
    /// The member answered with a message of another kind than the request's.
    #[error("node {id} answered a {what} request with another kind")]
    Unexpected {
        /// The node id.
        id: u64,
        /// The request's kind.
        what: &'static str,
    },
    /// The exchange failed after the stream opened (I/O, timeout, a bad or refused answer).
    #[error("exchange with {peer} got no answer within {timeout:?}")]
    Timeout { peer: PeerId, timeout: Duration },
    #[error("exchange with {peer} failed: {reason}")]
    Failed {
        /// The member's peer id.
        peer: PeerId,
        /// What went wrong.
        reason: String,
    },
}

/// What every connection shares: the transport, who the members are, the bounds.
pub(super) struct NetShared {
    /// The node's transport.
    pub transport: Transport,
    /// Member node id to peer id.
    pub peers: HashMap<u64, PeerId>,
    /// The frame body limit.
    pub max_rpc_bytes: usize,
    /// The bound on one exchange other than a snapshot chunk.
    pub rpc_timeout: Duration,
    /// The bound on one snapshot chunk.
    pub snapshot_timeout: Duration,
    /// One failure log per member (keyed by the configured peers only, so bounded by them).
    pub failures: Mutex<HashMap<PeerId, FailureLog>>,
}

/// The longest openraft waits before it tries an unreachable member again.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// How often a member that keeps failing is logged (with a count).
const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

impl NetShared {
    /// Logs a member's failure (`Some`) or success (`None`) with backoff (module docs).
    fn note(&self, peer: PeerId, error: Option<&CallError>) {
        if !self.peers.values().any(|p| *p == peer) {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let log = failures
            .entry(peer)
            .or_insert_with(|| FailureLog::new(FAILURE_LOG_INTERVAL));
        let report = match error {
            Some(_) => log.failure(Instant::now()),
            None => log.success(),
        };
        match (error, report) {
            (Some(e), Report::First) => warn!(%peer, "raft: member unreachable: {e}"),
            (Some(e), Report::Again { count, over }) => warn!(
                %peer,
                "raft: member unreachable ({count} failures in {} s): {e}",
                over.as_secs()
            ),
            (None, Report::Recovered { failures }) => {
                info!(%peer, failures, "raft: member reachable again");
            }
            _ => {}
        }
    }

    /// Sends `request` to `peer` and reads the answer, within `timeout`; logs failures to
    /// reach it with backoff.
    pub(super) async fn call(
        &self,
        peer: PeerId,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, CallError> {
        let result = self.call_once(peer, request, timeout).await;
        match &result {
            Ok(_) => self.note(peer, None),
            Err(e @ (CallError::Unreachable { .. } | CallError::Timeout { .. })) => {
                self.note(peer, Some(e));
            }
            Err(_) => {}
        }
        result
    }

    async fn call_once(
        &self,
        peer: PeerId,
        request: &RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, CallError> {
        let failed = |reason: String| CallError::Failed { peer, reason };
        let body = wire::encode(request).map_err(|e| failed(e.to_string()))?;
        if body.len() > self.max_rpc_bytes {
            return Err(CallError::TooLarge {
                len: body.len(),
                max: self.max_rpc_bytes,
            });
        }
        let exchange = async {
            let mut stream = self
                .transport
                .open_stream(peer, PROTOCOL)
                .await
                .map_err(|e| CallError::Unreachable {
                    peer,
                    reason: e.to_string(),
                })?;
            write_frame(&mut stream, &Frame::Request(body))
                .await
                .map_err(|e| failed(format!("sending: {e}")))?;
            let answer =
                read_frame(&mut stream, self.max_rpc_bytes)
                    .await
                    .map_err(|e| match e {
                        ReadError::Io(e) => failed(format!("reading the answer: {e}")),
                        ReadError::Frame(e) => failed(format!("bad answer: {e}")),
                    })?;
            // The receiver closes after answering; our side is done too.
            let _ = stream.close().await;
            Ok(answer)
        };
        let answer = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout { peer, timeout })??;
        match answer {
            Frame::Response(body) => wire::decode(&body).map_err(|e| failed(e.to_string())),
            Frame::Error(reason) => Err(failed(format!("refused: {reason}"))),
            Frame::Request(_) => Err(failed("answered with a Request frame".into())),
            Frame::Unknown { kind, .. } => {
                Err(failed(format!("answered with unknown frame kind {kind}")))
            }
        }
    }
}

/// openraft's network factory: one [`Conn`] per target member.
#[derive(Clone)]
pub(super) struct Network {
    shared: Arc<NetShared>,
}

impl Network {
    /// A factory over `shared`.
    pub(super) fn new(shared: Arc<NetShared>) -> Self {
        Self { shared }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Conn {
        Conn {
            shared: Arc::clone(&self.shared),
            target,
            // Members come from the config, not from the membership record's addresses.
            peer: self.shared.peers.get(&target).copied(),
        }
    }
}

/// openraft's client for one target member.
pub(super) struct Conn {
    shared: Arc<NetShared>,
    target: u64,
    peer: Option<PeerId>,
}

type RpcErr<E = openraft::error::Infallible> = RPCError<u64, BasicNode, RaftError<u64, E>>;

impl Conn {
    async fn call<E: std::error::Error>(
        &self,
        request: RpcRequest,
        timeout: Duration,
    ) -> Result<RpcResponse, RpcErr<E>> {
        let Some(peer) = self.peer else {
            let e = CallError::UnknownMember { id: self.target };
            return Err(RPCError::Unreachable(Unreachable::new(&e)));
        };
        let entries = match &request {
            RpcRequest::Append(a) => a.entries.len() as u64,
            _ => 0,
        };
        self.shared
            .call(peer, &request, timeout)
            .await
            .map_err(|e| match e {
                CallError::Unreachable { .. } | CallError::Timeout { .. } => {
                    RPCError::Unreachable(Unreachable::new(&e))
                }
                CallError::TooLarge { .. } if entries > 1 => {
                    RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries / 2))
                }
                _ => RPCError::Network(NetworkError::new(&e)),
            })
    }

    fn unexpected<E: std::error::Error>(&self, what: &'static str) -> RpcErr<E> {
        let e = CallError::Unexpected {
            id: self.target,
            what,
        };
        RPCError::Network(NetworkError::new(&e))
    }

    fn bound(&self, option: &RPCOption, ours: Duration) -> Duration {
        option.hard_ttl().min(ours)
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    /// After an `Unreachable`: 500 ms, doubling up to [`MAX_BACKOFF`] (openraft's default
    /// retried every 500 ms for ever).
    fn backoff(&self) -> openraft::network::Backoff {
        let steps = std::iter::successors(Some(Duration::from_millis(500)), |d| {
            Some((*d * 2).min(MAX_BACKOFF))
        });
        openraft::network::Backoff::new(steps)
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RpcErr> {
        let timeout = self.bound(&option, self.shared.rpc_timeout);
        match self.call(RpcRequest::Append(rpc), timeout).await? {
            RpcResponse::Append(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(self.unexpected("append")),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<u64>, RpcErr<InstallSnapshotError>> {
        let timeout = self.bound(&option, self.shared.snapshot_timeout);
        match self.call(RpcRequest::Snapshot(rpc), timeout).await? {
            RpcResponse::Snapshot(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(self.unexpected("snapshot")),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<u64>,
        option: RPCOption,
    ) -> Result<VoteResponse<u64>, RpcErr> {
        let timeout = self.bound(&option, self.shared.rpc_timeout);
        match self.call(RpcRequest::Vote(rpc), timeout).await? {
            RpcResponse::Vote(r) => r.map_err(|e| RemoteError::new(self.target, e).into()),
            _ => Err(self.unexpected("vote")),
        }
    }
}
