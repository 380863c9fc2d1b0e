//! The dial-back server: accepts `/braid/dialback/1` streams on a node's swarm, reads one
//! request, probes each admitted address with a new connection and answers one verdict per
//! address. It does not advertise anything or keep results.
//!
//! Bounds: `max_requests` requests served at once (more streams are dropped unread), one
//! request at a time per peer (a second one gets `Refused` verdicts), `max_concurrent_probes`
//! probes at once across all requests (an address that waits longer than `queue_timeout` for a
//! slot is `Refused` as busy), `request_timeout` to receive the request, `probe_timeout` per
//! probe. A request that does not decode gets an `Error` frame naming the problem; the server
//! goes on serving other streams.

use std::{
    collections::HashSet,
    net::IpAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use futures::{AsyncWriteExt as _, StreamExt as _, future::join_all};
use libp2p::{Multiaddr, PeerId, Stream};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::{JoinHandle, JoinSet},
    time::timeout,
};
use tracing::{debug, trace};

use super::{
    PROTOCOL,
    io::{ReadError, read_frame, write_frame},
    policy::{AdmitRules, admit_with, ip_of},
    probe::probe,
    wire::{Frame, Reason, Request, Response, Verdict},
};
use crate::{Error, Transport};

/// Limits and timeouts of a dial-back server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialbackServerConfig {
    /// Bound on one probe (dial plus handshake). Default 10 s.
    pub probe_timeout: Duration,
    /// Probes running at once, across all requests. Default 8 (one full request).
    pub max_concurrent_probes: usize,
    /// How long an address may wait for a probe slot before it is refused as busy. Default
    /// 10 s.
    pub queue_timeout: Duration,
    /// Requests served at once; further streams are dropped unread. Default 32.
    pub max_requests: usize,
    /// Bound on receiving the request after the stream opened. Default 5 s.
    pub request_timeout: Duration,
    /// Dial addresses of any IP, not only the IP the request came from. Default false; only
    /// for closed test networks (it lets requesters aim the server at third parties).
    pub allow_any_ip: bool,
}

impl Default for DialbackServerConfig {
    fn default() -> Self {
        Self {
            probe_timeout: Duration::from_secs(10),
            max_concurrent_probes: 8,
            queue_timeout: Duration::from_secs(10),
            max_requests: 32,
            request_timeout: Duration::from_secs(5),
            allow_any_ip: false,
        }
    }
}

impl DialbackServerConfig {
    /// Rejects zero counts and zero durations (there is no "0 means unlimited").
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field: &'static str, value: String| Error::Config {
            field,
            value,
            reason: "must be greater than zero",
        };
        for (field, value) in [
            ("dialback.probe_timeout", self.probe_timeout),
            ("dialback.queue_timeout", self.queue_timeout),
            ("dialback.request_timeout", self.request_timeout),
        ] {
            if value.is_zero() {
                return Err(bad(field, format!("{value:?}")));
            }
        }
        for (field, value) in [
            ("dialback.max_concurrent_probes", self.max_concurrent_probes),
            ("dialback.max_requests", self.max_requests),
        ] {
            if value == 0 {
                return Err(bad(field, value.to_string()));
            }
        }
        Ok(())
    }
}

/// A running dial-back server. `stop` (or dropping it) ends it and every request in progress.
#[derive(Debug)]
pub struct DialbackServer {
    task: JoinHandle<()>,
}

struct Shared {
    transport: Transport,
    config: DialbackServerConfig,
    probes: Arc<Semaphore>,
    requests: Arc<Semaphore>,
    /// Peers with a request in progress.
    busy: Mutex<HashSet<PeerId>>,
}

impl DialbackServer {
    /// Starts serving dial-back requests on `transport` (which must not already accept
    /// `/braid/dialback/1`).
    pub fn start(transport: &Transport, config: DialbackServerConfig) -> Result<Self, Error> {
        config.validate()?;
        let mut incoming = transport.accept(PROTOCOL)?;
        let shared = Arc::new(Shared {
            transport: transport.clone(),
            probes: Arc::new(Semaphore::new(config.max_concurrent_probes)),
            requests: Arc::new(Semaphore::new(config.max_requests)),
            busy: Mutex::new(HashSet::new()),
            config,
        });
        let task = tokio::spawn(async move {
            let mut handlers = JoinSet::new();
            loop {
                tokio::select! {
                    next = incoming.next() => {
                        let Some((peer, stream)) = next else { break };
                        match Arc::clone(&shared.requests).try_acquire_owned() {
                            Ok(permit) => {
                                handlers.spawn(handle(Arc::clone(&shared), peer, stream, permit));
                            }
                            // Dropping the stream resets it.
                            Err(_) => debug!(%peer, "dial-back: too many requests; stream dropped"),
                        }
                    }
                    Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
                }
            }
            debug!("dial-back server: listener ended");
        });
        Ok(Self { task })
    }

