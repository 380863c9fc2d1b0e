//! Acks waiting to go back, batched per strand: several ack fragments share one `Data` message
//! (one cell), and a strand's acks wait until [`ACK_EVERY`] have gathered, the oldest is
//! [`ACK_DELAY`] old, or [`ACK_TOTAL`] wait over all strands (then the fullest batch goes, so
//! many strands cannot together hold back a whole window). Without batching every data cell
//! would cost a full ack cell the other way, doubling the cells (and QUIC datagrams) a stream
//! costs; with 8 per cell a download still spent one cell in nine on acks, with 32 one in 33.
//! Acks are cumulative, so a batch's last ack alone slides the window; the others carry RTT
//! samples.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use braid_splitter::StrandId;
use braid_splitter::wire::ACK_FRAGMENT_LEN;

/// Acks of one strand sent together once this many have gathered.
pub const ACK_EVERY: usize = 32;
/// Acks waiting over all strands that send the fullest batch at once (a quarter of the default
/// window of 256 full fragments).
pub const ACK_TOTAL: usize = 64;
/// Longest an ack waits for company.
pub const ACK_DELAY: Duration = Duration::from_millis(4);
/// Acks held per strand, at most; the oldest are dropped beyond (acks are cumulative).
pub const ACKS_PER_STRAND: usize = 64;

#[derive(Debug)]
struct Batch {
    acks: Vec<[u8; ACK_FRAGMENT_LEN]>,
    since: Instant,
}

/// The acks of every strand.
#[derive(Debug, Default)]
pub(crate) struct AckQueue {
    batches: BTreeMap<StrandId, Batch>,
}

impl AckQueue {
    pub(crate) fn push(&mut self, strand: StrandId, ack: [u8; ACK_FRAGMENT_LEN], now: Instant) {
        let batch = self.batches.entry(strand).or_insert_with(|| Batch {
            acks: Vec::with_capacity(ACK_EVERY),
            since: now,
        });
        if batch.acks.len() >= ACKS_PER_STRAND {
            batch.acks.remove(0);
        }
        batch.acks.push(ack);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// A strand whose acks should go now (`flush`: regardless of count and age), preferring
    /// one for which `has_room` holds, so a stuck strand does not hold up the others' acks.
    pub(crate) fn ready(
        &self,
        now: Instant,
        flush: bool,
        has_room: impl Fn(StrandId) -> bool,
    ) -> Option<StrandId> {
        let total: usize = self.batches.values().map(|b| b.acks.len()).sum();
        let fullest = (total >= ACK_TOTAL)
            .then(|| self.batches.iter().max_by_key(|(_, b)| b.acks.len()))
            .flatten()
            .map(|(s, _)| *s);
        let mut due = fullest.into_iter().chain(
            self.batches
                .iter()
                .filter(|(_, b)| flush || b.acks.len() >= ACK_EVERY || now >= b.since + ACK_DELAY)
                .map(|(s, _)| *s),
        );
        let first = due.next()?;
        if has_room(first) {
            return Some(first);
        }
        due.find(|s| has_room(*s)).or(Some(first))
    }

    /// When the oldest waiting batch becomes due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.batches.values().map(|b| b.since + ACK_DELAY).min()
    }

    /// Takes up to `max_bytes` of `strand`'s acks as one message body.
    pub(crate) fn take(&mut self, strand: StrandId, max_bytes: usize) -> Vec<u8> {
        let Some(batch) = self.batches.get_mut(&strand) else {
            return Vec::new();
        };
        let n = (max_bytes / ACK_FRAGMENT_LEN).max(1).min(batch.acks.len());
        let mut body = Vec::with_capacity(n * ACK_FRAGMENT_LEN);
        for ack in batch.acks.drain(..n) {
            body.extend_from_slice(&ack);
        }
        if batch.acks.is_empty() {
            self.batches.remove(&strand);
        }
        body
    }

    /// Puts back a batch [`AckQueue::take`] returned that its strand's queue could not take
    /// after all, ahead of the acks gathered since and due at once (still at most
    /// [`ACKS_PER_STRAND`] for the strand, the oldest dropped).
    pub(crate) fn put_back(&mut self, strand: StrandId, body: &[u8], now: Instant) {
        let due = now.checked_sub(ACK_DELAY).unwrap_or(now);
        let batch = self.batches.entry(strand).or_insert_with(|| Batch {
            acks: Vec::with_capacity(ACK_EVERY),
            since: due,
        });
        batch.since = due;
        let back = body
            .chunks_exact(ACK_FRAGMENT_LEN)
            .filter_map(|a| a.try_into().ok());
        let later = std::mem::take(&mut batch.acks);
        batch.acks = back.chain(later).collect();
        let excess = batch.acks.len().saturating_sub(ACKS_PER_STRAND);
        batch.acks.drain(..excess);
    }

    /// Forgets a strand's acks (it went down).
    pub(crate) fn drop_strand(&mut self, strand: StrandId) {
        self.batches.remove(&strand);
    }
}

#[cfg(test)]
mod tests;
