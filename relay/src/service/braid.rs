//! One braided stream: a TCP connection whose bytes travel as splitter fragments over several
//! circuits ("strands") that end at the same exit. The same engine runs at the client (for the
//! app's socket) and at the exit (for the target's socket).
//!
//! Each direction has a [`Sender`] and the other end a [`Receiver`]; one fragment rides in one
//! `Data` message of a strand's circuit stream, acks ride back on the strand the fragment came
//! on. When a strand's circuit dies, the sender requeues what was in flight on it for the
//! survivors and the engine asks its [`StrandSupply`] for a replacement; the stream ends only
//! when no strand is left for `no_strand_timeout`.
//!
//! Keys: the client draws a 32-byte secret per stream and sends it to the exit inside the
//! onion-encrypted `BeginBraid` of the first strand, so only the client and the exit know it.
//! Both fragment keys ([`DirectionKeys`]) and the link id that other strands present in their
//! `Link` messages are derived from it; the scheduler's per-stream randomness too.
//!
//! Acks are batched per strand (see `acks`), several to a message.
//!
//! Everything is bounded: one pending data fragment, [`ACKS_PER_STRAND`] acks per strand,
//! `out_buffer` bytes for
//! a slow socket (the engine stops taking fragments beyond it, which stops the circuits), and
//! the splitter's own window.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use braid_splitter::wire::{Flags, HEADER_LEN, OVERHEAD, RawFragment};
use braid_splitter::{
    Config, DirectionKeys, Received, Receiver, ReceiverStats, SendAction, Sender, SenderStats,
    StrandId,
};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::mpsc;
use tracing::debug;

use crate::msg::{EndReason, RelayMsg, StreamId};

mod acks;

use acks::AckQueue;
pub use acks::{ACK_DELAY, ACK_EVERY, ACK_TOTAL, ACKS_PER_STRAND};

/// Context string for the link id (BLAKE3 `derive_key`).
const LINK_CONTEXT: &str = "braid braided stream link id v1";
/// Context string for the scheduler seeds.
const SEED_CONTEXT: &str = "braid braided stream scheduler seed v1";

/// The link id other strands present to join the stream whose secret is `secret`.
pub fn link_id(secret: &[u8; 32]) -> [u8; 32] {
    blake3::derive_key(LINK_CONTEXT, secret)
}

/// Which end of the stream this engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client: it opened the stream.
    Client,
    /// The exit.
    Exit,
}

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

/// Settings of one braided stream.
#[derive(Debug, Clone)]
pub struct BraidSettings {
    /// Splitter settings; both ends must use the same windows.
    pub splitter: Config,
    /// How long the stream waits with no live strand before it fails.
    pub no_strand_timeout: Duration,
    /// Received bytes held for a slow socket before the engine stops taking fragments.
    pub out_buffer: usize,
    /// A strand whose queue takes no fragment for this long is treated as lost (its circuit
    /// may be dead without anyone having noticed yet): its fragments go to the others.
    pub stall_timeout: Duration,
    /// A read of at most this many bytes while everything sent was acknowledged (a request or
    /// an answer, not part of a bulk transfer) is erasure-coded over the live strands, one
    /// shard each, any all-but-one of which rebuild it: a lost, altered or slow strand costs
    /// it no round trip. 0 turns this off.
    pub short_message: usize,
    /// Simulation fault: corrupt every n-th data fragment sent on this strand (never set by
    /// configuration files).
    pub corrupt: Option<(StrandId, u32)>,
}

/// Default [`BraidSettings::short_message`]: an HTTP request or a small answer.
pub const DEFAULT_SHORT_MESSAGE: usize = 4096;

impl Default for BraidSettings {
    fn default() -> Self {
        BraidSettings {
            // Fragments are not lost inside a live circuit (QUIC is reliable): only a dying
            // strand (handled at once) or an altered fragment loses one. A 1 s floor keeps
            // queueing delay on a busy machine from causing spurious resends.
            splitter: Config {
                min_rto_ms: std::num::NonZeroU32::new(1000).unwrap_or(std::num::NonZeroU32::MIN),
                ..Config::default()
            },
            no_strand_timeout: Duration::from_secs(20),
            out_buffer: 256 * 1024,
            stall_timeout: Duration::from_secs(2),
            short_message: DEFAULT_SHORT_MESSAGE,
            corrupt: None,
        }
    }
}