    /// Stops accepting and aborts the requests in progress (their probes are dropped).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for DialbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one stream: read the request, answer it, close.
async fn handle(
    shared: Arc<Shared>,
    peer: PeerId,
    mut stream: Stream,
    _slot: OwnedSemaphorePermit,
) {
    let request_timeout = shared.config.request_timeout;
    let answer = match timeout(request_timeout, read_frame(&mut stream)).await {
        Err(_) => Frame::Error(Reason::new(format!(
            "no whole request within {request_timeout:?}"
        ))),
        Ok(Err(ReadError::Io(error))) => {
            debug!(%peer, %error, "dial-back: request not read");
            return;
        }
        Ok(Err(ReadError::Wire(error))) => {
            debug!(%peer, %error, "dial-back: bad request");
            Frame::Error(Reason::new(format!("bad request: {error}")))
        }
        Ok(Ok(Frame::Request(request))) => {
            // One verdict per address of a valid request: at most MAX_ADDRESSES, always valid.
            match Response::new(serve(&shared, peer, &request).await) {
                Ok(response) => Frame::Response(response),
                Err(error) => Frame::Error(Reason::new(format!("server error: {error}"))),
            }
        }
        Ok(Ok(other)) => Frame::Error(Reason::new(format!(
            "bad request: expected a Request frame, got {}",
            frame_name(&other)
        ))),
    };
    // The answer is at most a few KiB; a peer that does not read it is cut off.
    let write = async {
        write_frame(&mut stream, &answer).await?;
        stream.close().await
    };
    if let Err(error) = timeout(request_timeout, write)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
    {
        debug!(%peer, %error, "dial-back: answer not delivered");
    }
}

fn frame_name(frame: &Frame) -> String {
    match frame {
        Frame::Request(_) => "Request".into(),
        Frame::Response(_) => "Response".into(),
        Frame::Error(_) => "Error".into(),
        Frame::Unknown(unknown) => format!("unknown kind {}", unknown.kind()),
    }
}

/// One verdict per requested address.
async fn serve(shared: &Shared, peer: PeerId, request: &Request) -> Vec<Verdict> {
    let addresses = request.addresses();
    let verdicts = match PeerSlot::take(&shared.busy, peer) {
        None => vec![
            Verdict::Refused(Reason::new(
                "another dial-back request from this peer is in progress"
            ));
            addresses.len()
        ],
        Some(_slot) => {
            let observed: Vec<IpAddr> = match shared.transport.connected_addresses(peer).await {
                Ok(list) => list.iter().filter_map(ip_of).collect(),
                Err(_) => Vec::new(),
            };
            join_all(
                addresses
                    .iter()
                    .map(|address| serve_one(shared, peer, address, &observed)),
            )
            .await
        }
    };
    for (index, verdict) in verdicts.iter().enumerate() {
        debug!(%peer, index, reachable = verdict.is_reachable(), "dial-back verdict");
        trace!(%peer, index, %verdict, "dial-back verdict detail");
    }
    verdicts
}

async fn serve_one(
    shared: &Shared,
    peer: PeerId,
    address: &Multiaddr,
    observed: &[IpAddr],
) -> Verdict {
    let config = &shared.config;
    // A relay helping a relay: private addresses are fine when the IP matches (a home LAN,
    // loopback test networks); a registry is stricter (`policy::is_public`).
    let rules = AdmitRules {
        require_ip_match: !config.allow_any_ip,
        allow_private: true,
    };
    let address = match admit_with(&peer, address, observed, rules) {
        Ok(address) => address,
        Err(reason) => return Verdict::Refused(reason),
    };
    let Ok(Ok(_permit)) = timeout(
        config.queue_timeout,
        Arc::clone(&shared.probes).acquire_owned(),
    )
    .await
    else {
        return Verdict::Refused(Reason::new(format!(
            "server busy: {} probes already running",
            config.max_concurrent_probes
        )));
    };
    probe(peer, address, config.probe_timeout).await
}

/// A peer's "request in progress" mark, removed when dropped.
struct PeerSlot<'a> {
    busy: &'a Mutex<HashSet<PeerId>>,
    peer: PeerId,
}

impl<'a> PeerSlot<'a> {
    fn take(busy: &'a Mutex<HashSet<PeerId>>, peer: PeerId) -> Option<Self> {
        let fresh = busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(peer);
        fresh.then_some(PeerSlot { busy, peer })
    }
}

impl Drop for PeerSlot<'_> {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.peer);
    }
}
