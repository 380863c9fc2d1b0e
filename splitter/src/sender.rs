//! The sending side of one direction of a braided stream: cuts written bytes into tagged
//! fragments within a bounded window, hands each to a strand chosen by the
//! [`crate::scheduler::Scheduler`], processes acks, and resends what a failed strand
//! or the resend timer lost, on the surviving strands.
//!
//! Sans-IO: the caller passes `now` (ms since any fixed epoch) to [`Sender::poll`] and
//! [`Sender::on_ack`], sends what `poll` returns, and calls `poll` again at the returned
//! wake-up time. Not here: receiving data ([`crate::receiver`]).

use std::collections::{BTreeSet, VecDeque};

use bytes::Bytes;

use crate::config::Config;
use crate::erasure::{self, ErasureParams};
use crate::error::{Error, Violation};
use crate::key::FragmentKey;
use crate::scheduler::Scheduler;
use crate::stats::{DropReason, SenderStats, StrandStats};
use crate::wire::{
    Data, ERASURE_HEADER_LEN, Flags, Fragment, HEADER_LEN, RawFragment, Shard, StrandId, StreamId,
};

mod acks;

/// Spare fragment buffers kept for reuse, at most.
const SPARE_BUFFERS: usize = 64;

/// What the caller must do next (from [`Sender::poll`]).
#[must_use]
#[derive(Debug, PartialEq, Eq)]
pub enum SendAction<'a> {
    /// Send `fragment` on `strand` now, then poll again.
    Transmit {
        /// The strand to send on.
        strand: StrandId,
        /// The fragment's sequence number (for logs and tests).
        seq: u64,
        /// The tagged fragment: a shared handle on the window's copy (clone it to hand it on
        /// without copying; the window keeps it for resends until it is acknowledged).
        fragment: &'a Bytes,
    },
    /// Nothing to send. Poll again at `wake_at` (ms, same clock as `now`) if given, or after new
    /// input (a write, an ack, a strand change).
    Idle {
        /// When the resend timer next expires.
        wake_at: Option<u64>,
    },
    /// Fragments are waiting but every strand is failed or removed: add a strand (or give up).
    NoStrand,
    /// Everything, end of stream included, was acknowledged.
    Finished,
}

/// What [`Sender::on_ack`] did with an ack.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckVerdict {
    /// A valid ack; `newly_acked` fragments were acknowledged by it (0 for a duplicate ack that
    /// only carried an RTT sample).
    Accepted {
        /// Fragments acknowledged for the first time.
        newly_acked: usize,
    },
    /// Dropped and counted.
    Dropped(DropReason),
}

/// Where a fragment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not sent yet.
    Queued,
    /// Sent, waiting for an ack.
    InFlight,
    /// Declared lost (timeout or strand failure), in the resend set.
    Lost,
    /// Acknowledged; its bytes are freed.
    Acked,
}

/// One fragment in the window.
#[derive(Debug)]
struct Entry {
    /// The tagged wire form (emptied once acked; its buffer is reused if no one else holds it).
    bytes: Bytes,
    /// Payload length, counted against the window.
    payload_len: usize,
    state: State,
    /// Transmissions so far.
    sends: u32,
    /// Where it was last sent; before the first send, the preferred strand (erasure shards).
    strand: Option<StrandId>,
    /// When it was last sent.
    sent_at: u64,
    /// Whether an RTT sample was taken for the last send.
    sampled: bool,
}

/// Fragments, sends and resends one direction of one stream (see the module doc).
#[derive(Debug)]
pub struct Sender {
    config: Config,
    stream: StreamId,
    key: FragmentKey,
    scheduler: Scheduler,
    /// Sequence number of `entries[0]`: everything below is acknowledged.
    base: u64,
    entries: VecDeque<Entry>,
    /// Lowest sequence number never transmitted.
    next_new: u64,
    /// Lost fragments to resend, lowest first.
    resend: BTreeSet<u64>,
    /// Payload bytes of `entries`.
    window_used: usize,
    fin_queued: bool,
    spare: Vec<Vec<u8>>,
    stats: SenderStats,
}

