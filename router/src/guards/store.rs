//! The guard file: the sampled guards in a versioned binary format read and written with
//! `braid-codec`. Strict: a bad magic, an unknown version, a truncated or overlong file, a
//! duplicated guard, counts that do not add up or a bad nickname are errors, never guesses.
//! The driver turns an error into a warning and a fresh start.
//!
//! Layout (big-endian): `b"BGRD"`, version (1), guard count (u16, at most
//! [`MAX_FILE_GUARDS`]), then per guard in sample order: identity (32 bytes), nickname (u8
//! length, UTF-8, at most [`MAX_NICKNAME_LEN`]), added (u64 unix seconds), confirmation order
//! (u32, `u32::MAX`: not confirmed), confirmed (u64; 0 when not confirmed), unlisted since
//! (u64; 0: listed), disabled at (u64; 0: not disabled), then attempts, built, uses, use
//! failures (u32 each). Reachability is not saved: a restart retries every guard.

use std::collections::HashSet;

use braid_codec::{Reader, Writer};

use super::{Guard, PathBias};

/// The guard file's magic bytes.
const MAGIC: &[u8; 4] = b"BGRD";
/// The guard file version this build writes and reads.
pub const GUARD_FILE_VERSION: u8 = 1;
/// Most guards a guard file may hold.
pub const MAX_FILE_GUARDS: usize = 256;
/// Longest nickname kept, in bytes.
pub const MAX_NICKNAME_LEN: usize = 64;
/// The "not confirmed" confirmation order.
const UNCONFIRMED: u32 = u32::MAX;

/// Why a guard file was not read.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardFileError {
    /// The bytes do not parse.
    #[error("guard file: {0}")]
    Codec(#[from] braid_codec::Error),
    /// Not a guard file.
    #[error("guard file: bad magic")]
    Magic,
    /// Written by another version.
    #[error("guard file version {0} (this build reads {GUARD_FILE_VERSION})")]
    Version(u8),
    /// A field's value is not allowed.
    #[error("guard file: invalid {0}")]
    Invalid(&'static str),
}

/// `name` cut to at most [`MAX_NICKNAME_LEN`] bytes on a character boundary.
pub(super) fn clip_nickname(name: &str) -> String {
    let mut end = name.len().min(MAX_NICKNAME_LEN);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

pub(super) fn encode(guards: &[Guard]) -> Vec<u8> {
    let mut w = Writer::new();
    w.bytes(MAGIC);
    w.u8(GUARD_FILE_VERSION);
    let guards = &guards[..guards.len().min(MAX_FILE_GUARDS)];
    // At most MAX_FILE_GUARDS (256), so the count fits a u16.
    w.u16(guards.len() as u16);
    for g in guards {
        w.bytes(&g.id);
        let nick = clip_nickname(&g.nickname);
        w.u8(nick.len() as u8);
        w.bytes(nick.as_bytes());
        w.u64(g.added_at);
        let (order, at) = g.confirmed.unwrap_or((UNCONFIRMED, 0));
        w.u32(order);
        w.u64(at);
        w.u64(g.unlisted_since.unwrap_or(0));
        w.u64(g.disabled_at.unwrap_or(0));
        w.u32(g.bias.attempts);
        w.u32(g.bias.successes);
        w.u32(g.bias.uses);
        w.u32(g.bias.use_failures);
    }
    w.finish()
}

pub(super) fn decode(bytes: &[u8]) -> Result<Vec<Guard>, GuardFileError> {
    let mut r = Reader::complete(bytes);
    if &r.array::<4>("magic")? != MAGIC {
        return Err(GuardFileError::Magic);
    }
    let version = r.u8("version")?;
    if version != GUARD_FILE_VERSION {
        return Err(GuardFileError::Version(version));
    }
    let count = usize::from(r.u16("guard count")?);
    if count > MAX_FILE_GUARDS {
        return Err(GuardFileError::Invalid("guard count"));
    }
    let mut guards = Vec::with_capacity(count);
    let (mut ids, mut orders) = (HashSet::new(), HashSet::new());
    for _ in 0..count {
        let id = r.array::<32>("identity")?;
        let nickname = std::str::from_utf8(r.u8_prefixed(MAX_NICKNAME_LEN, "nickname")?)
            .map_err(|_| GuardFileError::Invalid("nickname"))?
            .to_string();
        let added_at = r.u64("added")?;
        let order = r.u32("confirmation order")?;
        let confirmed_at = r.u64("confirmed")?;
        let unlisted = r.u64("unlisted since")?;
        let disabled = r.u64("disabled at")?;
        let bias = PathBias {
            attempts: r.u32("attempts")?,
            successes: r.u32("built")?,
            uses: r.u32("uses")?,
            use_failures: r.u32("use failures")?,
        };
        if !ids.insert(id) {
            return Err(GuardFileError::Invalid("duplicated guard"));
        }
        let confirmed = match (order, confirmed_at) {
            (UNCONFIRMED, 0) => None,
            (UNCONFIRMED, _) | (_, 0) => return Err(GuardFileError::Invalid("confirmation")),
            (o, at) => {
                if !orders.insert(o) {
                    return Err(GuardFileError::Invalid("duplicated confirmation order"));
                }
                Some((o, at))
            }
        };
        if bias.successes > bias.attempts || bias.use_failures > bias.uses {
            return Err(GuardFileError::Invalid("path-bias counts"));
        }
        guards.push(Guard {
            id,
            nickname,
            added_at,
            confirmed,
            unlisted_since: (unlisted != 0).then_some(unlisted),
            disabled_at: (disabled != 0).then_some(disabled),
            bias,
            unreachable: None,
        });
    }
    r.finish("guard file")?;
    Ok(guards)
}
