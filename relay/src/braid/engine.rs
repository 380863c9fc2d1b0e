//! [`BraidEngine`]: one end of a braided stream as a sans-IO state machine (quinn-proto's
//! shape). It holds the splitter's [`Sender`] and [`Receiver`], the ack batches, the strands'
//! bookkeeping, the bytes waiting for the app and the stall and stranded clocks; it owns no
//! socket, queue, task or timer. Its driver (`shared::braid::run` with tokio, or a test with a
//! virtual clock) owns the app socket, one outgoing queue per strand and one timer.
//!
//! # Call order
//!
//! The driver loops:
//!
//! 1. `poll_action(now, &queues)` until it returns `None`, doing each [`Action`] at once. A
//!    [`Transmit`] goes into its strand's queue; if that queue has no room after all it goes
//!    back through [`BraidEngine::transmit_blocked`]. [`Action::Finished`] is the last action.
//! 2. Waits for the first of: room in the queue of a strand named by
//!    [`BraidEngine::blocked_on`] (a driver that reserves that room says so through
//!    [`StrandQueues::has_room`] at the next poll); the app taking bytes of
//!    [`BraidEngine::app_output`] ([`BraidEngine::consume_app_output`]); a strand event while
//!    [`BraidEngine::wants_events`] ([`BraidEngine::handle_event`]); up to
//!    [`BraidEngine::read_size`] bytes from the app ([`BraidEngine::handle_app_data`], or
//!    [`BraidEngine::handle_app_eof`]); or [`BraidEngine::poll_timeout`]
//!    ([`BraidEngine::handle_timeout`]). A broken app socket or event source is
//!    [`BraidEngine::abort`].
//! 3. Goes back to 1.
//!
//! One round of polls sends at most `1 + `[`BURST`] data fragments, so a driver that queues
//! fragments as fast as the strands take them still serves the app and the events between
//! bursts; the next burst starts once the driver waited (step 2) on the room of
//! [`BraidEngine::blocked_on`], which is ready at once when the strand has room. A strand
//! whose queue refused a transmit is not tried again in the same round.
//!
//! Bounds (as before the engine was sans-IO): one pending data fragment, [`ACKS_PER_STRAND`]
//! acks per strand, `out_buffer` bytes for the app (no strand events are wanted beyond), the
//! splitter's window, `1 + BURST` fragments per round; the driver adds its event batch.
//!
//! [`ACKS_PER_STRAND`]: super::ACKS_PER_STRAND
//!
//! What the engine does not do: read or write sockets, hold queue permits, build circuits (the
//! driver's strand supply gets [`Action::Lost`]), or log.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use braid_splitter::wire::{Flags, HEADER_LEN, RawFragment};
use braid_splitter::{Received, Receiver, SendAction, Sender, StrandId};
use bytes::Bytes;

use super::acks::AckQueue;
use super::{Braid, BraidReport, BraidSettings, StrandTally};
use crate::msg::EndReason;

mod interface;
#[cfg(test)]
mod tests;

pub use interface::{Action, Refused, StrandEnd, StrandInput, StrandQueues, Transmit};

/// Data fragments queued per burst after the first, at most (see the module doc).
pub const BURST: usize = 32;

/// Per-strand state.
#[derive(Debug)]
struct Strand {
    live: bool,
    tally: StrandTally,
    /// Data fragments sent on it, for the simulation's corrupt fault.
    sends: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    /// The stream is over: End the live strands, then report. `None`: it finished cleanly.
    Ending(Option<EndReason>),
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    No,
    Due,
    Told,
}

/// One end of a braided stream (see the module doc for the call order).
#[derive(Debug)]
pub struct BraidEngine {
    sender: Sender,
    receiver: Receiver,
    max_data: usize,
    settings: BraidSettings,
    /// The zero of the splitter's millisecond clock.
    clock: Instant,
    strands: BTreeMap<StrandId, Strand>,
    /// App bytes the window refused so far.
    carry: Vec<u8>,
    /// Bytes for the app; `out[out_pos..]` are not written yet.
    out: Vec<u8>,
    out_pos: usize,
    acks: AckQueue,
    /// The one data fragment chosen but not queued yet.
    pending: Option<(StrandId, Bytes)>,
    /// When the pending fragment's strand started keeping it.
    blocked_since: Option<(StrandId, Instant)>,
    /// Due acks whose strand has no room.
    ack_wait: Option<StrandId>,
    ack_due: Option<Instant>,
    rto_wake: Option<Instant>,
    stranded_since: Option<Instant>,
    /// Data transmits left in this round of polls.
    budget: usize,
    /// Strands whose queue refused a transmit in this round: no more tries until the next.
    refused: Vec<StrandId>,
    lost: VecDeque<(StrandId, usize)>,
    answer: Answer,
    /// Whether the other end sent data since this end last took bytes from its app (true
    /// before either spoke): only then is a short read a request or an answer, which may be
    /// erasure-coded, rather than the tail of this end's own transfer.
    peer_spoke: bool,
    app_eof: bool,
    app_closed: bool,
    peer_done: bool,
    phase: Phase,
}

