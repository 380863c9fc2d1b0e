//! The tokio driver of a braided stream: it runs a [`BraidEngine`] (the sans-IO engine in
//! `crate::braid`) on the app's (or the target's) TCP socket, the strands' outgoing circuit
//! queues and one timer, and tells the [`StrandSupply`] what the engine says. The client
//! (`router::strands`) and the exit (`service::exit_braid`) both run it.
//!
//! The driver holds at most one queue permit (reserved on a strand the engine waits on) and
//! drops it at the end of each round of polls; it reads the socket only as far as the engine
//! allows ([`BraidEngine::read_size`]) and tops reads up to whole fragments (`top_up`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use braid_splitter::StrandId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::{self, OwnedPermit};
use tracing::debug;

use crate::braid::{Action, BraidEngine, StrandEnd, StrandInput, StrandQueues, Transmit};
/// The core items a caller of [`run`] needs, where it finds `run`.
pub use crate::braid::{Braid, BraidReport, BraidSettings, Role, link_id};
use crate::msg::{EndReason, RelayMsg, StreamId};

#[cfg(test)]
mod tests;

/// Strand events handled per wake-up, at most.
const EVENT_BATCH: usize = 32;
/// App bytes read at once, at most.
const READ_BUFFER: usize = 64 * 1024;
/// How long the `End` of a finished stream waits for room in a strand's queue.
const END_WAIT: Duration = Duration::from_secs(1);

/// A permit for one message on a strand's queue.
type Held = Option<(StrandId, OwnedPermit<RelayMsg>)>;

/// A strand's way out: the circuit's outgoing queue and the stream id on that circuit.
#[derive(Debug, Clone)]
pub struct StrandLink {
    /// The circuit's outgoing message queue.
    pub tx: mpsc::Sender<RelayMsg>,
    /// The stream's id on that circuit.
    pub stream: StreamId,
}

/// What the strands tell a braided stream.
#[derive(Debug)]
pub enum StrandEvent {
    /// The strand is linked and may carry fragments.
    Up {
        /// The strand.
        strand: StrandId,
        /// Where to send on it.
        link: StrandLink,
    },
    /// One fragment (a `Data` message's bytes) arrived on the strand.
    Fragment {
        /// The strand it came on.
        strand: StrandId,
        /// The fragment.
        bytes: Vec<u8>,
    },
    /// The strand's circuit or stream ended.
    Down {
        /// The strand.
        strand: StrandId,
        /// `None`: the circuit was lost (a replacement may be built). `Some(Done)`: the other
        /// end finished the whole stream. `Some(other)`: the other end aborted the stream.
        ended: Option<EndReason>,
    },
}

/// Tells a stream's engine that `strand` is gone (`ended: None`: its circuit was lost), without
/// blocking the caller: when the engine's queue is full the event is sent from a task.
pub fn notify_down(events: mpsc::Sender<StrandEvent>, strand: StrandId, ended: Option<EndReason>) {
    let down = StrandEvent::Down { strand, ended };
    if let Err(mpsc::error::TrySendError::Full(down)) = events.try_send(down) {
        tokio::spawn(async move {
            let _ = events.send(down).await;
        });
    }
}

/// Finds replacement strands (the client builds a new circuit; the exit cannot).
pub trait StrandSupply: Send {
    /// `strand` went down; `live` strands are left. A replacement arrives later as
    /// [`StrandEvent::Up`], if at all.
    fn lost(&mut self, strand: StrandId, live: usize);

    /// The first bytes from the other end were written to the app, or it ended without any
    /// (called at most once). The client starts its next preemptive build here, after the
    /// stream's first round trip.
    fn answered(&mut self) {}

    /// How many strands may still arrive (links and replacements under way), or `None` if
    /// unknown (the exit cannot know whether the client will link another). With `Some(0)`
    /// and no live strand, the stream fails at once instead of waiting `no_strand_timeout`.
    fn pending(&self) -> Option<usize> {
        None
    }
}

/// A supply that never replaces a strand (the exit's).
#[derive(Debug, Default)]
pub struct NoSupply;

