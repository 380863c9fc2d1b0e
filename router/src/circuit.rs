//! One client circuit: its build, its reader and writer tasks, and the streams multiplexed on it.
//!
//! The circuit task owns the link stream to the guard. Streams register in a shared map; the
//! reader delivers `Connected`, `Data`, `Eof` and `End` to them; the writer encrypts whatever
//! the streams queue (bounded). When the circuit ends, every stream's channel closes, so each
//! app connection on it fails cleanly instead of hanging.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_relay::handshake::{CircuitRequest, HopSpec};
use braid_relay::shared::CIRCUIT_PROTOCOL;
use braid_relay::shared::braid::{StrandEvent, StrandLink, notify_down};
use braid_relay::shared::io::{CellReader, CellWriter};
use braid_relay::shared::pump::StreamCmd;
use braid_relay::{
    Cell, CellKind, ClientCircuit, DestroyReason, EndReason, RelayMsg, StreamId, Target,
};
use braid_splitter::StrandId;
use braid_transport::{PeerId, Transport, compat};
use tokio::sync::{mpsc, oneshot};
use tracing::debug;

use crate::error::RouterError;

/// Per-circuit settings.
#[derive(Debug, Clone)]
pub struct CircuitSettings {
    /// Time allowed for the whole build (one round trip through every hop).
    pub build_timeout: Duration,
    /// Streams open at once on one circuit.
    pub max_streams: usize,
    /// Messages queued towards one app socket.
    pub stream_queue: usize,
    /// Messages queued towards the circuit's writer.
    pub circuit_queue: usize,
    /// Cells sent and received by every circuit built with these settings (shared: a
    /// manager's circuits all count into its one [`Traffic`]).
    pub traffic: Arc<Traffic>,
}

/// Cells a set of circuits sent and received since it was created (for status and rates).
#[derive(Debug, Default)]
pub struct Traffic {
    /// Cells received from the network.
    pub cells_in: AtomicU64,
    /// Cells sent to the network.
    pub cells_out: AtomicU64,
}

impl Traffic {
    /// (cells in, cells out) so far.
    pub fn cells(&self) -> (u64, u64) {
        (
            self.cells_in.load(Ordering::Relaxed),
            self.cells_out.load(Ordering::Relaxed),
        )
    }
}

struct StreamSlot {
    connected: Option<oneshot::Sender<Result<(), EndReason>>>,
    sink: Sink,
}

/// Where a stream's messages from the exit go.
enum Sink {
    /// A plain stream's pump.
    Plain(mpsc::Sender<StreamCmd>),
    /// One strand of a braided stream: its fragments go to the stream's engine.
    Strand {
        strand: StrandId,
        events: mpsc::Sender<StrandEvent>,
    },
}

impl StreamSlot {
    /// Tells a strand's engine that the strand is gone (`None`: the circuit was lost).
    fn strand_down(self, ended: Option<EndReason>) {
        if let Sink::Strand { strand, events } = self.sink {
            notify_down(events, strand, ended);
        }
    }
}

/// Drops every stream of a circuit that ended; strands' engines learn it.
fn drop_all(streams: &StreamMap) {
    let slots: Vec<StreamSlot> = match streams.lock() {
        Ok(mut m) => m.drain().map(|(_, s)| s).collect(),
        Err(_) => return,
    };
    for slot in slots {
        slot.strand_down(None);
    }
}

type StreamMap = Arc<Mutex<HashMap<StreamId, StreamSlot>>>;

/// A built circuit. Cheap to share; dropping the last handle does not close it (call `close`).
pub struct Circuit {
    msg_tx: mpsc::Sender<RelayMsg>,
    streams: StreamMap,
    next_stream: AtomicU16,
    closed: Arc<AtomicBool>,
    /// Cells received from the network so far (activity, for diagnostics and the simulator).
    cells_in: Arc<AtomicU64>,
    max_data: usize,
    settings: CircuitSettings,
    /// Indexes (into the directory used to build it) of the relays, guard first.
    pub path: Vec<usize>,
    /// When it was built.
    pub built_at: Instant,
    /// How long the build took.
    pub build_time: Duration,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circuit")
            .field("hops", &self.path.len())
            .field("closed", &self.is_closed())
            .finish_non_exhaustive()
    }
}

/// A stream opened on a circuit: feed `rx` to a pump with `tx`.
#[derive(Debug)]
pub struct OpenStream {
    /// The stream's id on the circuit.
    pub id: StreamId,
    /// Messages from the exit for this stream.
    pub rx: mpsc::Receiver<StreamCmd>,
    /// The circuit's outgoing queue.
    pub tx: mpsc::Sender<RelayMsg>,
    /// Largest data per message.
    pub max_data: usize,
}

