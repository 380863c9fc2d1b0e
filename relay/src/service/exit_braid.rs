//! The exit's side of braided streams: the table that binds strands from different circuits
//! to one stream by its link id, and the task that connects and runs the stream's engine.
//!
//! A `BeginBraid` on one circuit opens the stream as strand 0; a `Link` on another circuit
//! with the same link id joins it as one more strand, up to the splitter's strand limit. The
//! client sends the `Link`s together with the `BeginBraid` (as Tor's Conflux sends its LINKs),
//! so a `Link` may arrive first: it opens the stream's slot and waits there, answered, for at
//! most [`EARLY_LINK_TTL`]; if no `BeginBraid` comes, or the stream cannot connect, its strands
//! are ended. Full tables and full stream sets get an `End`, and nothing else changes. Link
//! ids are derived from a secret only the client and this exit know, and travel only inside
//! the onion layers, so no relay can join a stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use braid_splitter::StrandId;
use braid_splitter::config::MAX_STRANDS;
use tokio::sync::mpsc;
use tracing::debug;

use super::RelayStats;
use super::exit::{ExitContext, connect};
use crate::msg::{EndReason, RelayMsg, StreamId, Target};
use crate::shared::braid::{self, Braid, NoSupply, Role, StrandEvent, StrandLink};

#[cfg(test)]
mod tests;

/// Events queued towards one braided stream's engine.
pub(crate) const EVENT_QUEUE: usize = 64;

/// How long strands linked before their stream's `BeginBraid` wait for it.
pub(crate) const EARLY_LINK_TTL: Duration = Duration::from_secs(5);

struct Slot {
    events: mpsc::Sender<StrandEvent>,
    /// The engine's end of `events` until the `BeginBraid` takes it: the slot was opened by
    /// an early `Link`, whose `Up` waits in it.
    waiting: Option<mpsc::Receiver<StrandEvent>>,
    /// Strand ids handed out (0 is always the `BeginBraid`'s).
    strands: u8,
    opened: Instant,
}

/// Open braided streams by link id (bounded).
pub(crate) struct BraidTable {
    max: usize,
    /// How long early links wait for their `BeginBraid` ([`EARLY_LINK_TTL`]).
    ttl: Duration,
    slots: Mutex<HashMap<[u8; 32], Slot>>,
}

/// Why a `BeginBraid` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BeginRefused {
    /// The table is full.
    Full,
    /// A stream with this link id already began (a replayed or repeated `BeginBraid`).
    Taken,
}

impl BraidTable {
    pub(crate) fn new(max: usize) -> Self {
        BraidTable {
            max,
            ttl: EARLY_LINK_TTL,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Begins the stream `link` (its strand 0): where its events go, and the engine's end of
    /// them, which already holds the `Up` of every strand linked early.
    pub(crate) fn begin(
        &self,
        link: [u8; 32],
    ) -> Result<(mpsc::Sender<StrandEvent>, mpsc::Receiver<StrandEvent>), BeginRefused> {
        let mut slots = self.slots.lock().map_err(|_| BeginRefused::Full)?;
        sweep(&mut slots, self.ttl);
        if let Some(slot) = slots.get_mut(&link) {
            let waiting = slot.waiting.take().ok_or(BeginRefused::Taken)?;
            return Ok((slot.events.clone(), waiting));
        }
        if slots.len() >= self.max {
            return Err(BeginRefused::Full);
        }
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        slots.insert(link, Slot::new(events.clone(), None, 1));
        Ok((events, rx))
    }

    /// Takes the next strand id of the stream `link` and where its events go. A `Link` that
    /// comes before its stream's `BeginBraid` opens the slot (it waits there at most
    /// [`EARLY_LINK_TTL`]). `None` if the stream has 8 strands or the table is full.
    pub(crate) fn join(&self, link: &[u8; 32]) -> Option<(StrandId, mpsc::Sender<StrandEvent>)> {
        let mut slots = self.slots.lock().ok()?;
        sweep(&mut slots, self.ttl);
        if let Some(slot) = slots.get_mut(link) {
            if slot.strands >= MAX_STRANDS {
                return None;
            }
            let id = StrandId(u32::from(slot.strands));
            slot.strands += 1;
            return Some((id, slot.events.clone()));
        }
        if slots.len() >= self.max {
            return None;
        }
        let (events, rx) = mpsc::channel(EVENT_QUEUE);
        slots.insert(*link, Slot::new(events.clone(), Some(rx), 2));
        Some((StrandId(1), events))
    }

    fn remove(&self, link: &[u8; 32]) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(link);
        }
    }