impl BraidEngine {
    /// The engine for `braid`, started at `now`.
    pub fn new(braid: Braid, settings: &BraidSettings, now: Instant) -> Self {
        let Braid {
            sender,
            receiver,
            max_data,
        } = braid;
        BraidEngine {
            sender,
            receiver,
            max_data,
            settings: settings.clone(),
            clock: now,
            strands: BTreeMap::new(),
            carry: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            acks: AckQueue::default(),
            pending: None,
            blocked_since: None,
            ack_wait: None,
            ack_due: None,
            rto_wake: None,
            stranded_since: None,
            budget: BURST + 1,
            refused: Vec::new(),
            lost: VecDeque::new(),
            answer: Answer::No,
            peer_spoke: true,
            app_eof: false,
            app_closed: false,
            peer_done: false,
            phase: Phase::Running,
        }
    }

    /// Handles what a strand reported. Only an `Up` can be refused.
    pub fn handle_event(&mut self, now: Instant, input: StrandInput<'_>) -> Result<(), Refused> {
        if self.phase != Phase::Running {
            return Ok(());
        }
        match input {
            StrandInput::Up { strand } => {
                self.sender.add_strand(strand).map_err(|_| Refused)?;
                let tally = StrandTally {
                    strand,
                    bytes_sent: 0,
                    bytes_received: 0,
                    failed: false,
                };
                let s = Strand {
                    live: true,
                    tally,
                    sends: 0,
                };
                self.strands.insert(strand, s);
            }
            StrandInput::Fragment { strand, bytes } => {
                if let Some(s) = self.strands.get_mut(&strand) {
                    s.tally.bytes_received += bytes.len() as u64;
                }
                if let Err(why) = self.on_message(strand, bytes, now) {
                    self.fail(why);
                }
            }
            StrandInput::Down { strand, end } => match end {
                StrandEnd::Lost => self.strand_down(strand),
                StrandEnd::PeerDone => {
                    self.peer_done = true;
                    self.unlink(strand);
                }
                StrandEnd::PeerAborted(reason) => {
                    self.unlink(strand);
                    self.fail(reason);
                }
            },
        }
        Ok(())
    }

    /// How many bytes the driver may read from the app now, at most `limit`: whole fragments'
    /// worth while data is in flight (see [`Sender::read_size`]); 0 after the app's end, while
    /// bytes refused earlier wait, and once the stream is over.
    pub fn read_size(&self, limit: usize) -> usize {
        if self.phase != Phase::Running || self.app_eof || !self.carry.is_empty() {
            return 0;
        }
        self.sender.read_size(limit)
    }

    /// Bytes read from the app (at most [`BraidEngine::read_size`]). A short message after a
    /// pause, when the other end has sent data since this end last read from its app (a
    /// request or an answer, not the tail of a transfer), is erasure-coded over the live
    /// strands ([`BraidSettings::short_message`]).
    pub fn handle_app_data(&mut self, _now: Instant, data: &[u8]) {
        if self.phase != Phase::Running {
            return;
        }
        let short = match self.peer_spoke {
            true => self.settings.short_message,
            false => 0,
        };
        self.peer_spoke &= data.is_empty();
        match self.sender.write_short(data, short) {
            Ok(taken) => self.carry.extend_from_slice(&data[taken..]),
            Err(_) => self.fail(EndReason::Misc),
        }
    }

    /// The app will send nothing more.
    pub fn handle_app_eof(&mut self, _now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        self.app_eof = true;
        if self.sender.finish().is_err() {
            self.fail(EndReason::Misc);
        }
    }

