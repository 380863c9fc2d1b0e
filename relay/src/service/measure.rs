//! The last hop of a measurement circuit (PROTOCOL.md §6.2): echoes the measurer's `Data` back.
//!
//! Like an exit circuit, a read loop opens each forward cell (paced by the relay's one
//! bandwidth limiter before it is read on) and hands the message to the sans-IO
//! [`Echo`](crate::measure::Echo); a write loop seals the answers and sends them, paced the
//! same way. So a measurement costs the relay exactly what relaying the same cells costs, and
//! a rate-limited relay echoes at its limit. The circuit lives at most
//! [`MEASURE_CIRCUIT_LIFETIME`]; at most `max_measure_circuits` run at once (checked by `hop`).
//!
//! Not here: the echo rules (`crate::measure`), the measurer (`shared::measure`).

use std::time::Duration;

use tokio::sync::mpsc;

use super::limit::Limiter;
use super::{Outcome, RelayStats, next_relay_cell};
use crate::circuit::{HopBackward, HopForward};
use crate::measure::{Echo, EchoAction};
use crate::msg::RelayMsg;
use crate::shared::io::{CellReader, CellWriter};

/// How long a measurement circuit may stay open; then the relay destroys it (`Timeout`), so a
/// silent measurer cannot hold a measurement slot.
pub const MEASURE_CIRCUIT_LIFETIME: Duration = Duration::from_secs(60);

/// Echo cells queued between the read and the write loop of one measurement circuit.
const ECHO_QUEUE: usize = 16;

/// Runs the last hop of a measurement circuit until it ends; `None` when its lifetime ran out.
pub(crate) async fn run_measure<R, W>(
    reader: &mut CellReader<R>,
    writer: &mut CellWriter<W>,
    mut fwd: HopForward,
    mut back: HopBackward,
    stats: &RelayStats,
    limiter: &Limiter,
    lifetime: Duration,
) -> Option<Outcome>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<RelayMsg>(ECHO_QUEUE);
    let write_loop = async {
        while let Some(msg) = rx.recv().await {
            let Ok(cell) = back.seal_message(&msg) else {
                return Outcome::Protocol;
            };
            if limiter.pace(writer).await.is_err() || writer.write(&cell).await.is_err() {
                return Outcome::Closed;
            }
            stats.inc_cells_out();
            if rx.is_empty() && writer.flush().await.is_err() {
                return Outcome::Closed;
            }
        }
        Outcome::Closed
    };
    let read_loop = async {
        let mut echo = Echo::new();
        loop {
            let mut cell = match next_relay_cell(reader, true).await {
                Ok(c) => c,
                Err(outcome) => return outcome,
            };
            limiter.pace_incoming().await;
            let msg = match fwd.open_message(&mut cell) {
                Ok(m) => m,
                Err(crate::CellError::Integrity { .. }) => {
                    stats.inc_integrity();
                    return Outcome::Integrity;
                }
                Err(_) => return Outcome::Protocol,
            };
            stats.inc_cells();
            match echo.on_message(msg) {
                EchoAction::Send(answer) => {
                    if tx.send(answer).await.is_err() {
                        return Outcome::Closed;
                    }
                }
                EchoAction::Nothing => {}
                EchoAction::Violation => return Outcome::Protocol,
            }
        }
    };
    let run = async {
        tokio::select! {
            o = read_loop => o,
            o = write_loop => o,
        }
    };
    tokio::time::timeout(lifetime, run).await.ok()
}