    /// Open slots (begun or waiting).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl Slot {
    fn new(
        events: mpsc::Sender<StrandEvent>,
        waiting: Option<mpsc::Receiver<StrandEvent>>,
        strands: u8,
    ) -> Self {
        Slot {
            events,
            waiting,
            strands,
            opened: Instant::now(),
        }
    }
}

/// Drops the slots whose early links waited `ttl` for their `BeginBraid`, ending them.
fn sweep(slots: &mut HashMap<[u8; 32], Slot>, ttl: Duration) {
    slots.retain(|_, slot| {
        if slot.opened.elapsed() < ttl {
            return true;
        }
        match slot.waiting.take() {
            Some(waiting) => {
                end_links(waiting);
                false
            }
            None => true,
        }
    });
}

/// Ends every strand that linked to a stream that will not run (no `BeginBraid` came, or the
/// target could not be reached). Closing the queue also drops the strands' stream entries at
/// their circuits.
fn end_links(mut events: mpsc::Receiver<StrandEvent>) {
    events.close();
    while let Ok(event) = events.try_recv() {
        if let StrandEvent::Up { link, .. } = event {
            let end = RelayMsg::End {
                stream: link.stream,
                reason: EndReason::Misc,
            };
            let _ = link.tx.try_send(end);
        }
    }
}

/// Everything the braided stream task needs.
pub(crate) struct BraidStart {
    pub stream: StreamId,
    pub secret: [u8; 32],
    pub target: Target,
    pub max_data: usize,
    pub events: mpsc::Receiver<StrandEvent>,
    pub events_tx: mpsc::Sender<StrandEvent>,
    pub to_circuit: mpsc::Sender<RelayMsg>,
}

/// Connects to the target, registers the stream and runs it to the end.
pub(crate) async fn run_braid(start: BraidStart, ctx: Arc<ExitContext>, stats: Arc<RelayStats>) {
    let BraidStart {
        stream,
        secret,
        target,
        max_data,
        events,
        events_tx,
        to_circuit,
    } = start;
    let link = braid::link_id(&secret);
    // The stream will not run: free its slot and end the strands that linked early.
    let abandon = |events| {
        ctx.braids.remove(&link);
        end_links(events);
    };
    let end = |reason| RelayMsg::End { stream, reason };
    let tcp = match connect(&target, &ctx).await {
        Ok(tcp) => tcp,
        Err(reason) => {
            debug!(target = ?target, ?reason, "exit connect failed (braided)");
            abandon(events);
            let _ = to_circuit.send(end(reason)).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let state = match Braid::new(&ctx.braid, &secret, Role::Exit, max_data) {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "braided stream refused");
            abandon(events);
            let _ = to_circuit.send(end(EndReason::Misc)).await;
            return;
        }
    };
    let up = StrandEvent::Up {
        strand: StrandId(0),
        link: StrandLink {
            tx: to_circuit.clone(),
            stream,
        },
    };
    if events_tx.send(up).await.is_err()
        || to_circuit
            .send(RelayMsg::Connected { stream })
            .await
            .is_err()
    {
        abandon(events);
        return;
    }
    drop(events_tx);
    drop(to_circuit);
    let report = braid::run(tcp, state, events, &mut NoSupply, &ctx.braid).await;
    ctx.braids.remove(&link);
    use std::sync::atomic::Ordering::Relaxed;
    stats.braids.fetch_add(1, Relaxed);
    stats
        .fragments_rejected
        .fetch_add(report.rejected(), Relaxed);
    stats
        .fragments_resent
        .fetch_add(report.sent.fragments_resent, Relaxed);
    for st in &report.sent_per_strand {
        debug!(
            strand = st.strand.0,
            sent = st.fragments_sent,
            resent = st.fragments_resent,
            srtt_ms = st.srtt_ms,
            rate = st.rate_bytes_per_ms,
            "braided stream strand"
        );
    }
    debug!(failure = ?report.failure, resent = report.sent.fragments_resent, timeouts = report.sent.timeouts, "braided stream ended");
}
