//! One exit circuit's stream table, and what the exit does with each relay message the client
//! sends on it: one method per message kind.
//!
//! [`ExitCircuit`] reads and writes no cells: `run_exit` opens each cell and hands over the
//! message, and every answer goes into the bounded queue that `run_exit`'s write loop seals
//! and sends. Each method returns a [`Step`]: carry on, or close the circuit with an
//! [`Outcome`]. The rules:
//!
//! - A stream id already in use, or a `Connected`/`Linked` (which only the exit sends), is a
//!   protocol violation and closes the circuit ([`Outcome::Protocol`]).
//! - A `Begin`, `BeginBraid` or `Link` beyond the stream limit is answered `End{Limit}`
//!   (a `Link`: `End{Misc}`), and nothing else changes. A `BeginBraid` whose link id already
//!   began is answered `End{Misc}`.
//! - A quiet `Link` that joins gets no answer; a refused one gets `End{Misc}`.
//! - `Data` to a stream that has gone forgets it; messages for unknown streams are dropped.
//! - Unknown commands are ignored (logged at debug).
//!
//! Not here: connecting to targets and running plain streams (`exit/connect.rs`), and the
//! braided streams' table and engine (`exit_braid`).

use std::collections::HashMap;
use std::sync::Arc;

use braid_splitter::StrandId;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::ExitContext;
use super::connect::run_stream;
use crate::braid::link_id;
use crate::msg::{EndReason, RelayMsg, StreamId, Target};
use crate::service::Outcome;
use crate::service::exit_braid::{BeginRefused, BraidStart, run_braid};
use crate::shared::braid::{StrandEvent, StrandLink, notify_down};
use crate::shared::pump::StreamCmd;

#[cfg(test)]
mod tests;

/// What the circuit does after a message.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// Read the next cell.
    Continue,
    /// Close the circuit with this outcome.
    Close(Outcome),
}

/// A stream of this circuit: a plain one with its own task, or one strand of a braided stream.
enum StreamEntry {
    Plain {
        tx: mpsc::Sender<StreamCmd>,
        task: JoinHandle<()>,
    },
    Strand {
        strand: StrandId,
        events: mpsc::Sender<StrandEvent>,
    },
}

impl StreamEntry {
    /// A strand whose stream has ended holds no resources: it no longer counts.
    fn is_live(&self) -> bool {
        match self {
            StreamEntry::Plain { .. } => true,
            StreamEntry::Strand { events, .. } => !events.is_closed(),
        }
    }

    /// Stops a plain stream's task, or tells a braided stream's engine its strand is down.
    fn end(self, ended: Option<EndReason>) {
        match self {
            StreamEntry::Plain { task, .. } => task.abort(),
            StreamEntry::Strand { strand, events } => notify_down(events, strand, ended),
        }
    }
}

/// The exit end of one circuit: its streams, and the queues to the client and from finished
/// stream tasks.
pub(super) struct ExitCircuit {
    ctx: Arc<ExitContext>,
    streams: HashMap<StreamId, StreamEntry>,
    /// Messages to the client (the write loop's queue).
    to_client: mpsc::Sender<RelayMsg>,
    /// Given to each plain stream's task, which reports its id when it finishes.
    done_tx: mpsc::Sender<StreamId>,
    done_rx: mpsc::Receiver<StreamId>,
    /// The most data bytes one cell towards the client carries.
    max_data: usize,
}

impl ExitCircuit {
    /// A circuit with no streams, answering into `to_client`.
    pub(super) fn new(
        ctx: Arc<ExitContext>,
        to_client: mpsc::Sender<RelayMsg>,
        max_data: usize,
    ) -> Self {
        let (done_tx, done_rx) = mpsc::channel(ctx.max_streams.max(1));
        ExitCircuit {
            ctx,
            streams: HashMap::new(),
            to_client,
            done_tx,
            done_rx,
            max_data,
        }
    }

    /// Forgets plain streams whose task finished and strands whose braided stream ended, so
    /// they no longer count against the stream limit.
    pub(super) fn forget_finished(&mut self) {
        while let Ok(id) = self.done_rx.try_recv() {
            if matches!(self.streams.get(&id), Some(StreamEntry::Plain { .. })) {
                self.streams.remove(&id);
            }
        }
        self.streams.retain(|_, e| e.is_live());
    }

    /// Handles one message from the client.
    pub(super) async fn on_message(&mut self, msg: RelayMsg) -> Step {
        match msg {
            RelayMsg::Begin { stream, target } => self.on_begin(stream, target).await,
            RelayMsg::BeginBraid {
                stream,
                secret,
                target,
            } => self.on_begin_braid(stream, secret, target).await,
            RelayMsg::Link {
                stream,
                link,
                quiet,
            } => self.on_link(stream, link, quiet).await,
            RelayMsg::Data { stream, data } => self.on_data(stream, data).await,
            RelayMsg::Eof { stream } => self.on_eof(stream).await,
            RelayMsg::End { stream, reason } => self.on_end(stream, reason),
            // Only the exit sends these; measurements run on measurement circuits only.
            RelayMsg::Connected { .. }
            | RelayMsg::Linked { .. }
            | RelayMsg::BeginMeasure { .. } => Step::Close(Outcome::Protocol),
            RelayMsg::Unknown { command, .. } => self.on_unknown(command),
        }
    }

