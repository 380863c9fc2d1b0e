//! Moves one TCP connection's bytes to and from a circuit stream (shared by exit and client).
//!
//! The pump reads the socket in chunks of at most one cell's data and sends `Data` messages into
//! the circuit's bounded outgoing queue (so a slow circuit slows the socket reads), and writes
//! the `Data` it receives from the circuit to the socket. `Eof` is a TCP half-close each way.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::msg::{EndReason, RelayMsg, StreamId};

/// What the circuit tells one stream's pump.
#[derive(Debug)]
pub enum StreamCmd {
    /// Bytes to write to the socket.
    Data(Vec<u8>),
    /// The other end will send nothing more: half-close the socket's write side.
    Eof,
}

/// Runs stream `id` on `tcp` until both directions have ended.
///
/// Returns `Ok` when both sides closed cleanly (each sent `Eof`), or the reason to put in an
/// `End` message. A closed `from_circuit` channel means the circuit dropped the stream.
pub async fn pump(
    tcp: TcpStream,
    id: StreamId,
    max_data: usize,
    from_circuit: mpsc::Receiver<StreamCmd>,
    to_circuit: mpsc::Sender<RelayMsg>,
) -> Result<(), EndReason> {
    pump_answered(tcp, id, max_data, from_circuit, to_circuit, || {}).await
}

/// [`pump`], calling `answered` once the first bytes from the circuit were written to `tcp`
/// (or the circuit's side ended without any).
pub async fn pump_answered(
    tcp: TcpStream,
    id: StreamId,
    max_data: usize,
    mut from_circuit: mpsc::Receiver<StreamCmd>,
    to_circuit: mpsc::Sender<RelayMsg>,
    answered: impl FnOnce() + Send,
) -> Result<(), EndReason> {
    let (mut rd, mut wr) = tcp.into_split();
    let mut answered = Some(answered);
    let up = async {
        let mut buf = vec![0u8; max_data];
        loop {
            let n = rd.read(&mut buf).await.map_err(|_| EndReason::Misc)?;
            if n == 0 {
                to_circuit
                    .send(RelayMsg::Eof { stream: id })
                    .await
                    .map_err(|_| EndReason::Misc)?;
                return Ok::<(), EndReason>(());
            }
            let msg = RelayMsg::Data {
                stream: id,
                data: Bytes::copy_from_slice(&buf[..n]),
            };
            to_circuit.send(msg).await.map_err(|_| EndReason::Misc)?;
        }
    };
    let down = async {
        loop {
            let cmd = from_circuit.recv().await;
            let first = answered.take();
            match cmd {
                Some(StreamCmd::Data(d)) => wr.write_all(&d).await.map_err(|_| EndReason::Misc)?,
                Some(StreamCmd::Eof) => {
                    first.into_iter().for_each(|f| f());
                    let _ = wr.shutdown().await;
                    return Ok::<(), EndReason>(());
                }
                None => return Err(EndReason::Misc),
            }
            first.into_iter().for_each(|f| f());
        }
    };
    tokio::try_join!(up, down).map(|_| ())
}
