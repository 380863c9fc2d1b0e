//! Client identities: the libp2p identity a proxy shows the guards is never shared across
//! isolation keys. Each isolation key gets its own `Transport` (its own swarm and a fresh
//! Ed25519 key that is never stored), and so does each clean circuit built ahead (bound to
//! the key that takes it), so two SOCKS usernames never reach any relay under one peer id,
//! and a key that comes back after its identity was closed gets a new one.
//!
//! Bounded: at most `max` identities at once. An identity is *quiet* when none of its
//! circuits carries an open stream. A new identity first closes those quiet and unused for
//! `idle`; when the pool is still full, the least recently used one quiet for at least
//! [`RECLAIM_GRACE`] is closed, with its circuits (they carry no stream; the key that owned
//! them gets a fresh identity next time). When every identity carries open streams, a new
//! key waits up to [`ROOM_WAIT`] for one to become quiet, then the build is refused
//! (`RouterError::Limit("client identities")`) rather than sharing one.
//! The manager's own transport (directory fetches) is never one of them. It does not choose
//! paths or build circuits.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use braid_transport::{Identity, PeerId, Transport, TransportConfig};
use tokio::sync::Mutex;
use tracing::debug;

use crate::circuit::Circuit;
use crate::error::RouterError;

/// One identity and what it carries.
struct Slot {
    /// The isolation key it belongs to; `None` for a clean circuit's, until a key takes it.
    key: Option<Vec<u8>>,
    transport: Transport,
    circuits: Vec<Weak<Circuit>>,
    last_used: Instant,
}

/// How long an identity must have been unused before a new key may take its place: a
/// circuit just built or handed over has no stream yet for a moment.
pub const RECLAIM_GRACE: Duration = Duration::from_secs(1);
/// How long a new key's stream waits for an identity to become free before it is refused.
pub const ROOM_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting key looks for room.
const ROOM_POLL: Duration = Duration::from_millis(50);

impl Slot {
    /// No circuit of this identity carries an open stream (closed circuits are forgotten).
    fn quiet(&mut self) -> bool {
        self.circuits
            .retain(|c| c.upgrade().is_some_and(|c| !c.is_closed()));
        self.circuits
            .iter()
            .filter_map(Weak::upgrade)
            .all(|c| c.stream_count() == 0)
    }

    /// Closes the identity's circuits and its swarm.
    fn close(self) {
        for c in self.circuits.iter().filter_map(Weak::upgrade) {
            c.close();
        }
        debug!("client identity closed");
        tokio::spawn(async move { self.transport.shutdown().await });
    }
}

/// The pool of client identities.
pub struct ClientIdentities {
    max: usize,
    idle: Duration,
    slots: Mutex<Vec<Slot>>,
}

impl std::fmt::Debug for ClientIdentities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentities")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl ClientIdentities {
    /// At most `max` identities (at least 1); one with no open circuit for `idle` is closed.
    pub fn new(max: usize, idle: Duration) -> Self {
        Self {
            max: max.max(1),
            idle,
            slots: Mutex::new(Vec::new()),
        }
    }

    /// The transport for `key` (`None`: a new one for a clean circuit built ahead).
    /// A key's request waits up to [`ROOM_WAIT`] for room when every identity carries a
    /// stream (a burst of new usernames is delayed, not refused); a clean circuit's fails at
    /// once (it is only built ahead).
    pub(crate) async fn transport_for(&self, key: Option<&[u8]>) -> Result<Transport, RouterError> {
        let give_up = Instant::now() + ROOM_WAIT;
        let mut slots = loop {
            let mut slots = self.slots.lock().await;
            if let Some(key) = key
                && let Some(slot) = slots
                    .iter_mut()
                    .filter(|s| s.key.as_deref() == Some(key))
                    .max_by_key(|s| s.last_used)
            {
                slot.last_used = Instant::now();
                return Ok(slot.transport.clone());
            }
            match self.make_room(&mut slots) {
                Ok(()) => break slots,
                Err(e) if key.is_none() || Instant::now() >= give_up => return Err(e),
                Err(_) => {
                    drop(slots);
                    tokio::time::sleep(ROOM_POLL).await;
                }
            }
        };
        let transport = Transport::start(
            Identity::generate(),
            TransportConfig {
                listen: Vec::new(),
                ..TransportConfig::default()
            },
        )
        .await?;
        debug!(
            keyed = key.is_some(),
            identities = slots.len() + 1,
            "new client identity"
        );
        slots.push(Slot {
            key: key.map(<[u8]>::to_vec),
            transport: transport.clone(),
            circuits: Vec::new(),
            last_used: Instant::now(),
        });
        Ok(transport)
    }

    /// Records that `circuit` was built on the identity `client` (so it is not idle).
    pub(crate) async fn track(&self, client: PeerId, circuit: &Arc<Circuit>) {
        let mut slots = self.slots.lock().await;
        if let Some(slot) = slots.iter_mut().find(|s| s.transport.peer_id() == client) {
            slot.circuits.push(Arc::downgrade(circuit));
            slot.last_used = Instant::now();
        }
    }

    /// A clean circuit was taken by `key`: the identity it was built on is the key's from
    /// now on (an identity already bound to another key is never rebound).
    pub(crate) async fn bind(&self, circuit: &Arc<Circuit>, key: &[u8]) {
        let mut slots = self.slots.lock().await;
        let carries = |s: &Slot| {
            s.circuits
                .iter()
                .any(|c| std::ptr::eq(c.as_ptr(), Arc::as_ptr(circuit)))
        };
        if let Some(slot) = slots.iter_mut().find(|s| carries(s))
            && slot.key.is_none()
        {
            slot.key = Some(key.to_vec());
            slot.last_used = Instant::now();
        }
    }

    /// The peer ids in use now, with the isolation key each belongs to (for tests and
    /// diagnostics; keys are the SOCKS credentials' hash, never the credentials).
    pub async fn identities(&self) -> Vec<(PeerId, Option<Vec<u8>>)> {
        let slots = self.slots.lock().await;
        slots
            .iter()
            .map(|s| (s.transport.peer_id(), s.key.clone()))
            .collect()
    }

    /// Closes every identity.
    pub async fn close_all(&self) {
        let slots: Vec<Slot> = self.slots.lock().await.drain(..).collect();
        for slot in slots {
            slot.transport.shutdown().await;
        }
    }

    /// Closes identities quiet and unused for `idle`, then, if the pool is full, the least
    /// recently used one quiet for [`RECLAIM_GRACE`]; refuses when none can go.
    fn make_room(&self, slots: &mut Vec<Slot>) -> Result<(), RouterError> {
        let now = Instant::now();
        let mut i = 0;
        while i < slots.len() {
            let expired = now.duration_since(slots[i].last_used) > self.idle;
            if expired && slots[i].quiet() {
                slots.remove(i).close();
            } else {
                i += 1;
            }
        }
        if slots.len() >= self.max {
            let oldest = slots
                .iter_mut()
                .enumerate()
                .filter(|(_, s)| now.duration_since(s.last_used) >= RECLAIM_GRACE)
                .filter_map(|(i, s)| s.quiet().then_some((i, s.last_used)))
                .min_by_key(|(_, at)| *at)
                .map(|(i, _)| i);
            match oldest {
                Some(i) => slots.remove(i).close(),
                None => return Err(RouterError::Limit("client identities")),
            }
        }
        Ok(())
    }
}
