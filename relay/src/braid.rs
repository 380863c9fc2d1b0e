//! Braided streams, sans-IO: one TCP connection whose bytes travel as splitter fragments over
//! several circuits ("strands") that end at the same exit. The same [`BraidEngine`] runs at the
//! client (for the app's socket) and at the exit (for the target's socket); the tokio driver
//! that feeds it is `shared::braid` (feature `driver`).
//!
//! Each direction has a [`Sender`] and the other end a [`Receiver`]; one fragment rides in one
//! `Data` message of a strand's circuit stream, acks ride back on the strand the fragment came
//! on. When a strand's circuit dies, the sender requeues what was in flight on it for the
//! survivors and the engine tells the driver, whose supply may find a replacement; the stream
//! ends only when no strand is left for `no_strand_timeout`.
//!
//! Keys: the client draws a 32-byte secret per stream and sends it to the exit inside the
//! onion-encrypted `BeginBraid` of the first strand, so only the client and the exit know it.
//! Both fragment keys ([`DirectionKeys`]) and the link id that other strands present in their
//! `Link` messages are derived from it; the scheduler's per-stream randomness too.
//!
//! Acks are batched per strand (see `acks`), several to a message.
//!
//! Everything is bounded: one pending data fragment, [`ACKS_PER_STRAND`] acks per strand,
//! `out_buffer` bytes for a slow socket (the engine stops taking fragments beyond it, which
//! stops the circuits), and the splitter's own window.
//!
//! This module holds no sockets, tasks or clocks: time comes in as `now`.

use std::time::Duration;

use braid_splitter::wire::OVERHEAD;
use braid_splitter::{
    Config, DirectionKeys, Receiver, ReceiverStats, Sender, SenderStats, StrandId,
};

use crate::msg::EndReason;

mod acks;
pub mod engine;

pub use acks::{ACK_DELAY, ACK_EVERY, ACK_TOTAL, ACKS_PER_STRAND};
pub use engine::{Action, BraidEngine, Refused, StrandEnd, StrandInput, StrandQueues, Transmit};

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