impl StrandSupply for NoSupply {
    fn lost(&mut self, _strand: StrandId, _live: usize) {}
}

/// Runs the stream on `tcp` until both directions finished or it failed; sends `End` on every
/// live strand at the end.
pub async fn run(
    tcp: TcpStream,
    braid: Braid,
    mut events: mpsc::Receiver<StrandEvent>,
    supply: &mut dyn StrandSupply,
    settings: &BraidSettings,
) -> BraidReport {
    let mut engine = BraidEngine::new(braid, settings, Instant::now());
    let mut links = BTreeMap::new();
    let (mut rd, mut wr) = tcp.into_split();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut held: Held = None;
    // Strands that came up before the engine started (the client links them beside its
    // `BeginBraid`) join before the first read, so the first bytes are split over all of them.
    let mut took_events = false;
    loop {
        let now = Instant::now();
        loop {
            let view = View {
                links: &links,
                held: &held,
                supply: &*supply,
                events: &events,
            };
            let Some(action) = poll(&mut engine, now, view) else {
                break;
            };
            match action {
                Action::Transmit(t) => transmit(&mut engine, &links, &mut held, now, t),
                Action::Lost { strand, live } => {
                    debug!(strand = strand.0, live, "braid: strand down");
                    supply.lost(strand, live);
                }
                Action::Answered => supply.answered(),
                Action::CloseApp => drop(wr.shutdown().await),
                Action::End { strand, reason } => {
                    if let Some(l) = links.get(&strand) {
                        let end = RelayMsg::End {
                            stream: l.stream,
                            reason,
                        };
                        let _ = tokio::time::timeout(END_WAIT, l.tx.send(end)).await;
                    }
                }
                Action::Finished(report) => return report,
            }
        }
        held = None;
        let [data_wait, ack_wait] = engine.blocked_on();
        let room = match !took_events && !events.is_empty() {
            true => 0,
            false => engine.read_size(buf.len()),
        };
        let deadline = engine.poll_timeout();
        let out = engine.app_output();
        tokio::select! {
            r = room_on(&links, data_wait), if data_wait.is_some() => held = permit(&mut engine, r),
            r = room_on(&links, ack_wait), if ack_wait.is_some() => held = permit(&mut engine, r),
            w = wr.write(out), if !out.is_empty() => match w {
                Ok(n) if n > 0 => engine.consume_app_output(n),
                _ => engine.abort(EndReason::Misc),
            },
            ev = events.recv(), if engine.wants_events() => {
                took_events = true;
                take_events(&mut engine, &mut links, &mut events, ev);
            }
            r = rd.read(&mut buf[..room]), if room > 0 => match r {
                Ok(0) => engine.handle_app_eof(Instant::now()),
                Ok(n) => {
                    let n = top_up(&rd, &mut buf[..room], n);
                    engine.handle_app_data(Instant::now(), &buf[..n]);
                }
                Err(_) => engine.abort(EndReason::Misc),
            },
            () = sleep_until(deadline), if deadline.is_some() => engine.handle_timeout(Instant::now()),
        }
    }
}

/// One poll, with the view dropped before the driver awaits (a `dyn StrandSupply` is not `Sync`).
fn poll(engine: &mut BraidEngine, now: Instant, view: View<'_>) -> Option<Action> {
    engine.poll_action(now, &view)
}

/// What the engine asks about the strands: room in their queues, strands still to come.
struct View<'a> {
    links: &'a BTreeMap<StrandId, StrandLink>,
    held: &'a Held,
    supply: &'a dyn StrandSupply,
    events: &'a mpsc::Receiver<StrandEvent>,
}

impl StrandQueues for View<'_> {
    fn has_room(&self, strand: StrandId) -> bool {
        self.held.as_ref().is_some_and(|(s, _)| *s == strand)
            || self.links.get(&strand).is_some_and(|l| l.tx.capacity() > 0)
    }

    fn strands_to_come(&self) -> Option<usize> {
        // A queued event may be an `Up`.
        self.events
            .is_empty()
            .then(|| self.supply.pending())
            .flatten()
    }
}