    /// Bytes to write to the app.
    pub fn app_output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// The app took the first `n` bytes of [`BraidEngine::app_output`] (`n > 0`; a socket that
    /// takes nothing is broken: [`BraidEngine::abort`]).
    pub fn consume_app_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if n > 0 && self.answer == Answer::No {
            self.answer = Answer::Due;
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
    }

    /// Whether the driver should hand over strand events now: not while `out_buffer` bytes
    /// wait for the app (the strands then stop too), nor once the stream is over.
    pub fn wants_events(&self) -> bool {
        self.phase == Phase::Running && self.out.len() - self.out_pos < self.settings.out_buffer
    }

    /// The strands whose queues the engine waits on: the pending data fragment's and the
    /// due acks'. The driver waits for room there (and for a closed queue: the strand is
    /// [`StrandEnd::Lost`]).
    pub fn blocked_on(&self) -> [Option<StrandId>; 2] {
        let data = self.pending.as_ref().map(|(s, _)| *s);
        let live = |s: &StrandId| self.is_live(*s) && self.phase == Phase::Running;
        [data.filter(live), self.ack_wait.filter(live)]
    }

    /// A [`Transmit`] its strand's queue could not take (full: a closed queue is a lost strand,
    /// [`StrandEnd::Lost`]): the engine keeps it (a data fragment becomes the pending one, and
    /// its strand's stall clock runs) and tries that strand no more in this round.
    pub fn transmit_blocked(&mut self, now: Instant, transmit: Transmit) {
        let Transmit { strand, data, acks } = transmit;
        if !self.refused.contains(&strand) {
            self.refused.push(strand);
        }
        if let Some(s) = self.strands.get_mut(&strand) {
            s.tally.bytes_sent = s.tally.bytes_sent.saturating_sub(data.len() as u64);
        }
        if acks {
            self.acks.put_back(strand, &data, now);
        } else {
            self.pending = Some((strand, data));
            self.track_blocked(now);
        }
    }

    /// The app socket or the strand events broke: the stream fails with `reason`.
    pub fn abort(&mut self, reason: EndReason) {
        self.fail(reason);
    }