impl Circuit {
    /// Builds a circuit along `path` (guard first) through `transport`.
    pub async fn build(
        transport: &Transport,
        guard: PeerId,
        hops: &[HopSpec],
        path: Vec<usize>,
        settings: CircuitSettings,
    ) -> Result<Arc<Circuit>, RouterError> {
        let started = Instant::now();
        let build = async {
            let (req, create) = CircuitRequest::new(hops)?;
            let stream = transport.open_stream(guard, CIRCUIT_PROTOCOL).await?;
            let (r, w) = tokio::io::split(compat(stream));
            let mut reader = CellReader::new(r);
            let mut writer = CellWriter::new(w);
            let cell = Cell::with_content(CellKind::Create, &create)?;
            writer.send(&cell).await?;
            let reply = reader
                .read()
                .await?
                .ok_or(RouterError::BuildFailed("guard closed the stream".into()))?;
            let created = match reply.kind {
                CellKind::Created => reply,
                CellKind::Destroy => {
                    return Err(RouterError::BuildFailed(format!(
                        "destroyed during build: {:?}",
                        reply.destroy_reason()
                    )));
                }
                other => {
                    return Err(RouterError::BuildFailed(format!("unexpected {other:?}")));
                }
            };
            let circuit = req.finish(&created.body[..])?;
            Ok::<_, RouterError>((circuit, reader, writer))
        };
        let (circuit, reader, writer) = tokio::time::timeout(settings.build_timeout, build)
            .await
            .map_err(|_| RouterError::Timeout("building a circuit"))??;
        let build_time = started.elapsed();
        Ok(Self::spawn(
            circuit, reader, writer, path, settings, build_time,
        ))
    }

