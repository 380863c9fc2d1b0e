//! Bandwidth measurement circuits (PROTOCOL.md §6.2), sans-IO: the last hop's echo rules
//! ([`Echo`]), the measurer's payload ([`payload`]) and its rate computation ([`Meter`]).
//!
//! A registry builds a circuit whose last hop is told (next flag 2) that it only echoes; it
//! sends `BeginMeasure`, then `Data` cells of unpredictable bytes, then `Eof`, and the relay
//! sends each `Data` back unchanged. The echo runs through the relay's ordinary circuit
//! machinery, so it is paced and counted by the relay's bandwidth limiter like any relayed cell.
//!
//! Not here: sockets and timers (the relay's `service::measure`, the measurer's
//! `shared::measure`), scheduling measurements (the registry's measurer).

use std::time::Duration;

use crate::cell::CELL_LEN;
use crate::msg::{EndReason, RelayMsg, StreamId};

/// The most `Data` bytes a relay echoes on one measurement circuit. A `Data` that would go past
/// it is answered `End{Limit}` instead.
pub const MEASURE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// What the last hop of a measurement circuit does with one message.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EchoAction {
    /// Send this message back to the measurer.
    Send(RelayMsg),
    /// Nothing to send.
    Nothing,
    /// A message not allowed on a measurement circuit: destroy it (`Protocol`).
    Violation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EchoState {
    /// No `BeginMeasure` yet.
    Idle,
    /// Echoing this stream.
    Open(StreamId),
    /// The one measurement of this circuit is over (ended, finished or over the bound).
    Done,
}

/// The echo rules of one measurement circuit's last hop.
///
/// - `BeginMeasure{s}` opens the circuit's one measurement stream (no answer); a second one
///   (any stream id) is answered `End{Limit}`.
/// - `Data{s}` on the open stream is echoed unchanged while the circuit's echoed total stays
///   within [`MEASURE_MAX_BYTES`]; the `Data` that would pass it is answered `End{s, Limit}`
///   and the stream is over. `Data` for any other stream is dropped.
/// - `Eof{s}` is echoed and ends the stream; `End{s}` ends it silently.
/// - `Begin`, `BeginBraid`, `Link`, `Connected`, `Linked` are violations; unknown commands are
///   ignored.
#[derive(Debug, Clone)]
pub struct Echo {
    state: EchoState,
    echoed: u64,
}

impl Default for Echo {
    fn default() -> Self {
        Self::new()
    }
}

impl Echo {
    /// A circuit that has not begun its measurement.
    pub fn new() -> Self {
        Echo {
            state: EchoState::Idle,
            echoed: 0,
        }
    }

    /// `Data` bytes echoed so far (never above [`MEASURE_MAX_BYTES`]).
    pub fn echoed(&self) -> u64 {
        self.echoed
    }

    /// Whether the circuit's measurement is over (nothing more will be echoed).
    pub fn is_done(&self) -> bool {
        self.state == EchoState::Done
    }

    /// Applies the rules above to one message from the measurer.
    pub fn on_message(&mut self, msg: RelayMsg) -> EchoAction {
        let open = match self.state {
            EchoState::Open(s) => Some(s),
            _ => None,
        };
        match msg {
            RelayMsg::BeginMeasure { stream } => {
                if self.state == EchoState::Idle {
                    self.state = EchoState::Open(stream);
                    EchoAction::Nothing
                } else {
                    EchoAction::Send(RelayMsg::End {
                        stream,
                        reason: EndReason::Limit,
                    })
                }
            }
            RelayMsg::Data { stream, data } if open == Some(stream) => {
                let total = self.echoed.saturating_add(data.len() as u64);
                if total > MEASURE_MAX_BYTES {
                    self.state = EchoState::Done;
                    return EchoAction::Send(RelayMsg::End {
                        stream,
                        reason: EndReason::Limit,
                    });
                }
                self.echoed = total;
                EchoAction::Send(RelayMsg::Data { stream, data })
            }
            RelayMsg::Eof { stream } if open == Some(stream) => {
                self.state = EchoState::Done;
                EchoAction::Send(RelayMsg::Eof { stream })
            }
            RelayMsg::End { stream, .. } if open == Some(stream) => {
                self.state = EchoState::Done;
                EchoAction::Nothing
            }
            RelayMsg::Data { .. }
            | RelayMsg::Eof { .. }
            | RelayMsg::End { .. }
            | RelayMsg::Unknown { .. } => EchoAction::Nothing,
            RelayMsg::Begin { .. }
            | RelayMsg::BeginBraid { .. }
            | RelayMsg::Link { .. }
            | RelayMsg::Connected { .. }
            | RelayMsg::Linked { .. } => EchoAction::Violation,
        }
    }
}

/// The `index`-th (0-based) `Data` payload of a measurement keyed by `key`: `len` bytes of
/// BLAKE3's keyed output stream over `index` (u64, little-endian). The relay cannot predict it,
/// so it cannot send an echo before it received the cell.
pub fn payload(key: &[u8; 32], index: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new_keyed(key)
        .update(&index.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// `Data` cells a measurement of `bytes` sends when one cell carries `max_data` bytes (the last
/// one may be short).
pub fn cells_for(bytes: u64, max_data: usize) -> u64 {
    bytes.div_ceil(max_data.max(1) as u64)
}

/// The measurer's rate computation over the arrival times of the echoes.
///
/// With `n` cells sent and echo `k` (1-based) arriving `t_k` after the first cell was sent, the
/// rate is taken over the second half of the echoes, after echo `m = n / 2`:
///
/// ```text
/// bytes/s = 2 × CELL_LEN × (n − m) / (t_n − t_m)
/// ```
///
/// The factor 2 counts both directions: each echoed cell crossed the relay twice, and a
/// relay's bandwidth limit (and its relayed bytes) count every cell in either direction. The
/// first half is left out so that the relay's token-bucket burst, the connection's slow start
/// and the pipeline filling do not inflate or deflate the figure. With `n < 2` the window is
/// the whole transfer (`m = 0`, `t_0 = 0`).
#[derive(Debug, Clone)]
pub struct Meter {
    cells: u64,
    seen: u64,
    mid: Duration,
    last: Duration,
}

impl Meter {
    /// A meter for a measurement of `cells` echoes.
    pub fn new(cells: u64) -> Self {
        Meter {
            cells,
            seen: 0,
            mid: Duration::ZERO,
            last: Duration::ZERO,
        }
    }

    /// Records the next echo, arrived `since_start` after the first cell was sent.
    pub fn on_echo(&mut self, since_start: Duration) {
        self.seen += 1;
        if self.seen == self.window_start() {
            self.mid = since_start;
        }
        self.last = since_start;
    }

    /// Echoes recorded.
    pub fn echoes(&self) -> u64 {
        self.seen
    }

    /// Whether every echo has come.
    pub fn complete(&self) -> bool {
        self.seen >= self.cells
    }

    fn window_start(&self) -> u64 {
        if self.cells < 2 { 0 } else { self.cells / 2 }
    }

    /// The measured rate in bytes per second, once every echo has come (`None` before). A
    /// window that took no measurable time counts as one microsecond.
    pub fn rate(&self) -> Option<u64> {
        if !self.complete() || self.cells == 0 {
            return None;
        }
        let counted = self.cells - self.window_start();
        let window = self.last.saturating_sub(self.mid).as_micros().max(1);
        let bytes = 2 * CELL_LEN as u128 * u128::from(counted);
        Some(u64::try_from(bytes * 1_000_000 / window).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests;