impl BraidSettings {
    /// These settings with the fragment payload cut to fit one `Data` message of `max_data`
    /// bytes.
    pub fn fitted(&self, max_data: usize) -> Result<Config, braid_splitter::Error> {
        let mut cfg = self.splitter.clone();
        let fit = max_data.saturating_sub(OVERHEAD).min(cfg.max_payload.get());
        cfg.max_payload =
            braid_splitter::config::PayloadLimit::try_from(u32::try_from(fit).unwrap_or(0))?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Bytes of one strand, for the share report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrandTally {
    /// The strand.
    pub strand: StrandId,
    /// Fragment bytes sent on it (data, resends and acks).
    pub bytes_sent: u64,
    /// Fragment bytes received on it.
    pub bytes_received: u64,
    /// Whether it went down before the stream ended.
    pub failed: bool,
}

/// What a braided stream did.
#[derive(Debug, Clone)]
pub struct BraidReport {
    /// Per strand, in id order.
    pub strands: Vec<StrandTally>,
    /// This end's sender.
    pub sent: SenderStats,
    /// This end's sender, per strand (RTT and rate estimates included).
    pub sent_per_strand: Vec<braid_splitter::StrandStats>,
    /// This end's receiver (`dropped` counts forged, altered, replayed fragments).
    pub received: ReceiverStats,
    /// `None` when both directions finished cleanly, or why the stream failed.
    pub failure: Option<EndReason>,
}

impl BraidReport {
    /// Fragments and acks this end rejected as not authentic or malformed (forged, altered,
    /// misrouted, wrong kind); authentic duplicates are not counted.
    pub fn rejected(&self) -> u64 {
        let bad = |d: &braid_splitter::DropCounts| {
            d.malformed + d.forged + d.wrong_stream + d.unexpected_kind
        };
        bad(&self.received.dropped) + bad(&self.sent.dropped)
    }
}

/// The splitter state of one end of a braided stream.
#[derive(Debug)]
pub struct Braid {
    sender: Sender,
    receiver: Receiver,
    /// The largest `Data` body this end sends (its largest fragment).
    max_data: usize,
}

impl Braid {
    /// The state for `role`'s end of the stream whose secret is `secret`, sending fragments of
    /// at most `max_data` bytes.
    pub fn new(
        settings: &BraidSettings,
        secret: &[u8; 32],
        role: Role,
        max_data: usize,
    ) -> Result<Self, braid_splitter::Error> {
        let cfg = settings.fitted(max_data)?;
        let keys = DirectionKeys::derive(secret);
        let (send_key, recv_key) = match role {
            Role::Client => (keys.initiator_to_responder, keys.responder_to_initiator),
            Role::Exit => (keys.responder_to_initiator, keys.initiator_to_responder),
        };
        let mut hasher = blake3::Hasher::new_derive_key(SEED_CONTEXT);
        hasher.update(secret);
        hasher.update(&[role as u8]);
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        let stream = braid_splitter::StreamId(1);
        Ok(Braid {
            max_data: cfg.max_payload.get() + OVERHEAD,
            sender: Sender::new(&cfg, stream, send_key, u64::from_le_bytes(seed))?,
            receiver: Receiver::new(&cfg, stream, recv_key)?,
        })
    }
}

/// Per-strand state of the engine.
struct Strand {
    link: Option<StrandLink>,
    tally: StrandTally,
    sends: u32,
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
    let Braid {
        mut sender,
        mut receiver,
        max_data,
    } = braid;
    let mut strands: BTreeMap<StrandId, Strand> = BTreeMap::new();
    let (mut rd, mut wr) = tcp.into_split();
    let clock = Instant::now();
    let now_ms = || u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut buf = vec![0u8; 64 * 1024];
    let mut carry: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::new();
    let mut out_pos = 0usize;
    let mut acks = AckQueue::default();

    let mut pending: Option<(StrandId, Bytes)> = None;
    // When the pending fragment's strand started refusing it.
    let mut blocked_since: Option<(StrandId, Instant)> = None;
    let mut app_eof = false;
    let mut wr_closed = false;
    let mut peer_done = false;
    let mut stranded_since: Option<Instant> = None;
    let mut answered = false;
    // Strands that came up before the engine started (the client links them beside its
    // `BeginBraid`) join before the first read, so the first bytes are split over all of them.
    let mut took_events = false;

    let failure = 'engine: loop {
        // Push bytes the window refused earlier.
        if !carry.is_empty() {
            match sender.write(&carry) {
                Ok(n) => {
                    carry.drain(..n);
                }
                Err(e) => {
                    debug!(error = %e, "braid: write refused");
                    break Some(EndReason::Misc);
                }
            }
        }
        let mut wake_at = None;
        let mut sender_done = false;
        if pending.is_none() {
            mark_blocked(&mut sender, &strands);
            match sender.poll(now_ms()) {
                Ok(SendAction::Transmit {
                    strand, fragment, ..
                }) => {
                    pending = Some((strand, outgoing(&mut strands, settings, strand, fragment)));
                }
                Ok(SendAction::Idle { wake_at: w }) => {
                    wake_at = w;
                }
                Ok(SendAction::NoStrand) => {}
                Ok(SendAction::Finished) => sender_done = true,
                Err(e) => {
                    debug!(error = %e, "braid: sender failed");
                    break Some(EndReason::Misc);
                }
            }
        }
        let flushed = out_pos == out.len();
        if receiver.is_finished() && flushed && !wr_closed {
            let _ = wr.shutdown().await;
            wr_closed = true;
            if !std::mem::replace(&mut answered, true) {
                supply.answered();
            }
        }
        let sent_all = sender_done || (peer_done && app_eof && carry.is_empty());
        if sent_all && wr_closed && acks.is_empty() {
            break None;
        }
        let live_now = live(&strands);
        if peer_done && !receiver.is_finished() && live_now == 0 {
            break Some(EndReason::Misc);
        }
        if live_now == 0 {
            // Nothing can move without a strand: wait for one, but not forever, and not at all
            // when none can come.
            stranded_since.get_or_insert_with(Instant::now);
            if supply.pending() == Some(0) && events.is_empty() {
                debug!("braid: every strand is lost and no replacement can come");
                break Some(EndReason::Misc);
            }
        } else {
            stranded_since = None;
        }
        let wake = wake_at.map(|ms| clock + Duration::from_millis(ms));
        blocked_since = match (&pending, blocked_since) {
            (Some((s, _)), Some((b, t))) if *s == b => Some((b, t)),
            (Some((s, _)), _) => Some((*s, Instant::now())),
            (None, _) => None,
        };
        let stall = blocked_since.map(|(_, t)| t + settings.stall_timeout);
        let stranded = stranded_since.map(|t| t + settings.no_strand_timeout);
        // Cloned handles (an atomic increment each) so that a permit does not borrow `strands`.
        let now = Instant::now();
        let ack_strand = acks.ready(now, receiver.is_finished(), |s| {
            link_of(&strands, s).is_some_and(|l| l.tx.capacity() > 0)
        });
        let ack_tx = ack_strand.and_then(|s| link_of(&strands, s)).cloned();
        if let Some(s) = ack_strand
            && ack_tx.is_none()
        {
            // Its strand is gone: those acks cannot be sent (the peer resends what they ack).
            acks.drop_strand(s);
            continue;
        }
        let ack_due = if ack_strand.is_none() {
            acks.next_due()
        } else {
            None
        };
        let data_tx = pending
            .as_ref()
            .and_then(|(s, _)| link_of(&strands, *s))
            .cloned();
        let room = if app_eof || !carry.is_empty() || (!took_events && !events.is_empty()) {
            0
        } else {
            sender.read_size(buf.len())
        };
        let take_events = out.len() - out_pos < settings.out_buffer;

        tokio::select! {
            permit = reserve(ack_tx.as_ref()), if ack_tx.is_some() => {
                let Some(strand) = ack_strand else { continue };
                match permit {
                    Some((permit, stream)) => {
                        let body = acks.take(strand, max_data);
                        if let Some(s) = strands.get_mut(&strand) {
                            s.tally.bytes_sent += body.len() as u64;
                        }
                        permit.send(RelayMsg::Data { stream, data: body.into() });
                    }
                    None => {
                        strand_down(&mut strands, &mut sender, &mut pending, &mut acks, supply, strand);
                    }
                }
            }
            permit = reserve(data_tx.as_ref()), if data_tx.is_some() => {
                let Some((strand, bytes)) = pending.take() else { continue };
                match permit {
                    Some((permit, stream)) => {
                        if let Some(s) = strands.get_mut(&strand) {
                            s.tally.bytes_sent += bytes.len() as u64;
                        }
                        permit.send(RelayMsg::Data { stream, data: bytes });
                        blocked_since = None;
                        // Queue a burst while there is room, so circuit writers see full
                        // queues and write (and flush) many cells at once.
                        if let Err(e) = burst(&mut sender, &mut strands, &mut pending, settings, now_ms()) {
                            debug!(error = %e, "braid: sender failed");
                            break Some(EndReason::Misc);
                        }
                    }
                    None => strand_down(&mut strands, &mut sender, &mut pending, &mut acks, supply, strand),
                }
            }
            written = wr.write(&out[out_pos..]), if !flushed => {
                match written {
                    Ok(n) if n > 0 => {
                        if !std::mem::replace(&mut answered, true) {
                            supply.answered();
                        }
                        out_pos += n;
                        if out_pos == out.len() {
                            out.clear();
                            out_pos = 0;
                        }
                    }
                    _ => break Some(EndReason::Misc),
                }
            }
            event = events.recv(), if take_events => {
                let Some(mut event) = event else {
                    // Every strand handle is gone: nothing can arrive or leave any more.
                    break Some(EndReason::Misc);
                };
                took_events = true;
                // Take what else has arrived too (bounded), then go round once.
                let mut handled = 0;
                loop {
                    match event {
                        StrandEvent::Up { strand, link } => {
                            if sender.add_strand(strand).is_err() {
                                let _ = link.tx.try_send(RelayMsg::End {
                                    stream: link.stream,
                                    reason: EndReason::Limit,
                                });
                            } else {
                                strands.insert(strand, Strand {
                                    link: Some(link),
                                    tally: StrandTally {
                                        strand,
                                        bytes_sent: 0,
                                        bytes_received: 0,
                                        failed: false,
                                    },
                                    sends: 0,
                                });
                            }
                        }
                        StrandEvent::Down { strand, ended } => match ended {
                            None => {
                                strand_down(&mut strands, &mut sender, &mut pending, &mut acks, supply, strand);
                            }
                            Some(EndReason::Done) => {
                                peer_done = true;
                                if let Some(s) = strands.get_mut(&strand) {
                                    s.link = None;
                                }
                            }
                            Some(reason) => {
                                debug!(?reason, "braid: the other end aborted the stream");
                                if let Some(s) = strands.get_mut(&strand) {
                                    s.link = None;
                                }
                                break 'engine Some(reason);
                            }
                        },
                        StrandEvent::Fragment { strand, bytes } => {
                            if let Some(s) = strands.get_mut(&strand) {
                                s.tally.bytes_received += bytes.len() as u64;
                            }
                            if let Err(why) = on_message(
                                &mut sender, &mut receiver, &mut out, &mut acks, strand, &bytes,
                                now_ms(),
                            ) {
                                break 'engine Some(why);
                            }
                        }
                    }
                    handled += 1;
                    if handled >= EVENT_BATCH || out.len() - out_pos >= settings.out_buffer {
                        break;
                    }
                    match events.try_recv() {
                        Ok(e) => event = e,
                        Err(_) => break,
                    }
                }
            }
            read = rd.read(&mut buf[..room]), if room > 0 => {
                match read {
                    Ok(0) => {
                        app_eof = true;
                        if let Err(e) = sender.finish() {
                            debug!(error = %e, "braid: finish refused");
                            break Some(EndReason::Misc);
                        }
                    }
                    Ok(n) => {
                        let n = top_up(&rd, &mut buf[..room], n);
                        match sender.write_short(&buf[..n], settings.short_message) {
                        Ok(taken) => carry.extend_from_slice(&buf[taken..n]),
                        Err(_) => break Some(EndReason::Misc),
                    }},
                    Err(_) => break Some(EndReason::Misc),
                }
            }
            _ = sleep_until(wake), if wake.is_some() => {}
            _ = sleep_until(ack_due), if ack_due.is_some() => {}
            _ = sleep_until(stall), if stall.is_some() => {
                if let Some((strand, _)) = blocked_since.take() {
                    debug!(strand = strand.0, "braid: strand stalled; treating it as lost");
                    strand_down(&mut strands, &mut sender, &mut pending, &mut acks, supply, strand);
                }
            }
            _ = sleep_until(stranded), if stranded.is_some() => {
                debug!("braid: no strand left");
                break Some(EndReason::Timeout);
            }
        }
    };
    let reason = failure.unwrap_or(EndReason::Done);
    for s in strands.values() {
        if let Some(link) = &s.link {
            let end = RelayMsg::End {
                stream: link.stream,
                reason,
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), link.tx.send(end)).await;
        }
    }
    if failure.is_some() {
        let _ = wr.shutdown().await;
    }
    BraidReport {
        strands: strands.values().map(|s| s.tally).collect(),
        sent: sender.stats(),
        sent_per_strand: sender.strand_stats(),
        received: receiver.stats(),
        failure,
    }
}

