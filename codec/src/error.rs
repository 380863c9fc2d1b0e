//! The reader's and the writer's errors. Every error names the field or message it concerns
//! (`what`); the crates that speak a format map these into their own error enums.

/// Why a [`crate::Reader`] could not read a value.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input ended inside `what`; more bytes may complete it. Only a reader made with
    /// [`crate::Reader::new`] (a prefix of a stream) returns this.
    #[error("incomplete {what}: at least {needed} more bytes needed")]
    Incomplete {
        /// What was being read.
        what: &'static str,
        /// How many more bytes are needed at least (always at least 1). Reading exactly this
        /// many more never reads past the field.
        needed: usize,
    },
    /// The input is wrong: no further byte can make it valid.
    #[error("malformed {what}: {problem}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        problem: Problem,
    },
}

impl Error {
    /// What was being read when the error happened.
    pub fn what(&self) -> &'static str {
        match self {
            Error::Incomplete { what, .. } | Error::Malformed { what, .. } => what,
        }
    }

    /// Whether more input could make the read succeed.
    pub fn is_incomplete(&self) -> bool {
        matches!(self, Error::Incomplete { .. })
    }

    /// How many more bytes are needed at least, if the error is [`Error::Incomplete`].
    pub fn needed(&self) -> Option<usize> {
        match self {
            Error::Incomplete { needed, .. } => Some(*needed),
            Error::Malformed { .. } => None,
        }
    }
}

/// What is wrong with a malformed input.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// A field runs past the end of a body whose end is known ([`crate::Reader::complete`]).
    #[error("{needed} bytes past the end of the body")]
    Truncated {
        /// How many bytes are missing.
        needed: usize,
    },
    /// A length prefix announces more bytes than the caller allows.
    #[error("length {len} is over the limit of {max}")]
    TooLong {
        /// The announced length.
        len: usize,
        /// The caller's maximum.
        max: usize,
    },
    /// Bytes are left after the end of the message.
    #[error("{extra} trailing bytes")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
    /// Padding that must be zero has a non-zero byte.
    #[error("non-zero padding byte at offset {offset}")]
    NonZeroPadding {
        /// The byte's offset from the start of the reader's input.
        offset: usize,
    },
}

/// Why a [`crate::Writer`] refused to write a value.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A length-prefixed field is longer than its maximum (the caller's, or what the prefix can
    /// describe).
    #[error("{what} of {len} bytes is over the limit of {max}")]
    TooLong {
        /// What was being written.
        what: &'static str,
        /// The field's length.
        len: usize,
        /// The effective maximum.
        max: usize,
    },
}

impl WriteError {
    /// What was being written.
    pub fn what(&self) -> &'static str {
        match self {
            WriteError::TooLong { what, .. } => what,
        }
    }
}
