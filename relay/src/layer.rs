//! Per-hop onion layers: ChaCha20-Poly1305 with counter nonces, one key per hop and direction.
//!
//! A circuit of `n` hops gives hop `i` (1-based) a layer of [`layer_len`]`(i)` bytes: the first
//! `layer_len(i) - 16` bytes are ciphertext, the last 16 the Poly1305 tag. Peeling hop `i`'s layer
//! leaves exactly hop `i + 1`'s layer, so every link carries full [`BODY_LEN`] bodies and the
//! bytes past the layer are zero padding. The nonce is the little-endian cell counter of that
//! direction, so a replayed, dropped or reordered cell fails to authenticate.
//!
//! This module holds keys and transforms bytes; it does no I/O and knows no cell kinds.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use crate::cell::{BODY_LEN, CELL_VERSION};
use crate::error::CellError;

/// Size of one layer's authentication tag.
pub const TAG_LEN: usize = 16;

/// Which way a cell travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client towards exit.
    Forward,
    /// Exit towards client.
    Backward,
}

/// Length of hop `position`'s layer (1-based position in the circuit).
pub const fn layer_len(position: usize) -> usize {
    BODY_LEN - TAG_LEN * (position - 1)
}

/// Bytes left for the relay message inside a circuit of `hops` hops.
pub const fn message_len(hops: usize) -> usize {
    BODY_LEN - TAG_LEN * hops
}

/// One direction of one hop: a ChaCha20-Poly1305 key and the next counter.
pub struct LayerKey {
    key: LessSafeKey,
    counter: u64,
    direction: Direction,
}

impl std::fmt::Debug for LayerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("LayerKey")
            .field("counter", &self.counter)
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

impl LayerKey {
    /// A key for `direction` whose first cell uses counter `first_counter`.
    pub fn new(key: &[u8; 32], direction: Direction, first_counter: u64) -> Self {
        // A 32-byte key is exactly what CHACHA20_POLY1305 takes, so construction cannot fail;
        // ring only rejects wrong key lengths.
        #[allow(clippy::expect_used)]
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte ChaCha20 key");
        LayerKey {
            key: LessSafeKey::new(unbound),
            counter: first_counter,
            direction,
        }
    }

    /// The counter the next cell will use.
    pub fn counter(&self) -> u64 {
        self.counter
    }

    fn next_nonce(&mut self) -> Result<Nonce, CellError> {
        let c = self.counter;
        self.counter = c.checked_add(1).ok_or(CellError::CounterExhausted)?;
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&c.to_le_bytes());
        Ok(Nonce::assume_unique_for_key(n))
    }

    fn aad(&self) -> [u8; 2] {
        let dir = match self.direction {
            Direction::Forward => 0,
            Direction::Backward => 1,
        };
        [CELL_VERSION, dir]
    }

    /// Encrypts `buf[..len - 16]` in place and writes the tag into `buf[len - 16..len]`.
    pub fn seal(&mut self, buf: &mut [u8], len: usize) -> Result<(), CellError> {
        if len < TAG_LEN || len > buf.len() {
            return Err(CellError::Malformed {
                what: "layer length",
            });
        }
        let nonce = self.next_nonce()?;
        let aad = self.aad();
        let (data, rest) = buf[..len].split_at_mut(len - TAG_LEN);
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), data)
            .map_err(|_| CellError::Malformed { what: "seal input" })?;
        rest.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Authenticates and decrypts `buf[..len]` in place, leaving plaintext in `buf[..len - 16]`.
    ///
    /// On failure the counter does not advance past the failed cell's nonce (the circuit is torn
    /// down anyway) and `layer` is reported in the error.
    pub fn open(&mut self, buf: &mut [u8], len: usize, layer: usize) -> Result<(), CellError> {
        if len < TAG_LEN || len > buf.len() {
            return Err(CellError::Malformed {
                what: "layer length",
            });
        }
        let nonce = self.next_nonce()?;
        let aad = self.aad();
        self.key
            .open_in_place(nonce, Aad::from(aad), &mut buf[..len])
            .map_err(|_| CellError::Integrity { layer })?;
        Ok(())
    }
}

/// The two keys a hop shares with the client.
#[derive(Debug)]
pub struct HopKeys {
    /// Client to exit.
    pub forward: LayerKey,
    /// Exit to client.
    pub backward: LayerKey,
}

