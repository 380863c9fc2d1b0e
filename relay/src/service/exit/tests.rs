#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

//! `run_exit` end to end over an in-memory pipe, with a one-hop client circuit; and the
//! context the exit's tests share.

use std::net::{Ipv4Addr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::*;
use crate::circuit::{ClientCircuit, HopCircuit};
use crate::layer::HopKeys;
use crate::msg::{EndReason, StreamId, Target};

/// An exit context with no resolver, small queues and room for `max_streams` streams.
pub(super) fn context(policy: ExitPolicy, max_streams: usize) -> Arc<ExitContext> {
    Arc::new(ExitContext {
        policy: std::sync::RwLock::new(policy),
        resolver: None,
        connect_timeout: Duration::from_secs(5),
        max_streams,
        stream_queue: 8,
        circuit_queue: 8,
        braids: BraidTable::new(4),
        braid: BraidSettings::default(),
        stats: Arc::new(RelayStats::default()),
    })
}

/// The client's end of a one-hop circuit whose exit runs `run_exit`.
struct Client {
    circuit: ClientCircuit,
    reader: CellReader<ReadHalf<DuplexStream>>,
    writer: CellWriter<WriteHalf<DuplexStream>>,
}

impl Client {
    async fn send(&mut self, msg: &RelayMsg) {
        let cell = self.circuit.encrypt_forward(msg).unwrap();
        self.writer.send(&cell).await.unwrap();
    }

    async fn recv(&mut self) -> RelayMsg {
        let mut cell = self.reader.read().await.unwrap().unwrap();
        self.circuit.decrypt_backward(&mut cell).unwrap()
    }
}

/// Starts `run_exit` on one end of a pipe; returns the other end and what the exit counted.
fn start(ctx: Arc<ExitContext>) -> (Client, Arc<RelayStats>, JoinHandle<Outcome>) {
    let (k1, k2) = ([1; 32], [2; 32]);
    let (near, far) = tokio::io::duplex(64 * 1024);
    let stats = Arc::new(RelayStats::default());
    let exit_stats = stats.clone();
    let exit = tokio::spawn(async move {
        let (r, w) = tokio::io::split(far);
        let (mut reader, mut writer) = (CellReader::new(r), CellWriter::new(w));
        let (fwd, back) = HopCircuit::new(1, HopKeys::from_split(&k1, &k2), true).split();
        let limiter = Limiter::new(None, None);
        run_exit(
            &mut reader,
            &mut writer,
            fwd,
            back,
            ctx,
            &exit_stats,
            &limiter,
        )
        .await
    });
    let (r, w) = tokio::io::split(near);
    let client = Client {
        circuit: ClientCircuit::new(vec![HopKeys::from_split(&k1, &k2)]),
        reader: CellReader::new(r),
        writer: CellWriter::new(w),
    };
    (client, stats, exit)
}

#[tokio::test]
async fn a_begin_over_the_limit_is_answered_and_an_exit_bound_message_closes_the_circuit() {
    let (mut client, stats, exit) = start(context(ExitPolicy::accept_all(), 0));
    let target = Target::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)));
    let stream = StreamId(1);
    client.send(&RelayMsg::Begin { stream, target }).await;
    let reason = EndReason::Limit;
    assert_eq!(client.recv().await, RelayMsg::End { stream, reason });
    client.send(&RelayMsg::Connected { stream }).await;
    assert_eq!(exit.await.unwrap(), Outcome::Protocol);
    assert_eq!(stats.cells.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test]
async fn a_stream_connects_and_carries_bytes_both_ways() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let target = Target::Ip(listener.local_addr().unwrap());
    let (mut client, _, exit) = start(context(ExitPolicy::accept_all(), 4));
    let stream = StreamId(7);
    client.send(&RelayMsg::Begin { stream, target }).await;
    let (mut tcp, _) = listener.accept().await.unwrap();
    assert_eq!(client.recv().await, RelayMsg::Connected { stream });
    let data = bytes::Bytes::from_static(b"ping");
    client.send(&RelayMsg::Data { stream, data }).await;
    let mut buf = [0u8; 4];
    tcp.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    tcp.write_all(b"pong").await.unwrap();
    let data = bytes::Bytes::from_static(b"pong");
    assert_eq!(client.recv().await, RelayMsg::Data { stream, data });
    // The client going away closes the circuit, and the exit drops the connection.
    drop(client);
    assert_eq!(exit.await.unwrap(), Outcome::Closed);
    assert_eq!(tcp.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test]
async fn a_cell_that_fails_authentication_closes_the_circuit() {
    let (mut client, stats, exit) = start(context(ExitPolicy::accept_all(), 4));
    let stream = StreamId(1);
    let mut cell = client
        .circuit
        .encrypt_forward(&RelayMsg::Eof { stream })
        .unwrap();
    cell.body[0] ^= 1;
    client.writer.send(&cell).await.unwrap();
    assert_eq!(exit.await.unwrap(), Outcome::Integrity);
    let failures = &stats.integrity_failures;
    assert_eq!(failures.load(std::sync::atomic::Ordering::Relaxed), 1);
}
