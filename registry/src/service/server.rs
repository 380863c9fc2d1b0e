//! The `/braid/registry/1` server loop: accepts streams on the node's transport, reads one
//! request per stream, hands it to the role (registry or relay cache), writes one answer.
//!
//! Bounds: `max_requests` streams served at once (more are dropped unread, the peer sees a
//! reset), `max_requests_per_peer` from one peer (a further one is answered `Refused(Busy)`
//! unread), and a deadline for reading, handling and writing each. The header is checked
//! first: a frame over its kind's limit, a kind the role does not take from this peer, or a
//! response kind is answered with a refusal before any body byte is read. Bad input changes
//! nothing and the loop goes on serving other streams. It does not decide anything itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use braid_transport::{PeerId, Stream, Transport};
use futures::{AsyncWriteExt as _, StreamExt as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, timeout, timeout_at};
use tracing::debug;

use super::io::{ReadError, read_body, read_header, write_frame};
#[cfg(feature = "server")]
use super::registry_role::RegistryCore;
use super::relay_cache::RelayCore;
use super::{PROTOCOL, ServerSettings, ServiceError};
use crate::protocol::{ProtocolError, Refusal, RefuseCode, Request, Response};

/// What a role answers: a message, or a shared pre-encoded frame (a snapshot, megabytes, is
/// encoded once and written to every client from the same buffer).
pub(crate) enum Reply {
    /// Encode this.
    Message(Response),
    /// Write these bytes, a whole frame.
    Frame(Arc<Vec<u8>>),
}

impl From<Response> for Reply {
    fn from(response: Response) -> Self {
        Reply::Message(response)
    }
}

/// The roles a server can play: one concrete enum, no trait objects.
#[derive(Clone)]
pub(crate) enum Handler {
    /// A registry node.
    #[cfg(feature = "server")]
    Registry(Arc<RegistryCore>),
    /// A relay serving its cached snapshot.
    Relay(Arc<RelayCore>),
}

impl Handler {
    /// Whether this role takes requests of `kind` from `peer`; decided before the body is read.
    // Only the registry role looks at the peer.
    #[cfg_attr(not(feature = "server"), allow(unused_variables))]
    fn admit(&self, peer: &PeerId, kind: u8) -> Result<(), Refusal> {
        match self {
            #[cfg(feature = "server")]
            Handler::Registry(core) => core.admit(peer, kind),
            Handler::Relay(core) => core.admit(kind),
        }
    }

    #[cfg_attr(not(feature = "server"), allow(unused_variables))]
    async fn handle(&self, peer: PeerId, request: Request) -> Reply {
        match self {
            #[cfg(feature = "server")]
            Handler::Registry(core) => core.handle(peer, request).await,
            Handler::Relay(core) => core.handle(request),
        }
    }
}

/// A running `/braid/registry/1` server. Dropping it (or `stop`) ends it and every request in
/// progress.
#[derive(Debug)]
pub(crate) struct ServiceServer {
    task: JoinHandle<()>,
}

struct Shared {
    handler: Handler,
    settings: ServerSettings,
    /// Requests in progress per peer.
    per_peer: Mutex<HashMap<PeerId, usize>>,
}