impl Sender {
    /// A sender for `stream`, tagging with `key` (this direction's key), randomized by `seed`
    /// (draw it per stream from a real random source). It has no strands yet.
    pub fn new(
        config: &Config,
        stream: StreamId,
        key: FragmentKey,
        seed: u64,
    ) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            scheduler: Scheduler::new(config, seed),
            config: config.clone(),
            stream,
            key,
            base: 0,
            entries: VecDeque::new(),
            next_new: 0,
            resend: BTreeSet::new(),
            window_used: 0,
            fin_queued: false,
            spare: Vec::new(),
            stats: SenderStats::default(),
        })
    }

    /// Adds a strand to carry fragments.
    pub fn add_strand(&mut self, strand: StrandId) -> Result<(), Error> {
        if self.scheduler.index(strand).is_some() {
            return Err(Error::DuplicateStrand { strand });
        }
        let limit = self.config.max_strands.get();
        if self.scheduler.paths.len() >= usize::from(limit) {
            return Err(Error::TooManyStrands { strand, limit });
        }
        self.scheduler.add(strand);
        Ok(())
    }

    /// Marks `strand` as blocked (its carrier has no room now) or not: new fragments and
    /// resends go to unblocked strands while any is active (see [`Scheduler::set_blocked`]).
    pub fn set_blocked(&mut self, strand: StrandId, blocked: bool) {
        self.scheduler.set_blocked(strand, blocked);
    }

    /// Marks `strand` failed: it gets nothing more, and every fragment in flight on it is queued
    /// for resend on the others. Returns how many were queued. The strand stays listed (and
    /// counted against the limit) until [`Sender::remove_strand`].
    pub fn on_strand_failed(&mut self, strand: StrandId) -> usize {
        let Some(index) = self.scheduler.index(strand) else {
            return 0;
        };
        let path = &mut self.scheduler.paths[index];
        path.failed = true;
        path.inflight_bytes = 0;
        let sent = std::mem::take(&mut path.sent);
        let mut requeued = 0;
        for (seq, sent_at) in sent {
            if let Some(entry) = self.live_entry(seq, strand, sent_at) {
                entry.state = State::Lost;
                self.resend.insert(seq);
                requeued += 1;
            }
        }
        requeued
    }

    /// Removes `strand` (failing it first, see [`Sender::on_strand_failed`]).
    pub fn remove_strand(&mut self, strand: StrandId) -> usize {
        let requeued = self.on_strand_failed(strand);
        self.scheduler.paths.retain(|p| p.id != strand);
        requeued
    }

    /// Queues as much of `data` as the window allows and returns how many bytes that was (0
    /// when the window is full: call again after acks).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.fin_queued {
            return Err(Error::StreamFinished {
                stream: self.stream,
            });
        }
        let max = self.config.max_payload.get();
        let mut accepted = self.fill_tail(data)?;
        while accepted < data.len() {
            // One fragment slot stays free for the FIN.
            if self.entries.len() + 2 > self.config.window_fragments() {
                break;
            }
            let wanted = max.min(data.len() - accepted);
            let take = wanted.min(self.config.window_bytes() - self.window_used);
            // Wait for acks rather than cut a short fragment at the window edge.
            if take == 0 || (take < wanted && !self.entries.is_empty()) {
                break;
            }
            let seq = self.next_seq();
            let payload = &data[accepted..accepted + take];
            self.push(
                Fragment::Data(Data {
                    stream: self.stream,
                    seq,
                    fin: false,
                    payload,
                }),
                take,
                None,
            )?;
            accepted += take;
        }
        self.stats.bytes_written += accepted as u64;
        Ok(accepted)
    }

    /// Queues `message` erasure-coded as `params.n()` shards, any `params.k()` of which rebuild
    /// it, spread over distinct strands where possible. Returns false (queuing nothing) if the
    /// window has no room now. The message must fit `k` fragment payloads.
    pub fn write_message(&mut self, message: &[u8], params: ErasureParams) -> Result<bool, Error> {
        if self.fin_queued {
            return Err(Error::StreamFinished {
                stream: self.stream,
            });
        }
        let shard_len = params.shard_len(message.len());
        let payload_len = ERASURE_HEADER_LEN + shard_len;
        let n = params.n();
        let max = params.max_message_len(self.config.max_payload.get());
        let never_fits =
            n * payload_len > self.config.window_bytes() || n + 1 > self.config.window_fragments();
        if message.len() > max || never_fits {
            return Err(Error::MessageTooLong {
                len: message.len(),
                max,
            });
        }
        if self.entries.len() + n + 1 > self.config.window_fragments()
            || self.window_used + n * payload_len > self.config.window_bytes()
        {
            return Ok(false);
        }
        let shards = erasure::encode(message, params)?;
        // A random assignment of shards to active strands, round-robin over a shuffled list.
        let mut strands: Vec<StrandId> = self
            .scheduler
            .paths
            .iter()
            .filter(|p| !p.failed)
            .map(|p| p.id)
            .collect();
        for i in (1..strands.len()).rev() {
            let j = self.scheduler.random_below(i + 1);
            strands.swap(i, j);
        }
        let message_len = u32::try_from(message.len()).map_err(|_| Error::MessageTooLong {
            len: message.len(),
            max,
        })?;
        let base = self.next_seq();
        for (index, shard) in shards.iter().enumerate() {
            let fragment = Fragment::Erasure(Shard {
                stream: self.stream,
                seq: base + index as u64,
                fin: false,
                k: params.k() as u8,
                n: params.n() as u8,
                index: index as u8,
                message_len,
                shard,
            });
            let preferred = strands.get(index % strands.len().max(1)).copied();
            self.push(fragment, payload_len, preferred)?;
        }
        self.stats.bytes_written += message.len() as u64;
        Ok(true)
    }

    /// Writes a short message so that a lost or slow strand costs it no round trip: when
    /// `data` is at most `max_len` bytes, everything sent so far was acknowledged (a request
    /// or answer after a pause, not a piece of a bulk transfer), and at least two strands are
    /// active, `data` is erasure-coded with `n` = the active strands and `k = n - 1`, one
    /// shard per strand ([`Sender::write_message`]). Otherwise, or when the coded message
    /// does not fit now, it is [`Sender::write`]. Returns the bytes taken, like `write`.
    pub fn write_short(&mut self, data: &[u8], max_len: usize) -> Result<usize, Error> {
        let active = self.scheduler.paths.iter().filter(|p| !p.failed).count();
        let idle = self.entries.is_empty();
        if idle
            && !data.is_empty()
            && data.len() <= max_len
            && active >= 2
            && let Ok(params) = ErasureParams::new(active - 1, active)
            && data.len() <= params.max_message_len(self.config.max_payload.get())
            && self.write_message(data, params)?
        {
            return Ok(data.len());
        }
        self.write(data)
    }

    /// Queues the end of stream. Always has room (one window slot is kept for it); further
    /// writes fail. Calling it twice is harmless.
    pub fn finish(&mut self) -> Result<(), Error> {
        if self.fin_queued {
            return Ok(());
        }
        let seq = self.next_seq();
        self.push(
            Fragment::Data(Data {
                stream: self.stream,
                seq,
                fin: true,
                payload: &[],
            }),
            0,
            None,
        )?;
        self.fin_queued = true;
        Ok(())
    }

    /// The next thing to do at time `now`: transmit a fragment, wait, or nothing. Declares
    /// fragments whose resend timer expired lost first. Fails when a fragment reached the
    /// configured number of sends.
    pub fn poll(&mut self, now: u64) -> Result<SendAction<'_>, Error> {
        let wake_at = self.expire(now);
        let Some(seq) = self.next_to_send() else {
            if self.fin_queued && self.entries.is_empty() {
                return Ok(SendAction::Finished);
            }
            return Ok(SendAction::Idle { wake_at });
        };
        let index = (seq - self.base) as usize;
        let entry = &self.entries[index];
        let resend = entry.sends > 0;
        if entry.sends >= self.config.max_sends.get() {
            return Err(Error::ResendLimit {
                stream: self.stream,
                seq,
                attempts: entry.sends,
            });
        }
        let strand = match entry.strand {
            Some(preferred) if !resend && self.scheduler.is_active(preferred) => Some(preferred),
            last => self.scheduler.pick(if resend { last } else { None }),
        };
        let Some(strand) = strand else {
            if resend {
                self.resend.insert(seq);
            } else {
                self.next_new = seq;
            }
            return Ok(SendAction::NoStrand);
        };
        let entry = &mut self.entries[index];
        entry.state = State::InFlight;
        entry.sends += 1;
        entry.strand = Some(strand);
        entry.sent_at = now;
        entry.sampled = false;
        let (payload_len, wire_len) = (entry.payload_len, entry.bytes.len());
        if let Some(p) = self.scheduler.index(strand) {
            let path = &mut self.scheduler.paths[p];
            path.sent.push_back((seq, now));
            path.inflight_bytes += payload_len;
            path.fragments_sent += 1;
            path.bytes_sent += wire_len as u64;
            path.fragments_resent += u64::from(resend);
        }
        self.stats.fragments_sent += 1;
        self.stats.fragments_resent += u64::from(resend);
        Ok(SendAction::Transmit {
            strand,
            seq,
            fragment: &self.entries[index].bytes,
        })
    }

    /// The stream this sender belongs to.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// Payload bytes `write` would accept now.
    pub fn window_available(&self) -> usize {
        if self.fin_queued || self.entries.len() + 2 > self.config.window_fragments() {
            return 0;
        }
        self.config.window_bytes() - self.window_used
    }

    /// How many bytes to read from the application now, at most `limit`, so that `write`
    /// takes them all without cutting a short fragment: while earlier fragments are
    /// unacknowledged, what the last unsent fragment still takes plus a multiple of the
    /// fragment payload (0 when nothing fits: wait for acks); any amount that fits when nothing
    /// is in flight (a request or answer goes out at once). A read sized by the free window
    /// alone would end most bulk reads in a short fragment, and every fragment costs a whole
    /// cell on each hop.
    pub fn read_size(&self, limit: usize) -> usize {
        if self.fin_queued {
            return 0;
        }
        let max = self.config.max_payload.get();
        let fill = self.tail_room();
        let slots = self
            .config
            .window_fragments()
            .saturating_sub(self.entries.len() + 1);
        let free = self.config.window_bytes() - self.window_used;
        let n = free.min(limit).min(fill + slots * max);
        if self.entries.is_empty() || n <= fill {
            n
        } else {
            n - (n - fill) % max
        }
    }

    /// Whether everything, end of stream included, was acknowledged.
    pub fn is_finished(&self) -> bool {
        self.fin_queued && self.entries.is_empty()
    }

    /// Counters for all strands together.
    pub fn stats(&self) -> SenderStats {
        self.stats
    }

    /// Counters and estimates per strand (failed ones included until removed).
    pub fn strand_stats(&self) -> Vec<StrandStats> {
        self.scheduler.paths.iter().map(|p| p.stats()).collect()
    }

    /// Appends the start of `data` to the last fragment if that is a short `DATA` fragment
    /// never sent yet (it stays queued while the strands are busy, so nothing is delayed), and
    /// returns the bytes taken. A bulk transfer whose reads race the application's writes
    /// would otherwise leave a short fragment per read, and each costs a whole cell per hop.
    fn fill_tail(&mut self, data: &[u8]) -> Result<usize, Error> {
        let free = self.config.window_bytes() - self.window_used;
        let take = self.tail_room().min(data.len()).min(free);
        let Some(last) = self.entries.back().filter(|_| take > 0) else {
            return Ok(0);
        };
        let mut payload = Vec::with_capacity(last.payload_len + take);
        payload.extend_from_slice(&last.bytes[HEADER_LEN..HEADER_LEN + last.payload_len]);
        payload.extend_from_slice(&data[..take]);
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        let seq = self.next_seq() - 1;
        Fragment::Data(Data {
            stream: self.stream,
            seq,
            fin: false,
            payload: &payload,
        })
        .encode(&self.key, &mut bytes)?;
        let Some(last) = self.entries.back_mut() else {
            return Ok(0);
        };
        let old = std::mem::replace(&mut last.bytes, Bytes::from(bytes));
        last.payload_len += take;
        self.window_used += take;
        self.recycle(old);
        Ok(take)
    }

    /// How many bytes the last fragment can still take: it is a `DATA` fragment (not FIN,
    /// ACK or ERASURE) never sent, so no carrier holds its bytes; 0 otherwise.
    fn tail_room(&self) -> usize {
        match self.entries.back() {
            Some(last)
                if last.state == State::Queued
                    && last.sends == 0
                    && last.bytes.get(1) == Some(&Flags::DATA) =>
            {
                self.config
                    .max_payload
                    .get()
                    .saturating_sub(last.payload_len)
            }
            _ => 0,
        }
    }

    /// The sequence number the next queued fragment gets.
    fn next_seq(&self) -> u64 {
        self.base + self.entries.len() as u64
    }

    /// Encodes `fragment` into a (recycled) buffer and appends it to the window.
    fn push(
        &mut self,
        fragment: Fragment<'_>,
        payload_len: usize,
        preferred: Option<StrandId>,
    ) -> Result<(), Error> {
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        fragment.encode(&self.key, &mut bytes)?;
        self.entries.push_back(Entry {
            bytes: Bytes::from(bytes),
            payload_len,
            state: State::Queued,
            sends: 0,
            strand: preferred,
            sent_at: 0,
            sampled: false,
        });
        self.window_used += payload_len;
        Ok(())
    }

    /// The lowest lost fragment, else the next never-sent one.
    fn next_to_send(&mut self) -> Option<u64> {
        while let Some(seq) = self.resend.pop_first() {
            if self.entry(seq).is_some_and(|e| e.state == State::Lost) {
                return Some(seq);
            }
        }
        if self.next_new < self.next_seq() {
            self.next_new += 1;
            return Some(self.next_new - 1);
        }
        None
    }

    /// Declares lost every fragment whose resend timer expired at `now`; returns the earliest
    /// pending expiry. Checks the oldest live transmission of each strand (per-fragment backoff
    /// can hide a later, earlier-expiring one until the front is resolved).
    fn expire(&mut self, now: u64) -> Option<u64> {
        let mut earliest: Option<u64> = None;
        for p in 0..self.scheduler.paths.len() {
            let id = self.scheduler.paths[p].id;
            while let Some(&(seq, sent_at)) = self.scheduler.paths[p].sent.front() {
                let Some(entry) = self.live_entry(seq, id, sent_at) else {
                    self.scheduler.paths[p].sent.pop_front();
                    continue;
                };
                let (sends, payload_len) = (entry.sends, entry.payload_len);
                let deadline = sent_at + self.scheduler.backoff_rto(id, sends);
                if deadline > now {
                    earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
                    break;
                }
                if let Some(entry) = self.live_entry(seq, id, sent_at) {
                    entry.state = State::Lost;
                }
                self.resend.insert(seq);
                let path = &mut self.scheduler.paths[p];
                path.sent.pop_front();
                path.inflight_bytes = path.inflight_bytes.saturating_sub(payload_len);
                self.stats.timeouts += 1;
            }
        }
        earliest
    }

    /// The entry of `seq` if it is in flight from the transmission on `strand` at `sent_at`.
    fn live_entry(&mut self, seq: u64, strand: StrandId, sent_at: u64) -> Option<&mut Entry> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        let entry = self.entries.get_mut(index)?;
        let live = entry.state == State::InFlight
            && entry.strand == Some(strand)
            && entry.sent_at == sent_at;
        live.then_some(entry)
    }

    /// The entry of `seq`, if still in the window.
    fn entry(&self, seq: u64) -> Option<&Entry> {
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.entries.get(index)
    }

    fn violation(&self, seq: u64, violation: Violation) -> Error {
        Error::Protocol {
            stream: self.stream,
            seq,
            violation,
        }
    }

    /// Parses and verifies an ack fragment, counting drops.
    fn open_ack(&mut self, bytes: &[u8]) -> Result<Result<crate::wire::Ack, DropReason>, Error> {
        let Ok(raw) = RawFragment::parse_exact(bytes) else {
            return Ok(Err(DropReason::Malformed));
        };
        let Ok(verified) = raw.verify(&self.key) else {
            return Ok(Err(DropReason::Forged));
        };
        let fragment = verified
            .decode()
            .map_err(|e| self.violation(raw.seq(), Violation::Undecodable(e)))?;
        Ok(match fragment {
            Fragment::Ack(a) if a.stream == self.stream => Ok(a),
            Fragment::Ack(_) => Err(DropReason::WrongStream),
            Fragment::Data(Data { stream, .. }) | Fragment::Erasure(Shard { stream, .. })
                if stream != self.stream =>
            {
                Err(DropReason::WrongStream)
            }
            _ => Err(DropReason::UnexpectedKind),
        })
    }
}

#[cfg(test)]
mod tests;
