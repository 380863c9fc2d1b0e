//! The crate's error type: failures that end a stream or reject a call.
//!
//! Not here: unauthenticated junk (forged, malformed, misrouted, duplicated or replayed
//! fragments). Anyone on a strand can inject those, so they are dropped and counted in
//! [`crate::stats::DropCounts`] instead of ending the stream. An [`Error`] returned by
//! [`crate::Receiver::on_fragment`] or [`crate::Sender::on_ack`] means the authenticated peer
//! misbehaved (or exceeded a bound) and the caller must cut it off.

use crate::wire::{StrandId, StreamId, WireError};

/// Everything that can go wrong in the splitter. See the module doc for what is *not* an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`crate::Config`] value is out of range or inconsistent with another.
    #[error("invalid splitter config: {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A payload does not fit the 16-bit length field of a fragment.
    #[error("fragment payload of {len} bytes exceeds the wire limit of 65535")]
    FragmentTooLong {
        /// The payload length that was asked for.
        len: usize,
    },
    /// The peer sent a fragment beyond the reorder buffer's bound. The caller must cut the peer
    /// off; the receiver never buffers past its configured limit.
    #[error(
        "stream {stream}: fragment {seq} overflows the reorder buffer ({bound} limit {limit}, next expected {next})"
    )]
    ReorderOverflow {
        /// The stream.
        stream: StreamId,
        /// The sequence number of the fragment that did not fit.
        seq: u64,
        /// The next sequence number the receiver is waiting for.
        next: u64,
        /// Which bound was hit: `"bytes"` or `"fragments"`.
        bound: &'static str,
        /// The configured value of that bound.
        limit: u32,
    },
    /// An authenticated fragment broke the protocol (the peer holds the key, so this is a broken
    /// or malicious peer, not an on-path relay).
    #[error("stream {stream}: protocol violation in fragment {seq}: {violation}")]
    Protocol {
        /// The stream.
        stream: StreamId,
        /// The sequence number (or cumulative ack) of the offending fragment.
        seq: u64,
        /// What was wrong.
        violation: Violation,
    },
    /// Reed-Solomon encoding or decoding failed.
    #[error("erasure coding failed while {context}")]
    Erasure {
        /// What was being done.
        context: &'static str,
        /// The library's error.
        #[source]
        source: reed_solomon_simd::Error,
    },
    /// Erasure parameters outside `1 <= k < n <= 255`.
    #[error("invalid erasure parameters k={k}, n={n} (need 1 <= k < n <= 255)")]
    ErasureParams {
        /// Data shards asked for.
        k: usize,
        /// Total shards asked for.
        n: usize,
    },
    /// An erasure-coded message is longer than `k` shards of the configured payload size hold.
    #[error("message of {len} bytes exceeds the erasure limit of {max} bytes for these parameters")]
    MessageTooLong {
        /// The message length.
        len: usize,
        /// The most the parameters allow.
        max: usize,
    },
    /// `write` or `finish` after the stream was finished.
    #[error("stream {stream}: already finished, no more data may be written")]
    StreamFinished {
        /// The stream.
        stream: StreamId,
    },
    /// A fragment was resent the configured maximum number of times without an ack.
    #[error("stream {stream}: fragment {seq} unacknowledged after {attempts} sends")]
    ResendLimit {
        /// The stream.
        stream: StreamId,
        /// The fragment.
        seq: u64,
        /// How many times it was sent.
        attempts: u32,
    },
    /// `add_strand` beyond the configured number of strands.
    #[error("cannot add strand {strand}: already {limit} strands (remove failed ones first)")]
    TooManyStrands {
        /// The strand that was refused.
        strand: StrandId,
        /// The configured limit.
        limit: u8,
    },
    /// `add_strand` with an id that is already present.
    #[error("strand {strand} is already present")]
    DuplicateStrand {
        /// The strand.
        strand: StrandId,
    },
}

/// How an authenticated peer broke the protocol (context of [`Error::Protocol`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Violation {
    /// The fragment verified but its contents do not decode.
    #[error("undecodable authenticated fragment: {0}")]
    Undecodable(WireError),
    /// Data at or beyond a sequence number after the end of stream.
    #[error("data after the end of stream at {fin_seq}")]
    DataAfterFin {
        /// The sequence number that carried FIN.
        fin_seq: u64,
    },
    /// Two different end-of-stream positions.
    #[error("end of stream at {second} contradicts the earlier end at {first}")]
    ConflictingFin {
        /// The first FIN position.
        first: u64,
        /// The contradicting one.
        second: u64,
    },
    /// Erasure shards of one message disagree on its parameters, or an erasure message overlaps
    /// other fragments.
    #[error("inconsistent erasure group starting at {base}")]
    ErasureConflict {
        /// The first sequence number of the group.
        base: u64,
    },
    /// An ack for data that was never sent.
    #[error("ack up to {cumulative} but only {sent} fragments were sent")]
    AckBeyondSent {
        /// The cumulative ack received.
        cumulative: u64,
        /// The next sequence number the sender would assign.
        sent: u64,
    },
}