impl HopKeys {
    /// Keys from the Noise split: `k1` protects initiator-to-responder (forward), `k2` the other
    /// way. Both counters start at 0; backward counter 0 wraps the nested handshake reply.
    pub fn from_split(k1: &[u8; 32], k2: &[u8; 32]) -> Self {
        HopKeys {
            forward: LayerKey::new(k1, Direction::Forward, 0),
            backward: LayerKey::new(k2, Direction::Backward, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded output of the test above (ring and RustCrypto agree on it).
    const LAYER_VECTOR: &str = "83890797af27078569c3f69646ec7e9182076191a3ceffa0d2d11ab4e72fece6";

    fn keys(seed: u8) -> ([u8; 32], [u8; 32]) {
        ([seed; 32], [seed.wrapping_add(100); 32])
    }

    #[test]
    fn matches_an_independent_chacha20poly1305() {
        // Cross-check ring against the RustCrypto implementation with our nonce and AAD layout.
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let mut k = LayerKey::new(&key, Direction::Forward, 7);
        let mut buf = [0u8; 32];
        buf[..16].copy_from_slice(b"sixteen byte msg");
        k.seal(&mut buf, 32).expect("seal");

        let other = chacha20poly1305::ChaCha20Poly1305::new((&key).into());
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&7u64.to_le_bytes());
        let mut data = b"sixteen byte msg".to_vec();
        let tag = other
            .encrypt_in_place_detached((&nonce).into(), &[CELL_VERSION, 0], &mut data)
            .expect("encrypt");
        assert_eq!(&buf[..16], &data[..]);
        assert_eq!(&buf[16..], tag.as_slice());
        assert_eq!(hex::encode(buf), LAYER_VECTOR);
    }

    /// Backward direction (AAD `[1, 1]`), counter 0: the counter a hop uses to wrap the nested
    /// handshake reply. Cross-checked with Python `cryptography`'s ChaCha20Poly1305.
    #[test]
    fn backward_test_vector() {
        let key: [u8; 32] = core::array::from_fn(|i| 0x80 + i as u8);
        let mut k = LayerKey::new(&key, Direction::Backward, 0);
        let mut buf = [0u8; 32];
        buf[..16].copy_from_slice(b"sixteen byte msg");
        k.seal(&mut buf, 32).expect("seal");
        assert_eq!(
            hex::encode(buf),
            "593562d95b3f80ebaf48519a84b0de4dee3d619dd849ad01b3ffbc62802440bf"
        );
        assert_eq!(k.counter(), 1);
    }

    #[test]
    fn seal_then_open_round_trips_and_counts() {
        let (k1, _) = keys(1);
        let mut tx = LayerKey::new(&k1, Direction::Forward, 0);
        let mut rx = LayerKey::new(&k1, Direction::Forward, 0);
        for i in 0..5u8 {
            let mut buf = [i; 64];
            tx.seal(&mut buf, 64).expect("seal");
            rx.open(&mut buf, 64, 1).expect("open");
            assert!(buf[..48].iter().all(|&b| b == i));
        }
        assert_eq!(rx.counter(), 5);
    }

    #[test]
    fn altered_bit_fails() {
        let (k1, _) = keys(2);
        let mut tx = LayerKey::new(&k1, Direction::Forward, 0);
        let mut rx = LayerKey::new(&k1, Direction::Forward, 0);
        let mut buf = [7u8; 100];
        tx.seal(&mut buf, 100).expect("seal");
        buf[3] ^= 0x01;
        assert_eq!(
            rx.open(&mut buf, 100, 2),
            Err(CellError::Integrity { layer: 2 })
        );
    }

    #[test]
    fn replayed_and_reordered_cells_fail() {
        let (k1, _) = keys(3);
        let mut tx = LayerKey::new(&k1, Direction::Forward, 0);
        let mut a = [1u8; 64];
        let mut b = [2u8; 64];
        tx.seal(&mut a, 64).expect("seal");
        tx.seal(&mut b, 64).expect("seal");
        // Reordered: b first.
        let mut rx = LayerKey::new(&k1, Direction::Forward, 0);
        let mut b2 = b;
        assert!(rx.open(&mut b2, 64, 1).is_err());
        // Replayed: a twice.
        let mut rx = LayerKey::new(&k1, Direction::Forward, 0);
        let mut a1 = a;
        rx.open(&mut a1, 64, 1).expect("first copy opens");
        let mut a2 = a;
        assert!(rx.open(&mut a2, 64, 1).is_err());
    }

    #[test]
    fn directions_are_domain_separated() {
        let (k1, _) = keys(4);
        let mut tx = LayerKey::new(&k1, Direction::Forward, 0);
        let mut rx = LayerKey::new(&k1, Direction::Backward, 0);
        let mut buf = [0u8; 64];
        tx.seal(&mut buf, 64).expect("seal");
        assert!(rx.open(&mut buf, 64, 1).is_err());
    }

    #[test]
    fn layer_lengths_nest() {
        assert_eq!(layer_len(1), BODY_LEN);
        assert_eq!(layer_len(2), BODY_LEN - 16);
        assert_eq!(message_len(3), layer_len(3) - 16);
    }

    #[test]
    fn counter_exhaustion_is_an_error() {
        let mut k = LayerKey::new(&[0; 32], Direction::Forward, u64::MAX);
        let mut buf = [0u8; 32];
        assert_eq!(k.seal(&mut buf, 32), Err(CellError::CounterExhausted));
    }
}
