//! One client circuit: its build, its reader and writer tasks, and the streams multiplexed on it.
//!
//! The circuit task owns the link stream to the guard. Streams register in a shared map; the
//! reader delivers `Connected`, `Data`, `Eof` and `End` to them; the writer encrypts whatever
//! the streams queue (bounded). When the circuit ends, every stream's channel closes, so each
//! app connection on it fails cleanly instead of hanging.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_relay::handshake::{CircuitRequest, HopSpec};
use braid_relay::service::CIRCUIT_PROTOCOL;
use braid_relay::service::io::{CellReader, CellWriter};
use braid_relay::service::pump::StreamCmd;
use braid_relay::{
    Cell, CellKind, ClientCircuit, DestroyReason, EndReason, RelayMsg, StreamId, Target,
};
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
}

struct StreamSlot {
    connected: Option<oneshot::Sender<Result<(), EndReason>>>,
    tx: mpsc::Sender<StreamCmd>,
}

type StreamMap = Arc<Mutex<HashMap<StreamId, StreamSlot>>>;

/// A built circuit. Cheap to share; dropping the last handle does not close it (call `close`).
pub struct Circuit {
    msg_tx: mpsc::Sender<RelayMsg>,
    streams: StreamMap,
    next_stream: AtomicU16,
    closed: Arc<AtomicBool>,
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
        let max_data = circuit.max_data();
        let task = tokio::spawn(run(
            circuit,
            reader,
            writer,
            msg_rx,
            streams.clone(),
            closed.clone(),
        ));
        Arc::new(Circuit {
            msg_tx,
            streams,
            next_stream: AtomicU16::new(1),
            closed,
            max_data,
            settings,
            path,
            built_at: Instant::now(),
            build_time,
            task,
        })
    }

    /// Whether the circuit has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
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
        if self.is_closed() {
            return Err(RouterError::CircuitClosed);
        }
        let (done_tx, done_rx) = oneshot::channel();
        let (tx, rx) = mpsc::channel(self.settings.stream_queue);
        let id = {
            let mut map = self
                .streams
                .lock()
                .map_err(|_| RouterError::CircuitClosed)?;
            if map.len() >= self.settings.max_streams {
                return Err(RouterError::Limit("streams per circuit"));
            }
            let mut id;
            loop {
                id = StreamId(self.next_stream.fetch_add(1, Ordering::Relaxed));
                if id.0 != 0 && !map.contains_key(&id) {
                    break;
                }
            }
            map.insert(
                id,
                StreamSlot {
                    connected: Some(done_tx),
                    tx,
                },
            );
            id
        };
        let begin = RelayMsg::Begin { stream: id, target };
        if self.msg_tx.send(begin).await.is_err() {
            self.forget(id);
            return Err(RouterError::CircuitClosed);
        }
        match tokio::time::timeout(timeout, done_rx).await {
            Ok(Ok(Ok(()))) => Ok(OpenStream {
                id,
                rx,
                tx: self.msg_tx.clone(),
                max_data: self.max_data,
            }),
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
        if let Ok(mut m) = self.streams.lock() {
            m.clear();
        }
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
    closed: Arc<AtomicBool>,
) where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (mut fwd, mut back) = circuit.split();
    let mut integrity_failed = false;
    let write_loop = async {
        while let Some(msg) = msg_rx.recv().await {
            let Ok(cell) = fwd.encrypt(&msg) else {
                return "encrypt failed";
            };
            if writer.write(&cell).await.is_err() {
                return "write failed";
            }
            if msg_rx.is_empty() && writer.flush().await.is_err() {
                return "flush failed";
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
    if let Ok(mut m) = streams.lock() {
        m.clear();
    }
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
    let cmd = match msg {
        RelayMsg::Connected { .. } => {
            if let Ok(mut m) = streams.lock()
                && let Some(slot) = m.get_mut(&id)
                && let Some(done) = slot.connected.take()
            {
                let _ = done.send(Ok(()));
            }
            return true;
        }
        RelayMsg::End { reason, .. } => {
            if let Ok(mut m) = streams.lock()
                && let Some(mut slot) = m.remove(&id)
                && let Some(done) = slot.connected.take()
            {
                let _ = done.send(Err(reason));
            }
            return true;
        }
        RelayMsg::Data { data, .. } => StreamCmd::Data(data),
        RelayMsg::Eof { .. } => StreamCmd::Eof,
        RelayMsg::Begin { .. } => return false,
        RelayMsg::Unknown { .. } => return true,
    };
    let tx = streams
        .lock()
        .ok()
        .and_then(|m| m.get(&id).map(|s| s.tx.clone()));
    if let Some(tx) = tx {
        let _ = tx.send(cmd).await;
    }
    true
}