    fn spawn<R, W>(
        circuit: ClientCircuit,
        reader: CellReader<R>,
        writer: CellWriter<W>,
        path: Vec<usize>,
        settings: CircuitSettings,
        build_time: Duration,
    ) -> Arc<Circuit>
    where
        R: tokio::io::AsyncRead + Unpin + Send + 'static,
        W: tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (msg_tx, msg_rx) = mpsc::channel(settings.circuit_queue);
        let streams: StreamMap = Arc::new(Mutex::new(HashMap::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let cells_in = Arc::new(AtomicU64::new(0));
        let max_data = circuit.max_data();
        let task = tokio::spawn(run(
            circuit,
            reader,
            writer,
            msg_rx,
            streams.clone(),
            (closed.clone(), cells_in.clone(), settings.traffic.clone()),
        ));
        Arc::new(Circuit {
            msg_tx,
            streams,
            next_stream: AtomicU16::new(1),
            closed,
            cells_in,
            max_data,
            settings,
            path,
            built_at: Instant::now(),
            build_time,
            task,
        })
    }

    /// Largest data per message on this circuit.
    pub fn max_data(&self) -> usize {
        self.max_data
    }

    /// Whether the circuit has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Cells received from the network so far.
    pub fn cells_in(&self) -> u64 {
        self.cells_in.load(Ordering::Relaxed)
    }

    /// Streams open now.
    pub fn stream_count(&self) -> usize {
        self.streams.lock().map(|m| m.len()).unwrap_or(usize::MAX)
    }

    /// Whether another stream fits.
    pub fn has_room(&self) -> bool {
        !self.is_closed() && self.stream_count() < self.settings.max_streams
    }

    /// Asks the exit to connect to `target`; resolves when the exit answers.
    pub async fn open_stream(
        &self,
        target: Target,
        timeout: Duration,
    ) -> Result<OpenStream, RouterError> {
        let (tx, rx) = mpsc::channel(self.settings.stream_queue);
        let id = self
            .open_with(
                Sink::Plain(tx),
                |stream| RelayMsg::Begin { stream, target },
                timeout,
            )
            .await?;
        Ok(OpenStream {
            id,
            rx,
            tx: self.msg_tx.clone(),
            max_data: self.max_data,
        })
    }

    /// Opens a braided stream to `target` with this circuit as its strand `strand`: the exit
    /// connects and answers. Fragments arriving on the strand go to `events`.
    pub async fn open_braid(
        &self,
        target: Target,
        secret: [u8; 32],
        strand: StrandId,
        events: mpsc::Sender<StrandEvent>,
        timeout: Duration,
    ) -> Result<StrandLink, RouterError> {
        let sink = Sink::Strand { strand, events };
        let begin = |stream| RelayMsg::BeginBraid {
            stream,
            secret,
            target,
        };
        let stream = self.open_with(sink, begin, timeout).await?;
        Ok(self.strand_link(stream))
    }

    /// Joins this circuit to the braided stream `link` as its strand `strand`.
    pub async fn link(
        &self,
        link: [u8; 32],
        strand: StrandId,
        events: mpsc::Sender<StrandEvent>,
        timeout: Duration,
    ) -> Result<StrandLink, RouterError> {
        let sink = Sink::Strand { strand, events };
        let stream = self
            .open_with(
                sink,
                |stream| RelayMsg::Link {
                    stream,
                    link,
                    quiet: false,
                },
                timeout,
            )
            .await?;
        Ok(self.strand_link(stream))
    }

    /// Joins this circuit to the braided stream `link` as its strand `strand` without waiting
    /// for the exit's answer: a quiet `Link` goes out (the exit answers no `Linked`, which would
    /// only cost cells beside the stream's first round trip) and the strand may carry fragments
    /// at once (the exit reads them after the `Link` on this circuit). A refusal comes as an
    /// `End`, which the stream's engine gets as the strand going down; its fragments are then
    /// resent on the others.
    pub async fn link_now(
        &self,
        link: [u8; 32],
        strand: StrandId,
        events: mpsc::Sender<StrandEvent>,
    ) -> Result<StrandLink, RouterError> {
        let sink = Sink::Strand { strand, events };
        let id = self
            .open_unanswered(sink, None, |stream| RelayMsg::Link {
                stream,
                link,
                quiet: true,
            })
            .await?;
        Ok(self.strand_link(id))
    }

    fn strand_link(&self, stream: StreamId) -> StrandLink {
        StrandLink {
            tx: self.msg_tx.clone(),
            stream,
        }
    }

    /// Registers a stream (its answer, if awaited, goes to `connected`) and sends its opening
    /// message, without waiting for the answer.
    async fn open_unanswered(
        &self,
        sink: Sink,
        connected: Option<oneshot::Sender<Result<(), EndReason>>>,
        opening: impl FnOnce(StreamId) -> RelayMsg,
    ) -> Result<StreamId, RouterError> {
        if self.is_closed() {
            return Err(RouterError::CircuitClosed);
        }
        let id = {
            let mut map = self
                .streams
                .lock()
                .map_err(|_| RouterError::CircuitClosed)?;
            if map.len() >= self.settings.max_streams {
                return Err(RouterError::Limit("streams per circuit"));
            }
            // A stream id not in use on this circuit (never 0).
            let id = loop {
                let id = StreamId(self.next_stream.fetch_add(1, Ordering::Relaxed));
                if id.0 != 0 && !map.contains_key(&id) {
                    break id;
                }
            };
            map.insert(id, StreamSlot { connected, sink });
            id
        };
        if self.msg_tx.send(opening(id)).await.is_err() {
            self.forget(id);
            return Err(RouterError::CircuitClosed);
        }
        Ok(id)
    }

    /// Registers a stream, sends its opening message and waits for the exit's answer.
    async fn open_with(
        &self,
        sink: Sink,
        opening: impl FnOnce(StreamId) -> RelayMsg,
        timeout: Duration,
    ) -> Result<StreamId, RouterError> {
        let (done_tx, done_rx) = oneshot::channel();
        let id = self.open_unanswered(sink, Some(done_tx), opening).await?;
        match tokio::time::timeout(timeout, done_rx).await {
            Ok(Ok(Ok(()))) => Ok(id),
            Ok(Ok(Err(reason))) => {
                self.forget(id);
                Err(RouterError::StreamRefused(reason))
            }
            Ok(Err(_)) => {
                self.forget(id);
                Err(RouterError::CircuitClosed)
            }
            Err(_) => {
                self.end_stream(id, EndReason::Timeout).await;
                Err(RouterError::Timeout("opening a stream"))
            }
        }
    }

    /// Drops a stream locally and tells the exit.
    pub async fn end_stream(&self, id: StreamId, reason: EndReason) {
        self.forget(id);
        let _ = self.msg_tx.send(RelayMsg::End { stream: id, reason }).await;
    }

    /// Drops a stream locally.
    pub fn forget(&self, id: StreamId) {
        if let Ok(mut m) = self.streams.lock() {
            m.remove(&id);
        }
    }

    /// Tears the circuit down (sends `Destroy`) and ends its task.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.task.abort();
        drop_all(&self.streams);
    }
}

