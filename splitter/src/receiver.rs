//! The receiving side of one direction of a braided stream: verifies fragments, drops and
//! counts junk, reorders within a bounded buffer, rebuilds erasure-coded messages, delivers the
//! stream bytes in order and produces the ack to send back on each fragment's strand.
//!
//! Order of work for each fragment: framing, then the tag (constant time), and only then the
//! flags and fields. Unauthenticated junk (malformed, forged) and authentic-but-stale fragments
//! (duplicates, replays, other streams) are dropped and counted; an authentic fragment that
//! breaks the protocol or does not fit the reorder buffer is an [`Error`], after which the
//! caller cuts the peer off. Not here: the sending side and its timers ([`crate::sender`]).

use std::collections::VecDeque;

use crate::config::Config;
use crate::erasure::{self, ErasureParams};
use crate::error::{Error, Violation};
use crate::key::FragmentKey;
use crate::stats::{DropReason, ReceiverStats};
use crate::wire::{ACK_FRAGMENT_LEN, Ack, Data, Fragment, RawFragment, Shard, StrandId, StreamId};

/// An ack the caller must send back on `strand` (the strand the fragment arrived on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckToSend {
    /// Where to send it.
    pub strand: StrandId,
    /// The tagged ACK fragment.
    pub fragment: [u8; ACK_FRAGMENT_LEN],
}

/// What [`Receiver::on_fragment`] did with a fragment.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// A new fragment: `delivered` in-order bytes were appended to the output buffer (possibly
    /// 0 while earlier fragments are missing). Send `ack`. `finished`: the stream's last byte
    /// has now been delivered.
    Accepted {
        /// The ack to send back.
        ack: AckToSend,
        /// Bytes appended to the output buffer.
        delivered: usize,
        /// Whether the end of stream was reached.
        finished: bool,
    },
    /// Authentic but already held or delivered (a resend, duplicate or replay), or a surplus
    /// erasure shard: dropped and counted. Send `ack` anyway: the peer evidently missed one.
    Duplicate {
        /// The ack to send back.
        ack: AckToSend,
    },
    /// Dropped and counted; nothing to send.
    Dropped(DropReason),
}

/// One reorder-buffer slot, for sequence number `next + position`.
#[derive(Debug)]
enum Slot {
    /// Not received yet.
    Empty,
    /// A DATA fragment's payload.
    Data { payload: Vec<u8> },
    /// The first sequence number of an erasure message.
    Group(Box<Group>),
    /// A later sequence number of the erasure message starting at `base`.
    Member { base: u64 },
}

/// An erasure message being collected.
#[derive(Debug)]
struct Group {
    params: ErasureParams,
    message_len: u32,
    shard_len: usize,
    fin: bool,
    shards: Vec<Option<Vec<u8>>>,
    received: usize,
    /// Rebuilt once `k` shards arrived.
    message: Option<Vec<u8>>,
}

impl Group {
    /// Whether the shard with `index` is held (or no longer needed).
    fn has(&self, index: usize) -> bool {
        self.message.is_some() || self.shards.get(index).is_some_and(Option::is_some)
    }
}

/// Reassembles one direction of one stream (see the module doc).
#[derive(Debug)]
pub struct Receiver {
    stream: StreamId,
    key: FragmentKey,
    window_bytes: usize,
    window_fragments: usize,
    next: u64,
    slots: VecDeque<Slot>,
    buffered_bytes: usize,
    fin_seq: Option<u64>,
    stats: ReceiverStats,
}

