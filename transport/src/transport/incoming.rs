//! `IncomingStreams`: a protocol's inbound streams, taken from libp2p-stream at once by a
//! forwarding task and queued (bounded) until the consumer asks for them.
//!
//! libp2p-stream holds one inbound stream per protocol and resets any that arrives while that
//! one has not been taken, so two circuits opened through a relay in the same instant lost one
//! whenever the consumer's task had not run in between. The forwarder is woken as soon as a
//! stream is handed over and moves it into a queue of [`ACCEPT_QUEUE`]; only when that queue
//! is full (the consumer is not keeping up) does libp2p-stream reset new streams again.

use std::{
    fmt,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
};

use futures::{StreamExt as _, future::poll_fn};
use libp2p::{PeerId, Stream};
use tokio::sync::mpsc;

/// Inbound streams of one protocol queued for the consumer before new ones are reset.
pub const ACCEPT_QUEUE: usize = 64;

type Source = Arc<Mutex<Option<libp2p_stream::IncomingStreams>>>;

/// Inbound streams for one protocol, as `(remote peer, stream)`; a `futures::Stream`. Dropping
/// it stops accepting the protocol at once (it may then be accepted again).
#[must_use = "inbound streams are reset unless this is polled"]
pub struct IncomingStreams {
    queue: mpsc::Receiver<(PeerId, Stream)>,
    source: Source,
}

impl IncomingStreams {
    /// Starts the forwarding task for `inner`. Needs a Tokio runtime.
    pub(super) fn new(inner: libp2p_stream::IncomingStreams) -> Self {
        let source: Source = Arc::new(Mutex::new(Some(inner)));
        let (tx, queue) = mpsc::channel(ACCEPT_QUEUE);
        tokio::spawn(forward(Arc::clone(&source), tx));
        Self { queue, source }
    }
}

/// Moves streams from libp2p-stream into the queue until either side is gone.
async fn forward(source: Source, tx: mpsc::Sender<(PeerId, Stream)>) {
    loop {
        let next = poll_fn(|cx| {
            let mut guard = source.lock().unwrap_or_else(PoisonError::into_inner);
            match guard.as_mut() {
                Some(inner) => inner.poll_next_unpin(cx),
                None => Poll::Ready(None),
            }
        });
        let item = tokio::select! {
            item = next => item,
            () = tx.closed() => None,
        };
        let Some(item) = item else { return };
        if tx.send(item).await.is_err() {
            return;
        }
    }
}

impl futures::Stream for IncomingStreams {
    type Item = (PeerId, Stream);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.queue.poll_recv(cx)
    }
}

impl Drop for IncomingStreams {
    fn drop(&mut self) {
        // Unregister the protocol now rather than when the forwarder next runs, so that
        // `Transport::accept` may be called again at once.
        self.source
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

impl fmt::Debug for IncomingStreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingStreams")
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}