    /// `Begin`: opens a plain stream, whose task connects and answers.
    async fn on_begin(&mut self, stream: StreamId, target: Target) -> Step {
        if self.streams.contains_key(&stream) {
            return Step::Close(Outcome::Protocol);
        }
        if !self.has_room() {
            let reason = EndReason::Limit;
            return self.answer(RelayMsg::End { stream, reason }).await;
        }
        let (tx, rx) = mpsc::channel(self.ctx.stream_queue);
        let task = tokio::spawn(run_stream(
            stream,
            target,
            self.ctx.clone(),
            self.max_data,
            rx,
            self.to_client.clone(),
            self.done_tx.clone(),
        ));
        self.streams.insert(stream, StreamEntry::Plain { tx, task });
        Step::Continue
    }

    /// `BeginBraid`: opens a braided stream with this circuit's stream as strand 0; its task
    /// connects and answers.
    async fn on_begin_braid(&mut self, stream: StreamId, secret: [u8; 32], target: Target) -> Step {
        if self.streams.contains_key(&stream) {
            return Step::Close(Outcome::Protocol);
        }
        let begun = if self.has_room() {
            self.ctx.braids.begin(link_id(&secret))
        } else {
            Err(BeginRefused::Full)
        };
        let (events_tx, events) = match begun {
            Ok(channel) => channel,
            Err(why) => {
                let reason = match why {
                    BeginRefused::Full => EndReason::Limit,
                    BeginRefused::Taken => EndReason::Misc,
                };
                return self.answer(RelayMsg::End { stream, reason }).await;
            }
        };
        self.streams.insert(
            stream,
            StreamEntry::Strand {
                strand: StrandId(0),
                events: events_tx.clone(),
            },
        );
        let start = BraidStart {
            stream,
            secret,
            target,
            max_data: self.max_data,
            events,
            events_tx,
            to_circuit: self.to_client.clone(),
        };
        tokio::spawn(run_braid(start, self.ctx.clone(), self.ctx.stats.clone()));
        Step::Continue
    }

    /// `Link`: joins this circuit's stream to the braided stream `link` as one more strand.
    /// Answers `Linked` unless `quiet`, or `End{Misc}` when refused.
    async fn on_link(&mut self, stream: StreamId, link: [u8; 32], quiet: bool) -> Step {
        if self.streams.contains_key(&stream) {
            return Step::Close(Outcome::Protocol);
        }
        let refused = RelayMsg::End {
            stream,
            reason: EndReason::Misc,
        };
        let joined = if self.has_room() {
            self.ctx.braids.join(&link)
        } else {
            None
        };
        let Some((strand, events)) = joined else {
            return self.answer(refused).await;
        };
        let up = StrandEvent::Up {
            strand,
            link: StrandLink {
                tx: self.to_client.clone(),
                stream,
            },
        };
        if events.send(up).await.is_err() {
            return self.answer(refused).await;
        }
        self.streams
            .insert(stream, StreamEntry::Strand { strand, events });
        if quiet {
            return Step::Continue;
        }
        self.answer(RelayMsg::Linked { stream }).await
    }

    /// `Data`: hands the bytes to the stream's task or engine; forgets a stream that has gone.
    async fn on_data(&mut self, stream: StreamId, data: Bytes) -> Step {
        let alive = match self.streams.get(&stream) {
            Some(StreamEntry::Plain { tx, .. }) => {
                tx.send(StreamCmd::Data(data.into())).await.is_ok()
            }
            Some(StreamEntry::Strand { strand, events }) => {
                let ev = StrandEvent::Fragment {
                    strand: *strand,
                    bytes: data.into(),
                };
                events.send(ev).await.is_ok()
            }
            None => true,
        };
        if !alive {
            self.streams.remove(&stream);
        }
        Step::Continue
    }

    /// `Eof`: half-closes a plain stream (a braided stream's end travels inside its fragments).
    async fn on_eof(&mut self, stream: StreamId) -> Step {
        if let Some(StreamEntry::Plain { tx, .. }) = self.streams.get(&stream) {
            let _ = tx.send(StreamCmd::Eof).await;
        }
        Step::Continue
    }

    /// `End`: drops the stream at once.
    fn on_end(&mut self, stream: StreamId, reason: EndReason) -> Step {
        if let Some(s) = self.streams.remove(&stream) {
            s.end(Some(reason));
        }
        Step::Continue
    }

    /// A command this exit does not know: ignored, so newer clients can add optional ones.
    fn on_unknown(&self, command: u8) -> Step {
        debug!(command, "ignoring unknown relay command");
        Step::Continue
    }

    /// Ends every stream: the circuit is gone (`ended: None`, so a braided stream may replace
    /// the strand).
    pub(super) fn close(mut self) {
        for (_, s) in self.streams.drain() {
            s.end(None);
        }
    }

    /// Whether one more stream fits under the limit.
    fn has_room(&self) -> bool {
        self.streams.len() < self.ctx.max_streams
    }

    /// Queues `msg` to the client; the circuit is closed if the write loop has gone.
    async fn answer(&self, msg: RelayMsg) -> Step {
        if self.to_client.send(msg).await.is_err() {
            Step::Close(Outcome::Closed)
        } else {
            Step::Continue
        }
    }
}
