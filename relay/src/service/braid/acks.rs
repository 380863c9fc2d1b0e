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
pub(super) struct AckQueue {
    batches: BTreeMap<StrandId, Batch>,
}

impl AckQueue {
    pub(super) fn push(&mut self, strand: StrandId, ack: [u8; ACK_FRAGMENT_LEN], now: Instant) {
        let batch = self.batches.entry(strand).or_insert_with(|| Batch {
            acks: Vec::with_capacity(ACK_EVERY),
            since: now,
        });
        if batch.acks.len() >= ACKS_PER_STRAND {
            batch.acks.remove(0);
        }
        batch.acks.push(ack);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// A strand whose acks should go now (`flush`: regardless of count and age), preferring
    /// one for which `has_room` holds, so a stuck strand does not hold up the others' acks.
    pub(super) fn ready(
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
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.batches.values().map(|b| b.since + ACK_DELAY).min()
    }

    /// Takes up to `max_bytes` of `strand`'s acks as one message body.
    pub(super) fn take(&mut self, strand: StrandId, max_bytes: usize) -> Vec<u8> {
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

    /// Forgets a strand's acks (it went down).
    pub(super) fn drop_strand(&mut self, strand: StrandId) {
        self.batches.remove(&strand);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_by_count_and_age_and_bounds_each_strand() {
        let t0 = Instant::now();
        let mut q = AckQueue::default();
        let a = StrandId(1);
        q.push(a, [1; ACK_FRAGMENT_LEN], t0);
        let room = |_| true;
        assert_eq!(q.ready(t0, false, room), None, "one young ack waits");
        assert_eq!(
            q.ready(t0 + ACK_DELAY, false, room),
            Some(a),
            "an old ack goes"
        );
        assert_eq!(q.ready(t0, true, room), Some(a), "a flush sends it");
        let b = StrandId(2);
        q.push(b, [9; ACK_FRAGMENT_LEN], t0);
        assert_eq!(
            q.ready(t0, true, |s| s == b),
            Some(b),
            "a strand with room goes first"
        );
        assert_eq!(q.take(b, 10_000).len(), ACK_FRAGMENT_LEN);
        for i in 0..(ACK_EVERY - 1) {
            q.push(a, [i as u8; ACK_FRAGMENT_LEN], t0);
        }
        assert_eq!(
            q.ready(t0, false, room),
            Some(a),
            "ACK_EVERY acks go at once"
        );
        let body = q.take(a, 2 * ACK_FRAGMENT_LEN + 5);
        assert_eq!(body.len(), 2 * ACK_FRAGMENT_LEN, "no more than fits");
        assert_eq!(&body[..ACK_FRAGMENT_LEN], &[1; ACK_FRAGMENT_LEN]);
        assert_eq!(q.take(a, 100_000).len(), (ACK_EVERY - 2) * ACK_FRAGMENT_LEN);
        assert!(q.is_empty());
        for i in 0..(ACKS_PER_STRAND + 10) {
            q.push(a, [i as u8; ACK_FRAGMENT_LEN], t0);
        }
        let body = q.take(a, usize::MAX);
        assert_eq!(body.len(), ACKS_PER_STRAND * ACK_FRAGMENT_LEN, "bounded");
        assert_eq!(body[0], 10, "the oldest were dropped");
        assert!(q.is_empty());
        // Eight strands, each below ACK_EVERY, together reach ACK_TOTAL: the fullest goes.
        for s in 0..8u32 {
            let n = if s == 5 { 9 } else { 8 };
            for _ in 0..n {
                q.push(StrandId(s), [0; ACK_FRAGMENT_LEN], t0);
            }
        }
        const { assert!(8 < ACK_EVERY && 8 * 8 + 1 >= ACK_TOTAL) };
        assert_eq!(
            q.ready(t0, false, room),
            Some(StrandId(5)),
            "the fullest batch"
        );
        assert_eq!(q.take(StrandId(5), usize::MAX).len(), 9 * ACK_FRAGMENT_LEN);
        assert_eq!(q.ready(t0, false, room), None, "below ACK_TOTAL again");
    }
}
