//! Test harness (feature `harness`, never in a release build): a virtual-clock network of K
//! strands with per-strand delay, jitter (reordering), loss, duplication and death
//! ([`Wire`]), and [`Net`], one [`Sender`] and one [`Receiver`] joined by such a wire. Other
//! crates' engines (the relay's braid engine) put their own ends on a [`Wire`].
//!
//! Everything is deterministic for a seed; a panic is the failure report.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test harness: a panic is the report

use crate::receiver::AckToSend;
use crate::{
    Config, DirectionKeys, Error, FragmentKey, Received, Receiver, SendAction, Sender, StrandId,
    StreamId,
};

/// Tiny deterministic generator for the network's decisions.
#[derive(Debug, Clone)]
pub struct Dice(u64);

impl Dice {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    /// The next 64 random bits (splitmix64).
    #[allow(clippy::should_implement_trait)] // an endless generator, not an iterator
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p && p > 0.0
    }
    /// A number below `n` (0 for `n` = 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// How one strand behaves.
#[derive(Clone, Copy, Debug)]
pub struct Link {
    /// One-way base delay in ms.
    pub delay: u64,
    /// Extra random delay up to this many ms (reordering).
    pub jitter: u64,
    /// Probability a packet is lost.
    pub loss: f64,
    /// Probability a packet is delivered twice.
    pub dup: f64,
    /// From this time on (ms) the strand drops everything.
    pub dies_at: Option<u64>,
}

impl Link {
    /// A strand with `delay` ms one way and nothing else.
    pub fn clean(delay: u64) -> Self {
        Self {
            delay,
            jitter: 0,
            loss: 0.0,
            dup: 0.0,
            dies_at: None,
        }
    }
}

/// A packet on a [`Wire`].
#[derive(Debug)]
pub struct Packet<T> {
    /// When it arrives (virtual ms).
    pub at: u64,
    order: u64,
    /// The strand it travels on.
    pub strand: StrandId,
    /// What it carries.
    pub payload: T,
}

/// Strands on a virtual millisecond clock: carries payloads of type `T` with each strand's
/// [`Link`] behaviour, and hands them out in arrival order.
#[derive(Debug)]
pub struct Wire<T> {
    /// Per strand (indexed by `StrandId`), how it behaves.
    pub links: Vec<Link>,
    /// The network's randomness.
    pub dice: Dice,
    packets: Vec<Packet<T>>,
    order: u64,
}

impl<T: Clone> Wire<T> {
    /// A wire of `links` whose randomness comes from `seed`.
    pub fn new(links: Vec<Link>, seed: u64) -> Self {
        Wire {
            links,
            dice: Dice::new(seed),
            packets: Vec::new(),
            order: 0,
        }
    }

    /// Sends `payload` on `strand` at `now`: lost, delivered once or twice, after the strand's
    /// delay and jitter; nothing once the strand is dead.
    pub fn carry(&mut self, now: u64, strand: StrandId, payload: T) {
        let link = self.links[strand.0 as usize];
        if link.dies_at.is_some_and(|t| now >= t) || self.dice.chance(link.loss) {
            return;
        }
        let copies = if self.dice.chance(link.dup) { 2 } else { 1 };
        for _ in 0..copies {
            let at = now + link.delay + self.dice.below(link.jitter + 1);
            self.order += 1;
            self.packets.push(Packet {
                at,
                order: self.order,
                strand,
                payload: payload.clone(),
            });
        }
    }

    /// When the next packet arrives.
    pub fn next_at(&self) -> Option<u64> {
        self.packets.iter().map(|p| p.at).min()
    }