impl Receiver {
    /// A receiver for `stream` verifying with `key` (the sending direction's key).
    pub fn new(config: &Config, stream: StreamId, key: FragmentKey) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            stream,
            key,
            window_bytes: config.window_bytes(),
            window_fragments: config.window_fragments(),
            next: 0,
            slots: VecDeque::new(),
            buffered_bytes: 0,
            fin_seq: None,
            stats: ReceiverStats::default(),
        })
    }

    /// Handles one fragment that arrived on `strand`, appending any bytes that became
    /// deliverable in order to `out`. An `Err` means the authenticated peer broke the protocol
    /// or overflowed the reorder buffer: cut it off.
    pub fn on_fragment(
        &mut self,
        strand: StrandId,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Received, Error> {
        let Ok(raw) = RawFragment::parse_exact(bytes) else {
            return Ok(self.drop(DropReason::Malformed));
        };
        let Ok(verified) = raw.verify(&self.key) else {
            return Ok(self.drop(DropReason::Forged));
        };
        let fragment = verified
            .decode()
            .map_err(|e| self.violation(raw.seq(), Violation::Undecodable(e)))?;
        let stream = match fragment {
            Fragment::Data(d) => d.stream,
            Fragment::Erasure(s) => s.stream,
            Fragment::Ack(a) => a.stream,
        };
        if stream != self.stream {
            return Ok(self.drop(DropReason::WrongStream));
        }
        match fragment {
            Fragment::Data(d) => self.on_data(strand, d, out),
            Fragment::Erasure(s) => self.on_shard(strand, s, out),
            Fragment::Ack(_) => Ok(self.drop(DropReason::UnexpectedKind)),
        }
    }

    /// The stream this receiver belongs to.
    pub fn stream(&self) -> StreamId {
        self.stream
    }

    /// The next sequence number to deliver.
    pub fn next_seq(&self) -> u64 {
        self.next
    }

    /// Payload bytes held out of order (at most the configured window).
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// Whether the end of stream was delivered.
    pub fn is_finished(&self) -> bool {
        self.fin_seq.is_some_and(|f| self.next > f)
    }

    /// Counters.
    pub fn stats(&self) -> ReceiverStats {
        self.stats
    }

    fn on_data(
        &mut self,
        strand: StrandId,
        d: Data<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Received, Error> {
        if d.seq < self.next {
            return Ok(self.duplicate(strand, d.seq, DropReason::Duplicate));
        }
        self.check_fin(d.seq, d.seq, d.fin)?;
        let offset = self.offset(d.seq, d.seq)?;
        match self.slots.get(offset) {
            None | Some(Slot::Empty) => {}
            Some(Slot::Data { .. }) => {
                return Ok(self.duplicate(strand, d.seq, DropReason::Duplicate));
            }
            Some(Slot::Group(_) | Slot::Member { .. }) => {
                return Err(self.violation(d.seq, Violation::ErasureConflict { base: d.seq }));
            }
        }
        let mut delivered = 0;
        if offset == 0 {
            // In order: deliver straight from the input, no buffering.
            out.extend_from_slice(d.payload);
            delivered += d.payload.len();
            self.slots.pop_front();
            self.next += 1;
        } else {
            self.reserve(d.seq, d.payload.len())?;
            self.slot_mut(
                offset,
                Slot::Data {
                    payload: d.payload.to_vec(),
                },
            );
        }
        if d.fin {
            self.fin_seq = Some(d.seq);
        }
        Ok(self.accepted(strand, d.seq, delivered, out))
    }

    fn on_shard(
        &mut self,
        strand: StrandId,
        s: Shard<'_>,
        out: &mut Vec<u8>,
    ) -> Result<Received, Error> {
        // `decode` guarantees seq >= index and index < n.
        let base = s.seq - u64::from(s.index);
        let Some(last) = base.checked_add(u64::from(s.n) - 1) else {
            return Err(self.overflow(s.seq, "fragments", self.window_fragments));
        };
        if last < self.next {
            return Ok(self.duplicate(strand, s.seq, DropReason::Duplicate));
        }
        if base < self.next {
            // Messages are delivered whole, so part of this one cannot be behind `next`.
            return Err(self.violation(s.seq, Violation::ErasureConflict { base }));
        }
        self.check_fin(s.seq, last, s.fin)?;
        self.offset(s.seq, last)?;
        let params = ErasureParams::new(usize::from(s.k), usize::from(s.n))?;
        let base_offset = (base - self.next) as usize;
        let conflict = Violation::ErasureConflict { base };
        match self.slots.get(base_offset) {
            None | Some(Slot::Empty) => {
                let members_free = (1..params.n())
                    .all(|i| matches!(self.slots.get(base_offset + i), None | Some(Slot::Empty)));
                if !members_free {
                    return Err(self.violation(s.seq, conflict));
                }
            }
            Some(Slot::Group(g)) => {
                let same = g.params == params
                    && g.message_len == s.message_len
                    && g.shard_len == s.shard.len()
                    && g.fin == s.fin;
                if !same {
                    return Err(self.violation(s.seq, conflict));
                }
                if g.message.is_some() {
                    return Ok(self.duplicate(strand, s.seq, DropReason::Redundant));
                }
                if g.has(usize::from(s.index)) {
                    return Ok(self.duplicate(strand, s.seq, DropReason::Duplicate));
                }
            }
            Some(Slot::Data { .. } | Slot::Member { .. }) => {
                return Err(self.violation(s.seq, conflict));
            }
        }
        let payload_len = crate::wire::ERASURE_HEADER_LEN + s.shard.len();
        self.reserve(s.seq, payload_len)?;
        if !matches!(self.slots.get(base_offset), Some(Slot::Group(_))) {
            for i in 1..params.n() {
                self.slot_mut(base_offset + i, Slot::Member { base });
            }
            let group = Group {
                params,
                message_len: s.message_len,
                shard_len: s.shard.len(),
                fin: s.fin,
                shards: vec![None; params.n()],
                received: 0,
                message: None,
            };
            self.slot_mut(base_offset, Slot::Group(Box::new(group)));
        }
        let Some(Slot::Group(group)) = self.slots.get_mut(base_offset) else {
            return Err(Error::Protocol {
                stream: self.stream,
                seq: s.seq,
                violation: conflict,
            });
        };
        group.shards[usize::from(s.index)] = Some(s.shard.to_vec());
        group.received += 1;
        if group.received >= params.k() {
            let present = group
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, s.as_deref()?)));
            let message = erasure::decode(params, group.message_len as usize, present)?;
            let held = group.received * (crate::wire::ERASURE_HEADER_LEN + group.shard_len);
            self.buffered_bytes = self.buffered_bytes - held + message.len();
            group.shards = Vec::new();
            group.message = Some(message);
            self.stats.messages_rebuilt += 1;
        }
        if s.fin {
            self.fin_seq = Some(last);
        }
        Ok(self.accepted(strand, s.seq, 0, out))
    }

    /// Rejects data past the end of stream and contradictory ends. `first..=last` is the range
    /// the fragment occupies; `fin` says it ends the stream at `last`.
    fn check_fin(&self, first: u64, last: u64, fin: bool) -> Result<(), Error> {
        if let Some(fin_seq) = self.fin_seq {
            if last > fin_seq {
                return Err(self.violation(first, Violation::DataAfterFin { fin_seq }));
            }
            if fin && last != fin_seq {
                return Err(self.violation(
                    first,
                    Violation::ConflictingFin {
                        first: fin_seq,
                        second: last,
                    },
                ));
            }
        } else if fin {
            let highest = self.next + self.slots.len() as u64;
            if highest > last.saturating_add(1) {
                return Err(self.violation(first, Violation::DataAfterFin { fin_seq: last }));
            }
        }
        Ok(())
    }

    /// The slot position of `seq`, checking that `last` (the fragment's last sequence number)
    /// stays within the reorder window.
    fn offset(&self, seq: u64, last: u64) -> Result<usize, Error> {
        if last - self.next >= self.window_fragments as u64 {
            return Err(self.overflow(seq, "fragments", self.window_fragments));
        }
        Ok((seq - self.next) as usize)
    }

    /// Accounts `len` more buffered bytes, or fails if the reorder buffer would overflow.
    fn reserve(&mut self, seq: u64, len: usize) -> Result<(), Error> {
        if self.buffered_bytes + len > self.window_bytes {
            return Err(self.overflow(seq, "bytes", self.window_bytes));
        }
        self.buffered_bytes += len;
        Ok(())
    }

    /// Stores `slot` at `offset`, growing the buffer (bounded by `offset`'s check).
    fn slot_mut(&mut self, offset: usize, slot: Slot) {
        if self.slots.len() <= offset {
            self.slots.resize_with(offset + 1, || Slot::Empty);
        }
        self.slots[offset] = slot;
    }

    /// Delivers every ready slot at the front, then builds the ack.
    fn accepted(
        &mut self,
        strand: StrandId,
        echo: u64,
        mut delivered: usize,
        out: &mut Vec<u8>,
    ) -> Received {
        loop {
            match self.slots.front() {
                Some(Slot::Data { .. }) => {
                    if let Some(Slot::Data { payload }) = self.slots.pop_front() {
                        out.extend_from_slice(&payload);
                        delivered += payload.len();
                        self.buffered_bytes -= payload.len();
                    }
                    self.next += 1;
                }
                Some(Slot::Group(g)) if g.message.is_some() => {
                    let n = g.params.n();
                    if let Some(Slot::Group(g)) = self.slots.pop_front() {
                        let message = g.message.unwrap_or_default();
                        out.extend_from_slice(&message);
                        delivered += message.len();
                        self.buffered_bytes -= message.len();
                    }
                    self.slots.drain(..(n - 1).min(self.slots.len()));
                    self.next += n as u64;
                }
                _ => break,
            }
        }
        self.stats.fragments_accepted += 1;
        self.stats.bytes_delivered += delivered as u64;
        Received::Accepted {
            ack: self.ack(strand, echo),
            delivered,
            finished: self.is_finished(),
        }
    }

    fn duplicate(&mut self, strand: StrandId, echo: u64, reason: DropReason) -> Received {
        self.stats.dropped.count(reason);
        Received::Duplicate {
            ack: self.ack(strand, echo),
        }
    }

    fn drop(&mut self, reason: DropReason) -> Received {
        self.stats.dropped.count(reason);
        Received::Dropped(reason)
    }

    /// The ack for the current state: cumulative `next`, and a bitmap of the 64 sequence
    /// numbers after `next`.
    fn ack(&mut self, strand: StrandId, echo: u64) -> AckToSend {
        let mut sack = 0u64;
        for i in 0..64 {
            let received = match self.slots.get(i + 1) {
                None => break,
                Some(Slot::Empty) => false,
                Some(Slot::Data { .. }) => true,
                Some(Slot::Group(g)) => g.has(0),
                Some(Slot::Member { base }) => {
                    let seq = self.next + i as u64 + 1;
                    match self.slots.get((base - self.next) as usize) {
                        Some(Slot::Group(g)) => g.has((seq - base) as usize),
                        _ => false,
                    }
                }
            };
            if received {
                sack |= 1 << i;
            }
        }
        self.stats.acks_sent += 1;
        let ack = Ack {
            stream: self.stream,
            cumulative: self.next,
            echo,
            sack,
        };
        AckToSend {
            strand,
            fragment: ack.encode(&self.key),
        }
    }

    fn violation(&self, seq: u64, violation: Violation) -> Error {
        Error::Protocol {
            stream: self.stream,
            seq,
            violation,
        }
    }

    fn overflow(&self, seq: u64, bound: &'static str, limit: usize) -> Error {
        Error::ReorderOverflow {
            stream: self.stream,
            seq,
            next: self.next,
            bound,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
        }
    }
}

#[cfg(test)]
mod tests;
