//! The exit's side of braided streams: the table that binds strands from different circuits
//! to one stream by its link id, and the task that connects and runs the stream's engine.
//!
//! A `BeginBraid` on one circuit opens the stream (after the target connected, its link id is
//! registered); a `Link` on another circuit whose id is registered joins it as one more strand,
//! up to the splitter's strand limit. Unknown link ids, full tables and full stream sets get an
//! `End`, and nothing else changes. Link ids are derived from a secret only the client and this
//! exit know, and travel only inside the onion layers, so no relay can join a stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use braid_splitter::StrandId;
use braid_splitter::config::MAX_STRANDS;
use tokio::sync::mpsc;
use tracing::debug;

use super::RelayStats;
use super::braid::{self, Braid, NoSupply, Role, StrandEvent, StrandLink};
use super::exit::{ExitContext, connect};
use crate::msg::{EndReason, RelayMsg, StreamId, Target};

/// Events queued towards one braided stream's engine.
pub(crate) const EVENT_QUEUE: usize = 64;

struct Slot {
    events: mpsc::Sender<StrandEvent>,
    strands: u8,
}

/// Open braided streams by link id (bounded).
pub(crate) struct BraidTable {
    max: usize,
    slots: Mutex<HashMap<[u8; 32], Slot>>,
}

impl BraidTable {
    pub(crate) fn new(max: usize) -> Self {
        BraidTable {
            max,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Registers a stream's first strand; false if the table is full or the id is taken.
    fn register(&self, link: [u8; 32], events: mpsc::Sender<StrandEvent>) -> bool {
        let Ok(mut slots) = self.slots.lock() else {
            return false;
        };
        if slots.len() >= self.max || slots.contains_key(&link) {
            return false;
        }
        slots.insert(link, Slot { events, strands: 1 });
        true
    }

    /// Takes the next strand id of the stream `link`, if it exists and has room.
    pub(crate) fn join(&self, link: &[u8; 32]) -> Option<(StrandId, mpsc::Sender<StrandEvent>)> {
        let mut slots = self.slots.lock().ok()?;
        let slot = slots.get_mut(link)?;
        if slot.strands >= MAX_STRANDS {
            return None;
        }
        let id = StrandId(u32::from(slot.strands));
        slot.strands += 1;
        Some((id, slot.events.clone()))
    }

    fn remove(&self, link: &[u8; 32]) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.remove(link);
        }
    }

    /// Whether a new stream fits.
    pub(crate) fn has_room(&self) -> bool {
        self.slots
            .lock()
            .map(|s| s.len() < self.max)
            .unwrap_or(false)
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
    let end = |reason| RelayMsg::End { stream, reason };
    let tcp = match connect(&target, &ctx).await {
        Ok(tcp) => tcp,
        Err(reason) => {
            debug!(target = ?target, ?reason, "exit connect failed (braided)");
            let _ = to_circuit.send(end(reason)).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let state = match Braid::new(&ctx.braid, &secret, Role::Exit, max_data) {
        Ok(s) => s,
        Err(e) => {
            debug!(error = %e, "braided stream refused");
            let _ = to_circuit.send(end(EndReason::Misc)).await;
            return;
        }
    };
    let link = braid::link_id(&secret);
    if !ctx.braids.register(link, events_tx.clone()) {
        let _ = to_circuit.send(end(EndReason::Limit)).await;
        return;
    }
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
        ctx.braids.remove(&link);
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