impl Drop for Circuit {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run<R, W>(
    circuit: ClientCircuit,
    mut reader: CellReader<R>,
    mut writer: CellWriter<W>,
    mut msg_rx: mpsc::Receiver<RelayMsg>,
    streams: StreamMap,
    (closed, cells_in, traffic): (Arc<AtomicBool>, Arc<AtomicU64>, Arc<Traffic>),
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (mut fwd, mut back) = circuit.split();
    let mut integrity_failed = false;
    let write_loop = async {
        while let Some(msg) = msg_rx.recv().await {
            if let RelayMsg::End { stream, .. } = msg
                && let Ok(mut m) = streams.lock()
            {
                // Whoever ends a stream is done with it (braided streams end their strands).
                m.remove(&stream);
            }
            let Ok(cell) = fwd.encrypt(&msg) else {
                return "encrypt failed";
            };
            if writer.write(&cell).await.is_err() {
                return "write failed";
            }
            traffic.cells_out.fetch_add(1, Ordering::Relaxed);
            if msg_rx.is_empty() {
                // Let producers run once before flushing, so a burst leaves in few packets.
                tokio::task::yield_now().await;
                if msg_rx.is_empty() && writer.flush().await.is_err() {
                    return "flush failed";
                }
            }
        }
        "circuit handle dropped"
    };
    let read_loop = async {
        loop {
            let mut cell = match reader.read().await {
                Ok(Some(c)) => c,
                Ok(None) => return "guard closed the stream",
                Err(_) => return "read failed",
            };
            cells_in.fetch_add(1, Ordering::Relaxed);
            traffic.cells_in.fetch_add(1, Ordering::Relaxed);
            if cell.kind == CellKind::Destroy {
                debug!(reason = ?cell.destroy_reason(), "circuit destroyed by the network");
                return "destroyed";
            }
            let msg = match back.decrypt(&mut cell) {
                Ok(m) => m,
                Err(e) => {
                    debug!(error = %e, "bad cell from the network; tearing down");
                    integrity_failed = true;
                    return "integrity failure";
                }
            };
            if !deliver(&streams, msg).await {
                return "protocol violation by the exit";
            }
        }
    };
    let why = tokio::select! {
        w = write_loop => w,
        r = read_loop => r,
    };
    debug!(why, "circuit ended");
    closed.store(true, Ordering::SeqCst);
    drop_all(&streams);
    let reason = if integrity_failed {
        DestroyReason::Integrity
    } else {
        DestroyReason::Finished
    };
    let _ = writer.send(&Cell::destroy(reason)).await;
    writer.close().await;
}

/// Hands one message to its stream. Returns false on a protocol violation.
async fn deliver(streams: &StreamMap, msg: RelayMsg) -> bool {
    let id = msg.stream();
    let data = match msg {
        RelayMsg::Connected { .. } | RelayMsg::Linked { .. } => {
            if let Ok(mut m) = streams.lock()
                && let Some(slot) = m.get_mut(&id)
                && let Some(done) = slot.connected.take()
            {
                let _ = done.send(Ok(()));
            }
            return true;
        }
        RelayMsg::End { reason, .. } => {
            let slot = streams.lock().ok().and_then(|mut m| m.remove(&id));
            if let Some(mut slot) = slot {
                match slot.connected.take() {
                    Some(done) => {
                        let _ = done.send(Err(reason));
                    }
                    None => slot.strand_down(Some(reason)),
                }
            }
            return true;
        }
        RelayMsg::Data { data, .. } => Some(data),
        RelayMsg::Eof { .. } => None,
        RelayMsg::Begin { .. }
        | RelayMsg::BeginBraid { .. }
        | RelayMsg::Link { .. }
        | RelayMsg::BeginMeasure { .. } => {
            return false;
        }
        RelayMsg::Unknown { .. } => return true,
    };
    enum To {
        Plain(mpsc::Sender<StreamCmd>),
        Strand(StrandId, mpsc::Sender<StrandEvent>),
    }
    let to = streams.lock().ok().and_then(|m| {
        m.get(&id).map(|s| match &s.sink {
            Sink::Plain(tx) => To::Plain(tx.clone()),
            Sink::Strand { strand, events } => To::Strand(*strand, events.clone()),
        })
    });
    match (to, data) {
        (Some(To::Plain(tx)), Some(d)) => {
            let _ = tx.send(StreamCmd::Data(d.into())).await;
        }
        (Some(To::Plain(tx)), None) => {
            let _ = tx.send(StreamCmd::Eof).await;
        }
        (Some(To::Strand(strand, events)), Some(bytes)) => {
            let _ = events
                .send(StrandEvent::Fragment {
                    strand,
                    bytes: bytes.into(),
                })
                .await;
        }
        // A strand carries no half-close: the fragments carry FIN.
        (Some(To::Strand(..)), None) | (None, _) => {}
    }
    true
}
