//! Ack processing of the [`Sender`]: marks fragments acknowledged, takes RTT and delivery-rate
//! samples for the strand the ack came on, and slides the window. Not here: sending.

use bytes::Bytes;

use super::{AckVerdict, Sender, State};
use crate::error::{Error, Violation};
use crate::wire::StrandId;

impl Sender {
    /// Handles an ACK fragment that arrived on `strand` at `now`. An `Err` means the
    /// authenticated peer acknowledged data never sent (or sent an undecodable fragment): cut it
    /// off.
    pub fn on_ack(
        &mut self,
        strand: StrandId,
        bytes: &[u8],
        now: u64,
    ) -> Result<AckVerdict, Error> {
        let ack = match self.open_ack(bytes)? {
            Ok(ack) => ack,
            Err(reason) => {
                self.stats.dropped.count(reason);
                return Ok(AckVerdict::Dropped(reason));
            }
        };
        // The highest sequence number the ack claims was received, plus one.
        let claimed_end = ack
            .cumulative
            .saturating_add(64 - u64::from(ack.sack.leading_zeros()) + 1);
        if ack.cumulative > self.next_new || (ack.sack != 0 && claimed_end > self.next_new) {
            let violation = Violation::AckBeyondSent {
                cumulative: ack.cumulative,
                sent: self.next_new,
            };
            return Err(self.violation(ack.cumulative, violation));
        }
        // RTT sample: only for a first transmission that went out on the strand the ack came on
        // (Karn's rule), once per transmission (so a replayed ack cannot inflate it).
        if let Some(index) = ack
            .echo
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            && let Some(entry) = self.entries.get_mut(index)
            && entry.state == State::InFlight
            && entry.strand == Some(strand)
            && entry.sends == 1
            && !entry.sampled
        {
            entry.sampled = true;
            let rtt = now.saturating_sub(entry.sent_at);
            self.scheduler.on_rtt_sample(strand, rtt);
        }
        let mut newly_acked = 0;
        for seq in self.base..ack.cumulative {
            newly_acked += usize::from(self.mark_acked(seq, now));
        }
        for bit in 0..64 {
            if ack.sack & (1 << bit) != 0 {
                newly_acked += usize::from(self.mark_acked(ack.cumulative + 1 + bit, now));
            }
        }
        while self
            .entries
            .front()
            .is_some_and(|e| e.state == State::Acked)
        {
            if let Some(entry) = self.entries.pop_front() {
                self.window_used -= entry.payload_len;
            }
            self.base += 1;
        }
        self.stats.acks_accepted += 1;
        Ok(AckVerdict::Accepted { newly_acked })
    }

    /// Marks `seq` acknowledged; returns whether it was not before.
    fn mark_acked(&mut self, seq: u64, now: u64) -> bool {
        let Some(index) = seq
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
        else {
            return false;
        };
        let Some(entry) = self.entries.get_mut(index) else {
            return false;
        };
        let previous = entry.state;
        if previous == State::Acked {
            return false;
        }
        entry.state = State::Acked;
        let payload_len = entry.payload_len;
        // The allocation is kept for reuse, unless a carrier still holds the fragment.
        let bytes = std::mem::take(&mut entry.bytes);
        match previous {
            State::InFlight => {
                if let Some(strand) = entry.strand
                    && let Some(p) = self.scheduler.index(strand)
                {
                    let path = &mut self.scheduler.paths[p];
                    path.inflight_bytes = path.inflight_bytes.saturating_sub(payload_len);
                    self.scheduler.on_delivered(strand, payload_len, now);
                }
            }
            State::Lost => {
                self.resend.remove(&seq);
            }
            State::Queued | State::Acked => {}
        }
        self.recycle(bytes);
        true
    }

    /// Keeps an acknowledged fragment's buffer for the next one if nothing else holds it.
    pub(super) fn recycle(&mut self, bytes: Bytes) {
        if self.spare.len() < super::SPARE_BUFFERS
            && let Ok(unique) = bytes.try_into_mut()
        {
            let buffer = Vec::from(unique);
            if buffer.capacity() > 0 {
                self.spare.push(buffer);
            }
        }
    }
}