    /// When [`BraidEngine::handle_timeout`] is due (a resend timer, an ack delay, a stalled
    /// strand, no strand for too long), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase != Phase::Running {
            return None;
        }
        let stall = self
            .blocked_since
            .map(|(_, t)| t + self.settings.stall_timeout);
        let stranded = self
            .stranded_since
            .map(|t| t + self.settings.no_strand_timeout);
        [self.rto_wake, self.ack_due, stall, stranded]
            .into_iter()
            .flatten()
            .min()
    }

    /// Time passed: a strand whose queue kept the pending fragment for `stall_timeout` is
    /// treated as lost, and no strand for `no_strand_timeout` fails the stream
    /// ([`EndReason::Timeout`]). Resends and acks are due at the next poll.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase != Phase::Running {
            return;
        }
        if let Some((strand, since)) = self.blocked_since
            && now >= since + self.settings.stall_timeout
        {
            self.blocked_since = None;
            self.strand_down(strand);
        }
        if let Some(since) = self.stranded_since
            && now >= since + self.settings.no_strand_timeout
        {
            self.fail(EndReason::Timeout);
        }
    }

    /// The next thing to do (see the module doc); `None` ends a round of polls.
    pub fn poll_action(&mut self, now: Instant, queues: &impl StrandQueues) -> Option<Action> {
        if let Some((strand, live)) = self.lost.pop_front() {
            return Some(Action::Lost { strand, live });
        }
        if self.phase != Phase::Running {
            return self.poll_end();
        }
        if self.answer == Answer::Due {
            self.answer = Answer::Told;
            return Some(Action::Answered);
        }
        if !self.carry.is_empty() {
            match self.sender.write(&self.carry) {
                Ok(n) => drop(self.carry.drain(..n)),
                Err(_) => return self.fail_now(EndReason::Misc),
            }
        }
        if let Some(t) = self.poll_acks(now, queues) {
            return Some(Action::Transmit(t));
        }
        match self.poll_data(now, queues) {
            Ok(Some(t)) => return Some(Action::Transmit(t)),
            Ok(None) => {}
            Err(reason) => return self.fail_now(reason),
        }
        if self.receiver.is_finished() && self.out_pos == self.out.len() && !self.app_closed {
            self.app_closed = true;
            if self.answer == Answer::No {
                self.answer = Answer::Due;
            }
            return Some(Action::CloseApp);
        }
        self.end_round(now, queues)
    }

    /// Due acks whose strand has room, as one message; notes a due strand without room.
    fn poll_acks(&mut self, now: Instant, queues: &impl StrandQueues) -> Option<Transmit> {
        self.ack_wait = None;
        loop {
            let flush = self.receiver.is_finished();
            let strand = self
                .acks
                .ready(now, flush, |s| self.is_live(s) && self.has_room(queues, s))?;
            if !self.is_live(strand) {
                // Its strand is gone: those acks cannot be sent (the peer resends what they ack).
                self.acks.drop_strand(strand);
                continue;
            }
            if !self.has_room(queues, strand) {
                self.ack_wait = Some(strand);
                return None;
            }
            let data = Bytes::from(self.acks.take(strand, self.max_data));
            if let Some(s) = self.strands.get_mut(&strand) {
                s.tally.bytes_sent += data.len() as u64;
            }
            return Some(Transmit {
                strand,
                data,
                acks: true,
            });
        }
    }

    /// The pending data fragment (chosen now if there was none) if its strand has room and
    /// the round's burst is not spent.
    fn poll_data(
        &mut self,
        now: Instant,
        queues: &impl StrandQueues,
    ) -> Result<Option<Transmit>, EndReason> {
        self.rto_wake = None;
        if self.pending.is_none() {
            // Tell the scheduler which strands' queues are full now, so it picks others.
            for (id, s) in &self.strands {
                if s.live {
                    let blocked = self.refused.contains(id) || !queues.has_room(*id);
                    self.sender.set_blocked(*id, blocked);
                }
            }
            match self
                .sender
                .poll(self.ms(now))
                .map_err(|_| EndReason::Misc)?
            {
                SendAction::Transmit {
                    strand, fragment, ..
                } => {
                    let bytes = outgoing(&mut self.strands, &self.settings, strand, fragment);
                    self.pending = Some((strand, bytes));
                }
                SendAction::Idle { wake_at } => {
                    self.rto_wake = wake_at.map(|ms| self.clock + Duration::from_millis(ms));
                }
                SendAction::NoStrand | SendAction::Finished => {}
            }
        }
        let Some((strand, _)) = &self.pending else {
            return Ok(None);
        };
        if self.budget == 0 || !self.is_live(*strand) || !self.has_room(queues, *strand) {
            return Ok(None);
        }
        let Some((strand, data)) = self.pending.take() else {
            return Ok(None);
        };
        self.budget -= 1;
        self.blocked_since = None;
        if let Some(s) = self.strands.get_mut(&strand) {
            s.tally.bytes_sent += data.len() as u64;
        }
        Ok(Some(Transmit {
            strand,
            data,
            acks: false,
        }))
    }

    /// The end of a round: is the stream done, or stranded; arm the clocks.
    fn end_round(&mut self, now: Instant, queues: &impl StrandQueues) -> Option<Action> {
        let sent_all = (self.pending.is_none() && self.sender.is_finished())
            || (self.peer_done && self.app_eof && self.carry.is_empty());
        if sent_all && self.app_closed && self.acks.is_empty() {
            self.phase = Phase::Ending(None);
            return self.poll_end();
        }
        let live = self.live();
        if self.peer_done && !self.receiver.is_finished() && live == 0 {
            return self.fail_now(EndReason::Misc);
        }
        if live == 0 {
            // Nothing can move without a strand: wait for one, but not forever, and not at all
            // when none can come.
            self.stranded_since.get_or_insert(now);
            if queues.strands_to_come() == Some(0) {
                return self.fail_now(EndReason::Misc);
            }
        } else {
            self.stranded_since = None;
        }
        self.track_blocked(now);
        self.ack_due = match self.ack_wait {
            None => self.acks.next_due(),
            Some(_) => None,
        };
        self.budget = BURST + 1;
        self.refused.clear();
        None
    }

    /// Starts the stall clock when a fragment became pending on a new strand.
    fn track_blocked(&mut self, now: Instant) {
        self.blocked_since = match (&self.pending, self.blocked_since) {
            (Some((s, _)), Some((b, t))) if *s == b => Some((b, t)),
            (Some((s, _)), _) => Some((*s, now)),
            (None, _) => None,
        };
    }

    /// The stream is over: `End` on every live strand, the app's side closed after a failure,
    /// then the report.
    fn poll_end(&mut self) -> Option<Action> {
        let Phase::Ending(failure) = self.phase else {
            return None;
        };
        let reason = failure.unwrap_or(EndReason::Done);
        if let Some((strand, s)) = self.strands.iter_mut().find(|(_, s)| s.live) {
            s.live = false;
            let strand = *strand;
            return Some(Action::End { strand, reason });
        }
        if failure.is_some() && !self.app_closed {
            self.app_closed = true;
            return Some(Action::CloseApp);
        }
        self.phase = Phase::Done;
        Some(Action::Finished(BraidReport {
            strands: self.strands.values().map(|s| s.tally).collect(),
            sent: self.sender.stats(),
            sent_per_strand: self.sender.strand_stats(),
            received: self.receiver.stats(),
            failure,
        }))
    }

    fn fail(&mut self, reason: EndReason) {
        if self.phase == Phase::Running {
            self.phase = Phase::Ending(Some(reason));
        }
    }

    fn fail_now(&mut self, reason: EndReason) -> Option<Action> {
        self.fail(reason);
        self.poll_end()
    }

    /// `now` on the splitter's millisecond clock.
    fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.clock).as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether `strand`'s queue takes a message now, as far as this round knows.
    fn has_room(&self, queues: &impl StrandQueues, strand: StrandId) -> bool {
        !self.refused.contains(&strand) && queues.has_room(strand)
    }

    fn is_live(&self, strand: StrandId) -> bool {
        self.strands.get(&strand).is_some_and(|s| s.live)
    }

    fn live(&self) -> usize {
        self.strands.values().filter(|s| s.live).count()
    }

    /// The other end ended the strand's stream: it carries nothing more.
    fn unlink(&mut self, strand: StrandId) {
        if let Some(s) = self.strands.get_mut(&strand) {
            s.live = false;
        }
    }

    /// Marks `strand` lost: its acks are dropped, its fragments in flight go to the others,
    /// and the supply is told. Nothing happens for a strand already down.
    fn strand_down(&mut self, strand: StrandId) {
        self.acks.drop_strand(strand);
        let Some(s) = self.strands.get_mut(&strand) else {
            return;
        };
        if !std::mem::replace(&mut s.live, false) {
            return;
        }
        s.tally.failed = true;
        if self.pending.as_ref().is_some_and(|(p, _)| *p == strand) {
            self.pending = None;
        }
        let _requeued = self.sender.on_strand_failed(strand);
        let live = self.live();
        self.lost.push_back((strand, live));
    }

    /// Handles one received message: one data fragment, or one or more acks back to back.
    fn on_message(
        &mut self,
        strand: StrandId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(), EndReason> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (one, next) = match RawFragment::read(rest) {
                Ok((raw, next)) => (raw.as_bytes(), next),
                // Unframeable: hand it over whole, to be counted as malformed.
                Err(_) => (rest, &[][..]),
            };
            self.on_fragment(strand, one, now)?;
            rest = next;
        }
        Ok(())
    }

    /// Handles one received fragment: an ack for our sender or data for our receiver.
    fn on_fragment(
        &mut self,
        strand: StrandId,
        bytes: &[u8],
        now: Instant,
    ) -> Result<(), EndReason> {
        let is_ack = RawFragment::parse_exact(bytes).is_ok_and(|r| r.flags().0 & Flags::ACK != 0);
        if is_ack {
            let ms = self.ms(now);
            // A bad ack from an authentic peer breaks the stream.
            return match self.sender.on_ack(strand, bytes, ms) {
                Ok(_) => Ok(()),
                Err(_) => Err(EndReason::Misc),
            };
        }
        match self.receiver.on_fragment(strand, bytes, &mut self.out) {
            Ok(Received::Accepted { ack, .. }) => {
                self.peer_spoke = true;
                self.acks.push(ack.strand, ack.fragment, now);
                Ok(())
            }
            Ok(Received::Duplicate { ack }) => {
                self.acks.push(ack.strand, ack.fragment, now);
                Ok(())
            }
            Ok(Received::Dropped(_)) => Ok(()),
            // The peer broke the stream.
            Err(_) => Err(EndReason::Misc),
        }
    }
}

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
