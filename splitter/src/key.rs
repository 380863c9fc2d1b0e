//! Fragment authentication keys: derivation and the BLAKE3 keyed hash (tag) itself.
//!
//! One key per direction of a braided stream. The data fragments of a direction and the acks
//! that answer them are tagged with that direction's key; the ACK flag is inside the tagged
//! header, so a reflected fragment never verifies as the other kind, and a fragment reflected
//! back to its sender fails because the sender's receiving side holds the other key. Not here:
//! where the secret material comes from (the router's end-to-end circuit keys).

use std::fmt;

use crate::wire::TAG_LEN;

/// The `blake3::derive_key` context string for fragment keys.
pub const KEY_CONTEXT: &str = "braid splitter v1 fragment key";

/// A 32-byte BLAKE3 key that tags and verifies the fragments of one direction of a stream.
#[derive(Clone)]
pub struct FragmentKey([u8; 32]);

impl FragmentKey {
    /// Derives a key from caller-supplied secret material with
    /// `blake3::derive_key(KEY_CONTEXT, material)`. The material must already be specific to
    /// one direction; [`DirectionKeys::derive`] does that for you.
    pub fn derive(material: &[u8]) -> Self {
        Self(blake3::derive_key(KEY_CONTEXT, material))
    }

    /// Uses 32 bytes as the key directly (for keys derived elsewhere, and test vectors).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The tag of `authenticated` (a fragment's header and payload); see [`padded_hash`].
    pub(crate) fn tag(&self, authenticated: &[u8]) -> [u8; TAG_LEN] {
        *padded_hash(&self.0, authenticated).as_bytes()
    }

    /// Whether `tag` is the tag of `authenticated`, compared in constant time
    /// (`blake3::Hash`'s equality is constant-time).
    pub(crate) fn verify(&self, authenticated: &[u8], tag: &[u8; TAG_LEN]) -> bool {
        padded_hash(&self.0, authenticated) == *tag
    }
}

/// Inputs up to this length are hashed as they are.
const UNPADDED_MAX: usize = 1024;

/// Longer inputs are zero-padded to a multiple of this length.
pub const PAD_TO: usize = 4096;

/// BLAKE3 keyed hash of `input`, zero-padded to a multiple of [`PAD_TO`] bytes when it is longer
/// than one 1 KiB BLAKE3 chunk.
///
/// Why: BLAKE3 hashes the full chunks of a power-of-two subtree in parallel (SIMD) but the rest
/// one after another, so 3856 bytes take about three times as long as 4096 bytes. Padding a
/// fragment's header and payload to 4 KiB with zeros makes the tag about twice as fast. The
/// padding is unambiguous because the header holds the payload length.
pub fn padded_hash(key: &[u8; 32], input: &[u8]) -> blake3::Hash {
    if input.len() <= UNPADDED_MAX {
        return blake3::keyed_hash(key, input);
    }
    if input.len() <= PAD_TO {
        let mut padded = [0u8; PAD_TO];
        padded[..input.len()].copy_from_slice(input);
        return blake3::keyed_hash(key, &padded);
    }
    let mut padded = input.to_vec();
    padded.resize(input.len().next_multiple_of(PAD_TO), 0);
    blake3::keyed_hash(key, &padded)
}

impl fmt::Debug for FragmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FragmentKey(<redacted>)")
    }
}

/// The two keys of a stream, derived from one shared secret.
#[derive(Clone, Debug)]
pub struct DirectionKeys {
    /// Tags data sent by the side that opened the stream (the client) and the acks for it.
    pub initiator_to_responder: FragmentKey,
    /// Tags data sent by the side that accepted the stream (the exit) and the acks for it.
    pub responder_to_initiator: FragmentKey,
}

impl DirectionKeys {
    /// Derives both direction keys from the end-to-end secret material of the strands (for
    /// example the concatenated end-to-end keys of the strands in the order they were set up).
    /// Each key is `derive_key(KEY_CONTEXT, material || label)` with a fixed per-direction label.
    pub fn derive(material: &[u8]) -> Self {
        let derive = |label: &[u8]| {
            let mut hasher = blake3::Hasher::new_derive_key(KEY_CONTEXT);
            hasher.update(material);
            hasher.update(label);
            FragmentKey(*hasher.finalize().as_bytes())
        };
        Self {
            initiator_to_responder: derive(b" initiator->responder"),
            responder_to_initiator: derive(b" responder->initiator"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn derive_matches_blake3_derive_key_and_directions_differ() {
        let material = b"end-to-end secret";
        assert_eq!(
            FragmentKey::derive(material).0,
            blake3::derive_key(KEY_CONTEXT, material)
        );
        let keys = DirectionKeys::derive(material);
        assert_ne!(keys.initiator_to_responder.0, keys.responder_to_initiator.0);
        let mut joined = material.to_vec();
        joined.extend_from_slice(b" initiator->responder");
        assert_eq!(
            keys.initiator_to_responder.0,
            blake3::derive_key(KEY_CONTEXT, &joined)
        );
    }

    #[test]
    fn verify_accepts_own_tag_and_rejects_any_change() {
        let key = FragmentKey::from_bytes([7; 32]);
        let tag = key.tag(b"hello");
        assert!(key.verify(b"hello", &tag));
        assert!(!key.verify(b"hellp", &tag));
        let mut bad = tag;
        bad[31] ^= 1;
        assert!(!key.verify(b"hello", &bad));
        assert!(!FragmentKey::from_bytes([8; 32]).verify(b"hello", &tag));
        assert_eq!(format!("{key:?}"), "FragmentKey(<redacted>)");
    }

    #[test]
    fn padding_rule() {
        let key = [5u8; 32];
        let short = vec![1u8; 1024];
        assert_eq!(padded_hash(&key, &short), blake3::keyed_hash(&key, &short));
        let mid = vec![1u8; 1025];
        let mut mid_padded = mid.clone();
        mid_padded.resize(4096, 0);
        assert_eq!(
            padded_hash(&key, &mid),
            blake3::keyed_hash(&key, &mid_padded)
        );
        let long = vec![1u8; 4097];
        let mut long_padded = long.clone();
        long_padded.resize(8192, 0);
        assert_eq!(
            padded_hash(&key, &long),
            blake3::keyed_hash(&key, &long_padded)
        );
        let exact = vec![1u8; 4096];
        assert_eq!(padded_hash(&key, &exact), blake3::keyed_hash(&key, &exact));
    }
}
