//! The exit's side of a circuit: reads relay messages, opens TCP connections, pumps streams.
//!
//! [`run_exit`] is the driver: a read loop that opens each cell and hands its message to the
//! circuit's [`circuit::ExitCircuit`] (one method per message kind), and a write loop that
//! seals the circuit's answers and the streams' data towards the client. Hostnames are
//! resolved at the exit ([`connect()`]), never at the client. The exit policy is checked
//! against every resolved address before connecting; streams per circuit are limited.

use std::sync::Arc;
use std::time::Duration;

use braid_directory::ExitPolicy;
use hickory_resolver::TokioResolver;
use tokio::sync::mpsc;

use super::exit_braid::BraidTable;
use super::limit::Limiter;
use super::{Outcome, RelayStats, next_relay_cell};
use crate::braid::BraidSettings;
use crate::circuit::{HopBackward, HopForward};
use crate::msg::RelayMsg;
use crate::shared::io::{CellReader, CellWriter};
use circuit::{ExitCircuit, Step};

mod circuit;
mod connect;
#[cfg(test)]
mod tests;

pub(crate) use connect::connect;

/// What every exit circuit shares.
pub(crate) struct ExitContext {
    /// Replaced by `RelayService::set_exit_policy` (a reload); read for every connect.
    pub policy: std::sync::RwLock<ExitPolicy>,
    pub resolver: Option<TokioResolver>,
    pub connect_timeout: Duration,
    pub max_streams: usize,
    pub stream_queue: usize,
    pub circuit_queue: usize,
    pub braids: BraidTable,
    pub braid: BraidSettings,
    pub stats: Arc<RelayStats>,
}

/// Runs the exit end of a circuit until it is destroyed or closed.
pub(crate) async fn run_exit<R, W>(
    reader: &mut CellReader<R>,
    writer: &mut CellWriter<W>,
    mut fwd: HopForward,
    mut back: HopBackward,
    ctx: Arc<ExitContext>,
    stats: &RelayStats,
    limiter: &Limiter,
) -> Outcome
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (msg_tx, mut msg_rx) = mpsc::channel::<RelayMsg>(ctx.circuit_queue);
    let mut circuit = ExitCircuit::new(ctx, msg_tx, back.max_data());

    let write_loop = async {
        while let Some(msg) = msg_rx.recv().await {
            let cell = match back.seal_message(&msg) {
                Ok(c) => c,
                Err(_) => return Outcome::Protocol,
            };
            if limiter.pace(writer).await.is_err() || writer.write(&cell).await.is_err() {
                return Outcome::Closed;
            }
            stats.inc_cells_out();
            if msg_rx.is_empty() {
                // Let producers run once before flushing, so a burst leaves in few packets.
                tokio::task::yield_now().await;
                if msg_rx.is_empty() && writer.flush().await.is_err() {
                    return Outcome::Closed;
                }
            }
        }
        Outcome::Closed
    };
    let read_loop = async {
        loop {
            let mut cell = match next_relay_cell(reader, true).await {
                Ok(c) => c,
                Err(outcome) => return outcome,
            };
            // Forget streams that finished meanwhile, before this cell is judged against the
            // stream limit. (Not a `select!` with the read: a cell read cancelled half way
            // would lose bytes and desynchronise the stream.)
            circuit.forget_finished();
            // Pacing here stops reading from the client while the relay is over its rate.
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
            if let Step::Close(outcome) = circuit.on_message(msg).await {
                return outcome;
            }
        }
    };
    let outcome = tokio::select! {
        o = read_loop => o,
        o = write_loop => o,
    };
    circuit.close();
    outcome
}
