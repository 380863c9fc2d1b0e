//! Counters kept by [`crate::Sender`] and [`crate::Receiver`]: what was sent, resent,
//! delivered, and what was dropped and why. Plain values, copied out on request; not a metrics
//! exporter (the node crate publishes them).

use crate::wire::StrandId;

/// Why a fragment (or ack) was dropped without ending the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a fragment at all (bad framing, version or trailing bytes).
    Malformed,
    /// The tag did not verify: forged or altered in transit.
    Forged,
    /// Authentic, but for another stream (misrouted, or replayed from another stream).
    WrongStream,
    /// Authentic, but the wrong kind for this side (an ACK at a receiver, data at a sender).
    UnexpectedKind,
    /// Already received or delivered: a resend, a duplicate or a replay. Normal after resends.
    Duplicate,
    /// An erasure shard of a message that was already rebuilt from k others.
    Redundant,
}

/// How many fragments were dropped, per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// See [`DropReason::Malformed`].
    pub malformed: u64,
    /// See [`DropReason::Forged`].
    pub forged: u64,
    /// See [`DropReason::WrongStream`].
    pub wrong_stream: u64,
    /// See [`DropReason::UnexpectedKind`].
    pub unexpected_kind: u64,
    /// See [`DropReason::Duplicate`].
    pub duplicate: u64,
    /// See [`DropReason::Redundant`].
    pub redundant: u64,
}

impl DropCounts {
    /// Counts one drop.
    pub(crate) fn count(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::Malformed => &mut self.malformed,
            DropReason::Forged => &mut self.forged,
            DropReason::WrongStream => &mut self.wrong_stream,
            DropReason::UnexpectedKind => &mut self.unexpected_kind,
            DropReason::Duplicate => &mut self.duplicate,
            DropReason::Redundant => &mut self.redundant,
        };
        *counter += 1;
    }

    /// All drops together.
    pub fn total(&self) -> u64 {
        self.malformed
            + self.forged
            + self.wrong_stream
            + self.unexpected_kind
            + self.duplicate
            + self.redundant
    }
}

/// Counters of one [`crate::Receiver`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Fragments that verified and were new.
    pub fragments_accepted: u64,
    /// Stream bytes delivered in order.
    pub bytes_delivered: u64,
    /// Erasure-coded messages rebuilt.
    pub messages_rebuilt: u64,
    /// Acks produced.
    pub acks_sent: u64,
    /// Fragments dropped, per reason.
    pub dropped: DropCounts,
}

/// Counters of one [`crate::Sender`] (all strands together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Stream bytes accepted by `write` and `write_message`.
    pub bytes_written: u64,
    /// Fragment transmissions, resends included.
    pub fragments_sent: u64,
    /// Transmissions that were resends (after a timeout or a strand failure).
    pub fragments_resent: u64,
    /// Fragments declared lost by the resend timer.
    pub timeouts: u64,
    /// Acks that verified and were processed.
    pub acks_accepted: u64,
    /// Acks dropped, per reason.
    pub dropped: DropCounts,
}

/// Counters and estimates of one strand at a [`crate::Sender`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StrandStats {
    /// The strand.
    pub strand: StrandId,
    /// Whether it was marked failed.
    pub failed: bool,
    /// Fragment transmissions on this strand, resends included.
    pub fragments_sent: u64,
    /// Of those, resends.
    pub fragments_resent: u64,
    /// Wire bytes sent on this strand.
    pub bytes_sent: u64,
    /// Payload bytes sent on this strand and acknowledged.
    pub bytes_acked: u64,
    /// Smoothed RTT in ms (the configured initial RTT until measured).
    pub srtt_ms: f64,
    /// Smoothed delivery rate in bytes per ms (0 until measured).
    pub rate_bytes_per_ms: f64,
}