/// Queues `t` on its strand with the held permit or room there is now; else the engine keeps it.
fn transmit(
    engine: &mut BraidEngine,
    links: &BTreeMap<StrandId, StrandLink>,
    held: &mut Held,
    now: Instant,
    t: Transmit,
) {
    let Some(link) = links.get(&t.strand) else {
        return engine.transmit_blocked(now, t);
    };
    let data = |t: Transmit| RelayMsg::Data {
        stream: link.stream,
        data: t.data,
    };
    if let Some((_, permit)) = held.take_if(|(s, _)| *s == t.strand) {
        permit.send(data(t));
    } else {
        match link.tx.try_reserve() {
            Ok(permit) => permit.send(data(t)),
            Err(TrySendError::Full(())) => engine.transmit_blocked(now, t),
            // The circuit is gone; the sender requeues what it had sent on it.
            Err(TrySendError::Closed(())) => {
                let _ = engine.handle_event(
                    now,
                    StrandInput::Down {
                        strand: t.strand,
                        end: StrandEnd::Lost,
                    },
                );
            }
        }
    }
}

/// Hands `first` and whatever else has arrived, [`EVENT_BATCH`] events at most, to the
/// engine; the rest stay queued.
fn take_events(
    engine: &mut BraidEngine,
    links: &mut BTreeMap<StrandId, StrandLink>,
    events: &mut mpsc::Receiver<StrandEvent>,
    first: Option<StrandEvent>,
) {
    // No event: every strand handle is gone, nothing can arrive or leave any more.
    let Some(mut event) = first else {
        return engine.abort(EndReason::Misc);
    };
    let mut handled = 0;
    loop {
        let now = Instant::now();
        let _ = match event {
            StrandEvent::Up { strand, link } => {
                match engine.handle_event(now, StrandInput::Up { strand }) {
                    Ok(()) => drop(links.insert(strand, link)),
                    Err(_) => drop(link.tx.try_send(RelayMsg::End {
                        stream: link.stream,
                        reason: EndReason::Limit,
                    })),
                }
                Ok(())
            }
            StrandEvent::Fragment { strand, bytes } => engine.handle_event(
                now,
                StrandInput::Fragment {
                    strand,
                    bytes: &bytes,
                },
            ),
            StrandEvent::Down { strand, ended } => engine.handle_event(
                now,
                StrandInput::Down {
                    strand,
                    end: ended.into(),
                },
            ),
        };
        // Stop before taking one more: an event taken off the queue must be handled.
        handled += 1;
        if handled >= EVENT_BATCH || !engine.wants_events() {
            return;
        }
        match events.try_recv() {
            Ok(e) => event = e,
            Err(_) => return,
        }
    }
}

/// Waits for room in `strand`'s queue; `None` when its circuit is gone.
async fn room_on(
    links: &BTreeMap<StrandId, StrandLink>,
    strand: Option<StrandId>,
) -> (StrandId, Option<OwnedPermit<RelayMsg>>) {
    match strand.and_then(|s| Some((s, links.get(&s)?.tx.clone()))) {
        Some((s, tx)) => (s, tx.reserve_owned().await.ok()),
        None => std::future::pending().await,
    }
}

/// Holds a permit, or tells the engine the strand's queue closed.
fn permit(
    engine: &mut BraidEngine,
    (strand, p): (StrandId, Option<OwnedPermit<RelayMsg>>),
) -> Held {
    if p.is_none() {
        let down = StrandInput::Down {
            strand,
            end: StrandEnd::Lost,
        };
        let _ = engine.handle_event(Instant::now(), down);
    }
    p.map(|p| (strand, p))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Fills `buf` past its first `n` bytes with whatever the socket already holds, without
/// waiting, so a read that raced the application's writes does not end in a short fragment
/// (each fragment costs a whole cell on every hop). End of stream and errors are left for the
/// next read to see.
fn top_up(rd: &OwnedReadHalf, buf: &mut [u8], mut n: usize) -> usize {
    while n < buf.len() {
        match rd.try_read(&mut buf[n..]) {
            Ok(0) | Err(_) => break,
            Ok(more) => n += more,
        }
    }
    n
}
