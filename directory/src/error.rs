//! The crate's one error type.
//!
//! Every variant says what was being checked and carries the values needed to act on it; it is not
//! an I/O error type (this crate does no I/O).

use crate::descriptor::{CLOCK_SKEW_SECS, DESCRIPTOR_VERSION};

impl From<braid_codec::Error> for Error {
    /// A codec read error as a descriptor error, keeping what was being read: running out of
    /// input is [`Error::Incomplete`], anything else [`Error::Malformed`] naming the field.
    fn from(e: braid_codec::Error) -> Self {
        if e.is_incomplete() {
            Error::Incomplete
        } else {
            Error::Malformed { what: e.what() }
        }
    }
}

/// Everything that can go wrong while building, signing, parsing or checking directory data.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended before the descriptor was complete; more bytes could still make it valid.
    #[error("descriptor is incomplete: the input ended early")]
    Incomplete,
    /// The bytes cannot be a descriptor encoding, whatever follows (bad flags, trailing bytes ...).
    #[error("malformed descriptor: {what}")]
    Malformed {
        /// What was wrong with the encoding.
        what: &'static str,
    },
    /// The version byte names a descriptor format this build does not speak.
    #[error("unsupported descriptor version {0} (this build speaks version {DESCRIPTOR_VERSION})")]
    BadVersion(u8),
    /// The signature does not verify against the identity key inside the descriptor: forged,
    /// tampered with, or signed by some other key.
    #[error("descriptor signature does not verify against its identity key")]
    BadSignature,
    /// [`Descriptor::sign`](crate::Descriptor::sign) was given a key whose public half is not the
    /// descriptor's `identity`.
    #[error("signing key does not match the descriptor identity")]
    KeyMismatch,
    /// The descriptor's lifetime is over (`now >= expires`).
    #[error("descriptor expired at {expires} (now {now})")]
    Expired {
        /// The descriptor's `expires` field (unix seconds).
        expires: u64,
        /// The time it was checked at (unix seconds).
        now: u64,
    },
    /// The descriptor claims to be published further in the future than the allowed clock skew.
    #[error("descriptor published at {published}, more than {CLOCK_SKEW_SECS} s after now ({now})")]
    NotYetValid {
        /// The descriptor's `published` field (unix seconds).
        published: u64,
        /// The time it was checked at (unix seconds).
        now: u64,
    },
    /// A descriptor field is well encoded but its value breaks a rule (length, charset, range).
    #[error("invalid descriptor field `{field}`: {reason}")]
    InvalidField {
        /// The field's name as in [`Descriptor`](crate::Descriptor).
        field: &'static str,
        /// Which rule it breaks.
        reason: String,
    },
    /// An exit policy line could not be parsed (or there were too many rules).
    #[error("bad exit policy line {line:?}: {reason}")]
    BadPolicy {
        /// The offending line, cut to at most 80 characters.
        line: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The directory file as a whole is unusable: not JSON, wrong shape, wrong version, too big.
    #[error("bad directory file: {0}")]
    DirectoryFormat(String),
    /// One descriptor in a directory file is invalid.
    #[error("directory entry {index}: {error}")]
    DirectoryEntry {
        /// Position of the entry in the `descriptors` array (from 0).
        index: usize,
        /// Why it was rejected.
        error: Box<Error>,
    },
    /// Two entries of a directory carry the same relay identity.
    #[error("directory entry {index} repeats the identity of entry {first}")]
    DuplicateIdentity {
        /// Position of the later entry.
        index: usize,
        /// Position of the first entry with that identity.
        first: usize,
    },
}
