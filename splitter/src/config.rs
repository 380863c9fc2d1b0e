//! Configuration of a braided stream: fragment size, window and reorder bounds, timers.
//!
//! Both ends must use the same [`Config`] for the window values: the sender never has more
//! than `window_bytes` / `window_fragments` unacknowledged, so a receiver with the same values
//! never overflows its reorder buffer with an honest peer. Not here: keys (see [`crate::key`])
//! and the number of strands in use (the caller adds them).

use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::wire::{ERASURE_HEADER_LEN, MAX_WIRE_PAYLOAD};

/// The most strands a stream may use (the braid design allows K in 1..=8).
pub const MAX_STRANDS: u8 = 8;

/// Largest fragment payload in bytes, between [`PayloadLimit::MIN`] and the 16-bit wire limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct PayloadLimit(u16);

impl PayloadLimit {
    /// The smallest allowed limit: room for an erasure header and a few shard bytes.
    pub const MIN: u16 = 64;

    /// The limit in bytes.
    pub fn get(self) -> usize {
        usize::from(self.0)
    }
}

impl TryFrom<u32> for PayloadLimit {
    type Error = Error;

    fn try_from(value: u32) -> Result<Self, Error> {
        match u16::try_from(value) {
            Ok(v) if v >= Self::MIN && usize::from(v) <= MAX_WIRE_PAYLOAD => Ok(Self(v)),
            _ => Err(Error::InvalidConfig {
                field: "max_payload",
                reason: "must be between 64 and 65535 bytes",
            }),
        }
    }
}

impl From<PayloadLimit> for u32 {
    fn from(value: PayloadLimit) -> Self {
        u32::from(value.0)
    }
}

/// How many strands a stream may hold at once, 1..=[`MAX_STRANDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct StrandLimit(u8);

impl StrandLimit {
    /// The limit as a number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u32> for StrandLimit {
    type Error = Error;

    fn try_from(value: u32) -> Result<Self, Error> {
        match u8::try_from(value) {
            Ok(v) if (1..=MAX_STRANDS).contains(&v) => Ok(Self(v)),
            _ => Err(Error::InvalidConfig {
                field: "max_strands",
                reason: "must be between 1 and 8",
            }),
        }
    }
}

impl From<StrandLimit> for u32 {
    fn from(value: StrandLimit) -> Self {
        u32::from(value.0)
    }
}

/// Splitter settings for one stream (both directions use the same values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Largest payload of one fragment; see [`default_max_payload`].
    pub max_payload: PayloadLimit,
    /// Payload bytes the sender may have unacknowledged, and the receiver may hold out of
    /// order; see [`default_window_bytes`].
    pub window_bytes: NonZeroU32,
    /// Fragments the sender may have unacknowledged, and the receiver may hold out of order;
    /// see [`default_window_fragments`].
    pub window_fragments: NonZeroU32,
    /// Strands a stream may hold at once; see [`default_max_strands`].
    pub max_strands: StrandLimit,
    /// RTT assumed for a strand before it is measured, in ms; see [`default_initial_rtt_ms`].
    pub initial_rtt_ms: NonZeroU32,
    /// Lower bound of the resend timeout, in ms; see [`default_min_rto_ms`].
    pub min_rto_ms: NonZeroU32,
    /// Upper bound of the resend timeout (also after backoff), in ms; see
    /// [`default_max_rto_ms`].
    pub max_rto_ms: NonZeroU32,
    /// Sends of one fragment (first send included) before the stream fails; see
    /// [`default_max_sends`].
    pub max_sends: NonZeroU32,
}

/// Default largest fragment payload: 3840 bytes, so a whole fragment (3888 bytes) fits the
/// relay data of one carrier cell (about 4000 bytes at three or four hops). The tag hashes the
/// header and payload padded to 4 KiB (see [`crate::key::padded_hash`]), so any payload up to
/// 4080 bytes costs the same hash and the largest one that fits a cell is the fastest.
pub fn default_max_payload() -> PayloadLimit {
    PayloadLimit(3840)
}

/// Default window: 1 MiB of payload in flight (and in the peer's reorder buffer).
pub fn default_window_bytes() -> NonZeroU32 {
    NonZeroU32::new(1 << 20).unwrap_or(NonZeroU32::MIN)
}

/// Default window: 1024 fragments in flight (and in the peer's reorder buffer).
pub fn default_window_fragments() -> NonZeroU32 {
    NonZeroU32::new(1024).unwrap_or(NonZeroU32::MIN)
}

/// Default strand limit: the design maximum, 8.
pub fn default_max_strands() -> StrandLimit {
    StrandLimit(MAX_STRANDS)
}