impl ServiceServer {
    /// Starts serving on `transport` (which must not already accept `/braid/registry/1`).
    pub(crate) fn start(
        transport: &Transport,
        handler: Handler,
        settings: ServerSettings,
    ) -> Result<Self, ServiceError> {
        settings.validate()?;
        let mut incoming =
            transport
                .accept(PROTOCOL)
                .map_err(|source| ServiceError::Transport {
                    context: "accepting /braid/registry/1",
                    source,
                })?;
        let slots = Arc::new(Semaphore::new(settings.max_requests));
        let shared = Arc::new(Shared {
            handler,
            settings,
            per_peer: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(async move {
            // At most max_requests tasks: each holds a permit.
            let mut handlers = JoinSet::new();
            loop {
                tokio::select! {
                    next = incoming.next() => {
                        let Some((peer, stream)) = next else { break };
                        match Arc::clone(&slots).try_acquire_owned() {
                            Ok(permit) => {
                                handlers.spawn(serve(Arc::clone(&shared), peer, stream, permit));
                            }
                            // Dropping the stream resets it.
                            Err(_) => debug!(%peer, "registry service: too many requests; stream dropped"),
                        }
                    }
                    Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
                }
            }
            debug!("registry service: listener ended");
        });
        Ok(Self { task })
    }

    /// Stops accepting and aborts the requests in progress.
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for ServiceServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one stream: admit, read, handle, answer, close.
async fn serve(shared: Arc<Shared>, peer: PeerId, mut stream: Stream, _slot: OwnedSemaphorePermit) {
    let settings = &shared.settings;
    let reply = match PeerSlot::take(&shared, peer) {
        None => Reply::Message(refused(
            RefuseCode::Busy,
            format!(
                "{} requests from this peer already in progress",
                settings.max_requests_per_peer
            ),
        )),
        Some(_slot) => answer(&shared, peer, &mut stream).await,
    };
    let write = async {
        match &reply {
            Reply::Message(response) => write_frame(&mut stream, &response.encode()).await?,
            Reply::Frame(frame) => write_frame(&mut stream, frame).await?,
        }
        stream.close().await
    };
    match timeout(settings.write_timeout, write).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(%peer, %error, "registry service: answer not delivered"),
        Err(_) => debug!(%peer, "registry service: answer not delivered in time"),
    }
}

/// Reads the request and computes the answer.
async fn answer(shared: &Shared, peer: PeerId, stream: &mut Stream) -> Reply {
    let settings = &shared.settings;
    let deadline = Instant::now() + settings.read_timeout;
    let header = match timeout_at(deadline, read_header(stream)).await {
        Err(_) => return no_request_in_time(settings),
        Ok(Err(ReadError::Io(error))) => return dropped(peer, &error),
        Ok(Err(ReadError::Protocol(error))) => return bad_request(peer, &error),
        Ok(Ok(header)) => header,
    };
    if header.is_response() {
        return refused(RefuseCode::BadRequest, "bad request: a response kind").into();
    }
    if let Err(refusal) = shared.handler.admit(&peer, header.kind) {
        debug!(%peer, kind = header.kind, "registry service: request kind refused unread");
        return Response::Refused(refusal).into();
    }
    let body = match timeout_at(deadline, read_body(stream, header)).await {
        Err(_) => return no_request_in_time(settings),
        Ok(Err(ReadError::Io(error))) => return dropped(peer, &error),
        Ok(Err(ReadError::Protocol(error))) => return bad_request(peer, &error),
        Ok(Ok(body)) => body,
    };
    let request = match Request::decode_body(header, &body) {
        Ok(request) => request,
        Err(error) => return bad_request(peer, &error),
    };
    drop(body);
    match timeout(
        settings.handle_timeout,
        shared.handler.handle(peer, request),
    )
    .await
    {
        Ok(reply) => reply,
        Err(_) => refused(
            RefuseCode::Unavailable,
            format!("not handled within {:?}", settings.handle_timeout),
        )
        .into(),
    }
}

fn refused(code: RefuseCode, text: impl Into<String>) -> Response {
    Response::Refused(Refusal::new(code, text))
}

fn no_request_in_time(settings: &ServerSettings) -> Reply {
    refused(
        RefuseCode::BadRequest,
        format!("no whole request within {:?}", settings.read_timeout),
    )
    .into()
}

/// The stream failed while reading: the answer is still attempted (on a reset stream it fails
/// quietly).
fn dropped(peer: PeerId, error: &std::io::Error) -> Reply {
    debug!(%peer, %error, "registry service: request not read");
    refused(
        RefuseCode::BadRequest,
        "bad request: the stream ended early",
    )
    .into()
}

fn bad_request(peer: PeerId, error: &ProtocolError) -> Reply {
    debug!(%peer, %error, "registry service: bad request");
    let code = match error {
        ProtocolError::BadDescriptor(_) => RefuseCode::BadDescriptor,
        ProtocolError::BadSnapshot(_) => RefuseCode::BadSnapshot,
        _ => RefuseCode::BadRequest,
    };
    refused(code, format!("bad request: {error}")).into()
}

/// One of a peer's request slots, given back when dropped.
struct PeerSlot<'a> {
    shared: &'a Shared,
    peer: PeerId,
}

impl<'a> PeerSlot<'a> {
    fn take(shared: &'a Shared, peer: PeerId) -> Option<Self> {
        let mut map = shared
            .per_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = map.entry(peer).or_insert(0);
        if *count >= shared.settings.max_requests_per_peer {
            return None;
        }
        *count += 1;
        Some(PeerSlot { shared, peer })
    }
}

impl Drop for PeerSlot<'_> {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .per_peer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.peer);
            }
        }
    }
}
