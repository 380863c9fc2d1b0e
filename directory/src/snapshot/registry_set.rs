//! The configured registry keys a snapshot must be signed by, and the majority it needs.
//!
//! Like Tor's directory authority list: every proxy and relay is configured with the same keys.
//! The keys are kept sorted, so the order they are configured in does not matter; a signature
//! names its signer by index into that sorted list. This module holds no secret keys.

use ed25519_dalek::VerifyingKey;

use super::SnapshotError;

/// The most registries a set may have.
pub const MAX_REGISTRIES: usize = 9;

/// Prepended to the sorted keys before hashing them into [`RegistrySet::digest`].
const SET_DOMAIN: &[u8] = b"braid registry set v1\0";

/// 1 to [`MAX_REGISTRIES`] distinct Ed25519 registry keys, sorted, and their digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrySet {
    keys: Vec<VerifyingKey>,
    digest: [u8; 32],
}

impl RegistrySet {
    /// The set of `keys`, in any order: [`SnapshotError::BadRegistrySet`] if there are none,
    /// more than [`MAX_REGISTRIES`], two equal ones, or one that is not a valid, not small-order
    /// Ed25519 public key.
    pub fn new(keys: &[[u8; 32]]) -> Result<Self, SnapshotError> {
        let bad = |reason: String| SnapshotError::BadRegistrySet { reason };
        if !(1..=MAX_REGISTRIES).contains(&keys.len()) {
            return Err(bad(format!(
                "{} keys; need 1 to {MAX_REGISTRIES}",
                keys.len()
            )));
        }
        let mut sorted = keys.to_vec();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad("the same key is listed twice".into()));
        }
        let keys = sorted
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let key = VerifyingKey::from_bytes(bytes)
                    .map_err(|_| bad(format!("key #{i} is not a valid Ed25519 public key")))?;
                if key.is_weak() {
                    return Err(bad(format!("key #{i} is a small-order (weak) key")));
                }
                Ok(key)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(SET_DOMAIN);
        // At most MAX_REGISTRIES keys, checked above: the count fits a byte.
        hasher.update(&[keys.len() as u8]);
        for key in &sorted {
            hasher.update(key);
        }
        Ok(Self {
            keys,
            digest: *hasher.finalize().as_bytes(),
        })
    }

    /// How many registries there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false: a set has at least one key. (Present because `len` is.)
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How many distinct registries must sign a snapshot: a majority, `len / 2 + 1`.
    pub fn threshold(&self) -> usize {
        self.keys.len() / 2 + 1
    }

    /// The keys in index order (sorted by their bytes).
    pub fn keys(&self) -> &[VerifyingKey] {
        &self.keys
    }

    /// The key of signer `index`, if there is one.
    pub fn key(&self, index: u8) -> Option<&VerifyingKey> {
        self.keys.get(usize::from(index))
    }

    /// The signer index of `key`, if it is in the set.
    pub fn index_of(&self, key: &VerifyingKey) -> Option<u8> {
        let pos = self.keys.iter().position(|k| k == key)?;
        // pos < len <= MAX_REGISTRIES: fits a byte.
        u8::try_from(pos).ok()
    }

    /// BLAKE3 over `"braid registry set v1\0"`, the key count (one byte) and the sorted keys. A
    /// snapshot carries the digest of the set it was made for.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}