/// Default initial RTT guess: 500 ms (a three-hop onion circuit over home connections).
pub fn default_initial_rtt_ms() -> NonZeroU32 {
    NonZeroU32::new(500).unwrap_or(NonZeroU32::MIN)
}

/// Default minimum resend timeout: 200 ms.
pub fn default_min_rto_ms() -> NonZeroU32 {
    NonZeroU32::new(200).unwrap_or(NonZeroU32::MIN)
}

/// Default maximum resend timeout: 60 s (RFC 6298 allows an upper bound of at least 60 s).
pub fn default_max_rto_ms() -> NonZeroU32 {
    NonZeroU32::new(60_000).unwrap_or(NonZeroU32::MIN)
}

/// Default send limit per fragment: 8 sends, then the stream fails.
pub fn default_max_sends() -> NonZeroU32 {
    NonZeroU32::new(8).unwrap_or(NonZeroU32::MIN)
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_payload: default_max_payload(),
            window_bytes: default_window_bytes(),
            window_fragments: default_window_fragments(),
            max_strands: default_max_strands(),
            initial_rtt_ms: default_initial_rtt_ms(),
            min_rto_ms: default_min_rto_ms(),
            max_rto_ms: default_max_rto_ms(),
            max_sends: default_max_sends(),
        }
    }
}

/// Upper bound for `window_fragments` (the reorder buffer keeps one slot per fragment).
pub const MAX_WINDOW_FRAGMENTS: u32 = 1 << 20;

/// Upper bound for `window_bytes`.
pub const MAX_WINDOW_BYTES: u32 = 1 << 30;

impl Config {
    /// Checks the relations between fields that the types alone cannot express.
    pub fn validate(&self) -> Result<(), Error> {
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.window_fragments.get() < 2 {
            return invalid(
                "window_fragments",
                "must be at least 2 (one slot is kept for FIN)",
            );
        }
        if self.window_fragments.get() > MAX_WINDOW_FRAGMENTS {
            return invalid("window_fragments", "must be at most 2^20");
        }
        if self.window_bytes.get() > MAX_WINDOW_BYTES {
            return invalid("window_bytes", "must be at most 2^30");
        }
        if (self.window_bytes.get() as usize) < self.max_payload.get() {
            return invalid(
                "window_bytes",
                "must hold at least one full fragment payload",
            );
        }
        if self.min_rto_ms > self.max_rto_ms {
            return invalid("min_rto_ms", "must not exceed max_rto_ms");
        }
        if self.max_payload.get() < ERASURE_HEADER_LEN + 2 {
            return invalid("max_payload", "too small for an erasure shard");
        }
        Ok(())
    }

    /// `window_bytes` as a `usize`.
    pub(crate) fn window_bytes(&self) -> usize {
        self.window_bytes.get() as usize
    }

    /// `window_fragments` as a `usize`.
    pub(crate) fn window_fragments(&self) -> usize {
        self.window_fragments.get() as usize
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_parses_from_empty_toml() {
        Config::default().validate().unwrap();
        let parsed: Config = toml::from_str("").unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn toml_rejects_unknown_keys_and_out_of_range_values() {
        assert!(toml::from_str::<Config>("bogus = 1").is_err());
        assert!(toml::from_str::<Config>("max_strands = 9").is_err());
        assert!(toml::from_str::<Config>("max_strands = 0").is_err());
        assert!(toml::from_str::<Config>("max_payload = 63").is_err());
        assert!(toml::from_str::<Config>("max_payload = 65536").is_err());
        assert!(toml::from_str::<Config>("window_bytes = 0").is_err());
        let c: Config = toml::from_str("max_strands = 3\nmax_payload = 1200").unwrap();
        assert_eq!(c.max_strands.get(), 3);
        assert_eq!(c.max_payload.get(), 1200);
    }

    #[test]
    fn validate_rejects_inconsistent_values() {
        let mut c = Config {
            window_fragments: NonZeroU32::new(1).unwrap(),
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig {
                field: "window_fragments",
                ..
            })
        ));
        c = Config {
            window_bytes: NonZeroU32::new(100).unwrap(),
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig {
                field: "window_bytes",
                ..
            })
        ));
        c = Config {
            min_rto_ms: NonZeroU32::new(70_000).unwrap(),
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig {
                field: "min_rto_ms",
                ..
            })
        ));
        c = Config {
            window_fragments: NonZeroU32::new(MAX_WINDOW_FRAGMENTS + 1).unwrap(),
            ..Config::default()
        };
        assert!(matches!(
            c.validate(),
            Err(Error::InvalidConfig {
                field: "window_fragments",
                ..
            })
        ));
    }
}
