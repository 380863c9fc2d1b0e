//! Why a directory snapshot was refused: while building, signing, decoding or verifying it.
//!
//! Each variant's text is meant to be logged as it is (it names no key and no client); the
//! caller that refuses a snapshot keeps its last good one.

use crate::Error;

/// Short hex form of a digest for error texts: the first 8 bytes.
fn short(digest: &[u8; 32]) -> String {
    hex::encode(&digest[..8])
}

/// Everything that makes a directory snapshot unusable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The input ended before the snapshot was complete; more bytes could still make it valid.
    #[error("directory snapshot is incomplete: the input ended early")]
    Incomplete,
    /// The bytes cannot be a snapshot encoding, whatever follows (trailing bytes, a descriptor
    /// length out of range ...).
    #[error("malformed directory snapshot: {what}")]
    Malformed {
        /// What was wrong with the encoding.
        what: &'static str,
    },
    /// The version byte names a snapshot format this build does not speak.
    #[error("unsupported directory snapshot version {0} (this build speaks version 2)")]
    BadVersion(u8),
    /// The input is longer than any snapshot may be; refused before reading it.
    #[error("directory snapshot of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// [`MAX_SNAPSHOT_LEN`](crate::snapshot::MAX_SNAPSHOT_LEN).
        max: usize,
    },
    /// The descriptor count is over the limit.
    #[error("directory snapshot claims {count} descriptors, more than the limit of {max}")]
    TooManyDescriptors {
        /// The count found (in the encoding, or given to the builder).
        count: usize,
        /// [`MAX_SNAPSHOT_DESCRIPTORS`](crate::snapshot::MAX_SNAPSHOT_DESCRIPTORS).
        max: usize,
    },
    /// The signature count is over the limit.
    #[error("directory snapshot carries {count} signatures, more than the limit of {max}")]
    TooManySignatures {
        /// The count found.
        count: usize,
        /// [`MAX_REGISTRIES`](crate::snapshot::MAX_REGISTRIES).
        max: usize,
    },
    /// A descriptor's identity is not above the one before it (the order is by identity, and no
    /// identity may appear twice).
    #[error("directory snapshot descriptor {index} is out of identity order or repeats one")]
    Unsorted {
        /// Position of the offending descriptor (from 0).
        index: usize,
    },
    /// `valid_until` is not after `issued_at`, or the snapshot would live longer than
    /// [`MAX_SNAPSHOT_LIFETIME_SECS`](crate::snapshot::MAX_SNAPSHOT_LIFETIME_SECS).
    #[error("directory snapshot lifetime {issued_at}..{valid_until} is empty or too long")]
    BadLifetime {
        /// The `issued_at` field (unix seconds).
        issued_at: u64,
        /// The `valid_until` field (unix seconds).
        valid_until: u64,
    },
    /// The registry key list is unusable (empty, too long, repeated or invalid keys).
    #[error("bad registry set: {reason}")]
    BadRegistrySet {
        /// What is wrong with it.
        reason: String,
    },
    /// The snapshot names another registry set than the one it is checked or signed against.
    #[error(
        "directory snapshot was made for registry set {}…, but this node is configured with {}…",
        short(.snapshot),
        short(.configured)
    )]
    WrongRegistrySet {
        /// The set digest inside the snapshot.
        snapshot: [u8; 32],
        /// The digest of the configured set.
        configured: [u8; 32],
    },
    /// A signature names a signer index past the end of the registry set.
    #[error("directory snapshot signature by registry #{index}, but the set has only {registries}")]
    UnknownSigner {
        /// The signer index found.
        index: u8,
        /// How many registries the set has.
        registries: usize,
    },
    /// Two signatures name the same signer.
    #[error("directory snapshot carries two signatures by registry #{index}")]
    DuplicateSigner {
        /// The repeated signer index.
        index: u8,
    },
    /// A signing key given to [`SignedSnapshot::sign_with`](crate::snapshot::SignedSnapshot::sign_with)
    /// is not one of the registry set's keys.
    #[error("the signing key is not one of the registry set's keys")]
    NotARegistry,
    /// A signature handed to
    /// [`SignedSnapshot::add_signature`](crate::snapshot::SignedSnapshot::add_signature) does not
    /// verify against its registry's key.
    #[error("signature by registry #{index} does not verify over this snapshot")]
    BadSignature {
        /// The claimed signer index.
        index: u8,
    },
    /// Fewer distinct registries than the threshold signed validly.
    #[error("directory snapshot has {valid} valid registry signatures, {needed} needed")]
    TooFewSignatures {
        /// Signatures that verified, from distinct known registries.
        valid: usize,
        /// The registry set's threshold (a majority).
        needed: usize,
    },
    /// `issued_at` is further in the future than the allowed clock skew.
    #[error("directory snapshot issued at {issued_at}, after now ({now}) plus the clock skew")]
    NotYetValid {
        /// The snapshot's `issued_at` (unix seconds).
        issued_at: u64,
        /// The time it was checked at (unix seconds).
        now: u64,
    },
    /// The snapshot is stale: `now >= valid_until`.
    #[error("directory snapshot expired at {valid_until} (now {now})")]
    Expired {
        /// The snapshot's `valid_until` (unix seconds).
        valid_until: u64,
        /// The time it was checked at (unix seconds).
        now: u64,
    },
    /// The candidate is not newer than the snapshot in use (from
    /// [`accept_newer`](crate::snapshot::accept_newer)).
    #[error(
        "directory snapshot issued at {candidate} is not newer than the one in use (issued at {current})"
    )]
    NotNewer {
        /// `issued_at` of the snapshot in use.
        current: u64,
        /// `issued_at` of the refused candidate.
        candidate: u64,
    },
    /// One descriptor inside is bad: not a valid signed descriptor (forged, tampered with,
    /// invalid field) or not fresh at the time of the check.
    #[error("directory snapshot descriptor {index}: {reason}")]
    BadDescriptor {
        /// Position of the descriptor in the snapshot (from 0).
        index: usize,
        /// Why it was refused.
        reason: Box<Error>,
    },
    /// While building: a descriptor expires before the snapshot's `valid_until`, so the snapshot
    /// would go bad during its lifetime.
    #[error("descriptor {index} expires at {expires}, before the snapshot's end {valid_until}")]
    ExpiresTooSoon {
        /// Position of the descriptor in the builder's input (from 0).
        index: usize,
        /// Its `expires` (unix seconds).
        expires: u64,
        /// The snapshot's `valid_until` (unix seconds).
        valid_until: u64,
    },
    /// The header's unmeasured weight is 0 (an unmeasured relay must weigh at least 1).
    #[error("directory snapshot gives unmeasured relays a weight of 0")]
    BadUnmeasuredWeight,
    /// One entry breaks a listing rule the encoding cannot express (a measurement of 0, an Exit
    /// flag on a relay whose policy allows no exit, a different unmeasured weight when building).
    #[error("directory snapshot entry {index}: {what}")]
    BadEntry {
        /// Position of the entry (from 0).
        index: usize,
        /// Which rule it breaks.
        what: &'static str,
    },
    /// While building: two descriptors share an identity.
    #[error("descriptor {index} repeats the identity of descriptor {first}")]
    DuplicateIdentity {
        /// Position of the later one in the builder's input.
        index: usize,
        /// Position of the first one.
        first: usize,
    },
}

impl SnapshotError {
    /// A codec read error as a snapshot error, keeping what was being read: running out of
    /// input is [`SnapshotError::Incomplete`], anything else [`SnapshotError::Malformed`]
    /// naming the field.
    pub fn from_codec(e: braid_codec::Error) -> Self {
        if e.is_incomplete() {
            Self::Incomplete
        } else {
            Self::Malformed { what: e.what() }
        }
    }
}
