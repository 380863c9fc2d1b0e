//! What goes into a [`BraidEngine`] and what comes out: strand inputs,
//! the driver's view of its queues, and the one action enum.

#[cfg(doc)]
use super::BraidEngine;
use braid_splitter::StrandId;
use bytes::Bytes;

use crate::braid::BraidReport;
use crate::msg::EndReason;

/// What the engine learns from its strands.
#[derive(Debug, Clone, Copy)]
pub enum StrandInput<'a> {
    /// The strand is linked and may carry fragments. The engine may refuse it
    /// ([`Refused`]): the driver then ends it with [`EndReason::Limit`].
    Up {
        /// The strand.
        strand: StrandId,
    },
    /// One `Data` message's bytes (a fragment, or acks back to back) arrived on the strand.
    Fragment {
        /// The strand it came on.
        strand: StrandId,
        /// The message body.
        bytes: &'a [u8],
    },
    /// The strand's circuit or stream ended.
    Down {
        /// The strand.
        strand: StrandId,
        /// How.
        end: StrandEnd,
    },
}

/// How a strand ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrandEnd {
    /// Its circuit was lost (a replacement may come).
    Lost,
    /// The other end finished the whole stream (`End` with [`EndReason::Done`]).
    PeerDone,
    /// The other end aborted the stream for this reason.
    PeerAborted(EndReason),
}

impl From<Option<EndReason>> for StrandEnd {
    /// `None`: lost; `Some(Done)`: the peer finished; anything else: the peer aborted.
    fn from(ended: Option<EndReason>) -> Self {
        match ended {
            None => StrandEnd::Lost,
            Some(EndReason::Done) => StrandEnd::PeerDone,
            Some(reason) => StrandEnd::PeerAborted(reason),
        }
    }
}

/// An `Up` the engine cannot take (too many strands, or an id it already has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// What the engine asks its driver while it decides ([`BraidEngine::poll_action`]).
pub trait StrandQueues {
    /// Whether `strand`'s outgoing queue takes one more message now (room the driver holds
    /// for it counts).
    fn has_room(&self, strand: StrandId) -> bool;

    /// How many strands may still come up (links and replacements under way, and strand
    /// events not handled yet), or `None` if unknown. With `Some(0)` and no live strand the
    /// stream fails at once instead of waiting `no_strand_timeout`.
    fn strands_to_come(&self) -> Option<usize>;
}

/// One `Data` message body to queue on a strand: a data fragment (a shared handle on the
/// sender's window copy, not a copy) or a batch of acks.
#[must_use]
#[derive(Debug)]
pub struct Transmit {
    /// The strand whose queue takes it.
    pub strand: StrandId,
    /// The message body.
    pub data: Bytes,
    /// An ack batch (else a data fragment).
    pub(super) acks: bool,
}

/// What the driver must do next (from [`BraidEngine::poll_action`]).
#[must_use]
#[derive(Debug)]
pub enum Action {
    /// Queue this on its strand without waiting ([`BraidEngine::transmit_blocked`] if the
    /// queue is full).
    Transmit(Transmit),
    /// Tell the strand supply that `strand` was lost with `live` strands left.
    Lost {
        /// The strand.
        strand: StrandId,
        /// Live strands left.
        live: usize,
    },
    /// Tell the strand supply the first bytes from the other end reached the app (or the
    /// other end finished without any). At most once.
    Answered,
    /// Shut down the app socket's write side (the other end finished, or the stream failed).
    CloseApp,
    /// Send `End` with `reason` on `strand`, waiting a little for room (the stream is over).
    End {
        /// The strand.
        strand: StrandId,
        /// Why the stream ended.
        reason: EndReason,
    },
    /// The stream is over; nothing more will come.
    Finished(BraidReport),
}