/// Fragments queued per burst, at most.
const BURST: usize = 32;
/// Events handled per wake-up, at most.
const EVENT_BATCH: usize = 32;

/// The bytes to send for a fragment the sender chose for `strand`: a shared handle on the
/// window's copy, or (with the simulation fault set for this strand) an altered copy.
fn outgoing(
    strands: &mut BTreeMap<StrandId, Strand>,
    settings: &BraidSettings,
    strand: StrandId,
    fragment: &Bytes,
) -> Bytes {
    if let Some(s) = strands.get_mut(&strand) {
        s.sends = s.sends.wrapping_add(1);
        if let Some((bad, every)) = settings.corrupt
            && bad == strand
            && every > 0
            && s.sends % every == 0
            && fragment.len() > HEADER_LEN
        {
            let mut altered = fragment.to_vec();
            altered[HEADER_LEN] ^= 0x01;
            return altered.into();
        }
    }
    fragment.clone()
}

/// Sends further fragments while their strands' queues have room, without waiting. A fragment
/// that finds no room becomes `pending`.
fn burst(
    sender: &mut Sender,
    strands: &mut BTreeMap<StrandId, Strand>,
    pending: &mut Option<(StrandId, Bytes)>,
    settings: &BraidSettings,
    now: u64,
) -> Result<(), braid_splitter::Error> {
    for _ in 0..BURST {
        mark_blocked(sender, strands);
        let (strand, bytes) = match sender.poll(now)? {
            SendAction::Transmit {
                strand, fragment, ..
            } => (strand, outgoing(strands, settings, strand, fragment)),
            _ => return Ok(()),
        };
        let len = bytes.len() as u64;
        let sent = match link_of(strands, strand) {
            Some(link) => match link.tx.try_reserve() {
                Ok(permit) => {
                    let stream = link.stream;
                    permit.send(RelayMsg::Data {
                        stream,
                        data: bytes,
                    });
                    true
                }
                Err(_) => {
                    *pending = Some((strand, bytes));
                    false
                }
            },
            None => {
                *pending = Some((strand, bytes));
                false
            }
        };
        if !sent {
            return Ok(());
        }
        if let Some(s) = strands.get_mut(&strand) {
            s.tally.bytes_sent += len;
        }
    }
    Ok(())
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

/// Tells the scheduler which strands' queues are full now, so it picks others.
fn mark_blocked(sender: &mut Sender, strands: &BTreeMap<StrandId, Strand>) {
    for (id, s) in strands {
        if let Some(link) = &s.link {
            sender.set_blocked(*id, link.tx.capacity() == 0);
        }
    }
}

fn live(strands: &BTreeMap<StrandId, Strand>) -> usize {
    strands.values().filter(|s| s.link.is_some()).count()
}

fn link_of(strands: &BTreeMap<StrandId, Strand>, s: StrandId) -> Option<&StrandLink> {
    strands.get(&s).and_then(|s| s.link.as_ref())
}

/// Reserves room in a strand's queue; `None` if its circuit is gone.
async fn reserve(link: Option<&StrandLink>) -> Option<(mpsc::Permit<'_, RelayMsg>, StreamId)> {
    let link = link?;
    link.tx.reserve().await.ok().map(|p| (p, link.stream))
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Marks `strand` lost: its acks are dropped, its fragments in flight go to the others, and the
/// supply is asked for a replacement. Nothing happens for a strand already down.
fn strand_down(
    strands: &mut BTreeMap<StrandId, Strand>,
    sender: &mut Sender,
    pending: &mut Option<(StrandId, Bytes)>,
    acks: &mut AckQueue,
    supply: &mut dyn StrandSupply,
    strand: StrandId,
) {
    acks.drop_strand(strand);
    let Some(s) = strands.get_mut(&strand) else {
        return;
    };
    if s.link.take().is_none() {
        return;
    }
    s.tally.failed = true;
    if pending.as_ref().is_some_and(|(p, _)| *p == strand) {
        *pending = None;
    }
    let requeued = sender.on_strand_failed(strand);
    debug!(strand = strand.0, requeued, "braid: strand down");
    supply.lost(strand, live(strands));
}

/// Handles one received message: one data fragment, or one or more acks back to back.
fn on_message(
    sender: &mut Sender,
    receiver: &mut Receiver,
    out: &mut Vec<u8>,
    acks: &mut AckQueue,
    strand: StrandId,
    bytes: &[u8],
    now: u64,
) -> Result<(), EndReason> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (one, next) = match RawFragment::read(rest) {
            Ok((raw, next)) => (raw.as_bytes(), next),
            // Unframeable: hand it over whole, to be counted as malformed.
            Err(_) => (rest, &[][..]),
        };
        on_fragment(sender, receiver, out, acks, strand, one, now)?;
        rest = next;
    }
    Ok(())
}

/// Handles one received fragment: an ack for our sender or data for our receiver.
fn on_fragment(
    sender: &mut Sender,
    receiver: &mut Receiver,
    out: &mut Vec<u8>,
    acks: &mut AckQueue,
    strand: StrandId,
    bytes: &[u8],
    now: u64,
) -> Result<(), EndReason> {
    let is_ack = RawFragment::parse_exact(bytes).is_ok_and(|r| r.flags().0 & Flags::ACK != 0);
    if is_ack {
        return match sender.on_ack(strand, bytes, now) {
            Ok(_) => Ok(()),
            Err(e) => {
                debug!(error = %e, "braid: bad ack from an authentic peer");
                Err(EndReason::Misc)
            }
        };
    }
    match receiver.on_fragment(strand, bytes, out) {
        Ok(Received::Accepted { ack, .. }) | Ok(Received::Duplicate { ack }) => {
            acks.push(ack.strand, ack.fragment, Instant::now());
            Ok(())
        }
        Ok(Received::Dropped(_)) => Ok(()),
        Err(e) => {
            debug!(error = %e, "braid: peer broke the stream");
            Err(EndReason::Misc)
        }
    }
}