    /// Takes every packet due at `now`, in arrival order.
    pub fn due(&mut self, now: u64) -> Vec<Packet<T>> {
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.packets.len() {
            if self.packets[i].at <= now {
                due.push(self.packets.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| (p.at, p.order));
        due
    }

    /// Drops every packet still on its way on `strand`.
    pub fn cut(&mut self, strand: StrandId) {
        self.packets.retain(|p| p.strand != strand);
    }
}

/// Alters a fragment on its way to the receiver.
pub type Tamper = Box<dyn FnMut(&mut Dice, &mut Vec<u8>)>;

/// One sender and one receiver joined by a [`Wire`]; fragments go one way, acks the other.
pub struct Net {
    /// The sending end.
    pub sender: Sender,
    /// The receiving end.
    pub receiver: Receiver,
    /// What the receiver delivered.
    pub out: Vec<u8>,
    /// Virtual time (ms).
    pub now: u64,
    /// The strands (`true` payloads go to the receiver, `false` ones are acks).
    pub wire: Wire<(Vec<u8>, bool)>,
    /// Transmissions per strand.
    pub sent_on: Vec<u64>,
    /// Largest reorder-buffer fill seen.
    pub max_buffered: usize,
    /// Called on every fragment on its way to the receiver; may alter it.
    pub tamper: Option<Tamper>,
    /// Whether `run` finishes the stream once all data is written.
    pub finish: bool,
    failed_reported: Vec<bool>,
}

/// The stream id [`Net`] uses.
pub const STREAM: StreamId = StreamId(77);

/// The key [`Net`] uses.
pub fn keys() -> FragmentKey {
    DirectionKeys::derive(b"test material").initiator_to_responder
}

impl Net {
    /// A sender and a receiver with `config`, joined by `links`, randomized by `seed`.
    pub fn new(config: &Config, links: Vec<Link>, seed: u64) -> Self {
        let mut sender = Sender::new(config, STREAM, keys(), seed).unwrap();
        for i in 0..links.len() {
            sender.add_strand(StrandId(i as u32)).unwrap();
        }
        let receiver = Receiver::new(config, STREAM, keys()).unwrap();
        Self {
            sender,
            receiver,
            out: Vec::new(),
            now: 0,
            sent_on: vec![0; links.len()],
            failed_reported: vec![false; links.len()],
            wire: Wire::new(links, seed),
            max_buffered: 0,
            tamper: None,
            finish: true,
        }
    }

    /// Drains the sender's transmit queue. Returns the wake-up time, if any.
    fn pump(&mut self) -> Result<Option<u64>, Error> {
        loop {
            match self.sender.poll(self.now)? {
                SendAction::Transmit {
                    strand, fragment, ..
                } => {
                    let bytes = fragment.to_vec();
                    self.sent_on[strand.0 as usize] += 1;
                    self.wire.carry(self.now, strand, (bytes, true));
                }
                SendAction::Idle { wake_at } => return Ok(wake_at),
                SendAction::NoStrand | SendAction::Finished => return Ok(None),
            }
        }
    }

    /// Runs until both ends finished, or `deadline` (virtual ms) passes, writing `data` (in
    /// `chunk`-byte writes) and finishing. Returns Ok(true) if complete.
    pub fn run(&mut self, data: &[u8], chunk: usize, deadline: u64) -> Result<bool, Error> {
        let mut written = 0;
        let mut finished_writing = false;
        loop {
            while written < data.len() {
                let end = (written + chunk.max(1)).min(data.len());
                let n = self.sender.write(&data[written..end])?;
                if n == 0 {
                    break;
                }
                written += n;
            }
            if self.finish && written == data.len() && !finished_writing {
                self.sender.finish()?;
                finished_writing = true;
            }
            // Report dead strands to the sender once they have been dead for a while, as a
            // router would after a circuit-level failure.
            for i in 0..self.wire.links.len() {
                if let Some(t) = self.wire.links[i].dies_at
                    && self.now >= t + 50
                    && !self.failed_reported[i]
                {
                    self.failed_reported[i] = true;
                    let _ = self.sender.on_strand_failed(StrandId(i as u32));
                }
            }
            let wake = self.pump()?;
            if self.sender.is_finished() && self.receiver.is_finished() {
                return Ok(true);
            }
            let next = match (self.wire.next_at(), wake) {
                (Some(at), Some(w)) => at.min(w),
                (Some(at), None) => at,
                (None, Some(w)) => w,
                (None, None) => return Ok(false),
            };
            if next > deadline {
                return Ok(false);
            }
            self.now = self.now.max(next);
            for p in self.wire.due(self.now) {
                let (mut bytes, to_receiver) = p.payload;
                if to_receiver {
                    if let Some(tamper) = self.tamper.as_mut() {
                        tamper(&mut self.wire.dice, &mut bytes);
                    }
                    match self.receiver.on_fragment(p.strand, &bytes, &mut self.out)? {
                        Received::Accepted { ack, .. } | Received::Duplicate { ack } => {
                            self.send_ack(ack)
                        }
                        Received::Dropped(_) => {}
                    }
                    self.max_buffered = self.max_buffered.max(self.receiver.buffered_bytes());
                } else {
                    let _ = self.sender.on_ack(p.strand, &bytes, self.now)?;
                }
            }
        }
    }

    fn send_ack(&mut self, ack: AckToSend) {
        self.wire
            .carry(self.now, ack.strand, (ack.fragment.to_vec(), false));
    }
}

/// Deterministic test data.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut dice = Dice::new(seed);
    (0..len).map(|_| dice.next() as u8).collect()
}
