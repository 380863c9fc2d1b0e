//! Sizes and durations with units in config files: `"10 MB"`, `"1.5 GiB"`, `"2 MB/s"`,
//! `"30 min"`, `"7 days"`, as well as plain integers (bytes, seconds).
//!
//! Sizes are bytes: SI prefixes are powers of 1000 (`kB`, `MB`, `GB`, `TB`), IEC ones powers
//! of 1024 (`KiB`, `MiB`, `GiB`, `TiB`); units are case-insensitive (`mb` is a megabyte, never
//! a megabit) and a rate may end in `/s`. Durations are seconds: `s`, `min`, `h`, `day(s)`,
//! `week(s)` and their long forms. A number may have a fraction (`1.5 GiB`); the result is
//! rounded down to a whole byte or second. Anything else is an error naming the value; serde
//! (toml) adds the key and the line. This module only parses: ranges are each key's `validate`.

use std::fmt;

use serde::Deserializer;
use serde::de::{self, Visitor};

/// The most fraction digits a number may have (keeps the arithmetic in `u128`).
const MAX_FRACTION_DIGITS: u32 = 9;

/// Size units in bytes (lowercase, compared case-insensitively).
const SIZE_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("byte", 1),
    ("bytes", 1),
    ("kb", 1_000),
    ("mb", 1_000_000),
    ("gb", 1_000_000_000),
    ("tb", 1_000_000_000_000),
    ("kib", 1 << 10),
    ("mib", 1 << 20),
    ("gib", 1 << 30),
    ("tib", 1 << 40),
];

/// Duration units in seconds (lowercase, compared case-insensitively).
const DURATION_UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("s", 1),
    ("sec", 1),
    ("secs", 1),
    ("second", 1),
    ("seconds", 1),
    ("m", 60),
    ("min", 60),
    ("mins", 60),
    ("minute", 60),
    ("minutes", 60),
    ("h", 3600),
    ("hr", 3600),
    ("hour", 3600),
    ("hours", 3600),
    ("d", 86_400),
    ("day", 86_400),
    ("days", 86_400),
    ("w", 604_800),
    ("week", 604_800),
    ("weeks", 604_800),
];

/// Parses a size in bytes: `"500 kB"`, `"1.5 GiB"`, `"4096"`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse(
        text,
        text,
        SIZE_UNITS,
        "size",
        "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB",
    )
}

/// Parses a rate in bytes per second: a size, optionally ending in `/s` (`"2 MB/s"`).
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("/s")
        .or_else(|| t.strip_suffix("/S"))
        .unwrap_or(t);
    parse(
        text,
        t,
        SIZE_UNITS,
        "rate",
        "B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, each optionally /s",
    )
}

/// Parses a duration in seconds: `"90 s"`, `"30 min"`, `"2 h"`, `"7 days"`, `"600"`.
pub fn parse_duration_secs(text: &str) -> Result<u64, String> {
    parse(
        text,
        text,
        DURATION_UNITS,
        "duration",
        "s, min, h, days, weeks",
    )
}

/// Parses `body` (a number, then a unit from `units`); errors quote `text`.
fn parse(
    text: &str,
    body: &str,
    units: &[(&str, u64)],
    what: &str,
    known: &str,
) -> Result<u64, String> {
    let t = body.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err(format!(
            "invalid {what} {text:?}: expected a number, then a unit"
        ));
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || (number.contains('.') && fraction.is_empty()) {
        return Err(format!(
            "invalid {what} {text:?}: {number:?} is not a number"
        ));
    }
    let digits = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
    if digits > MAX_FRACTION_DIGITS {
        return Err(format!(
            "invalid {what} {text:?}: at most {MAX_FRACTION_DIGITS} digits after the point"
        ));
    }
    let Some(&(_, factor)) = units.iter().find(|(u, _)| u.eq_ignore_ascii_case(unit)) else {
        return Err(format!(
            "invalid {what} {text:?}: unknown unit {unit:?} (use {known})"
        ));
    };
    let too_big = || format!("invalid {what} {text:?}: too large");
    // whole has only ASCII digits here; a parse failure can only be overflow.
    let whole: u128 = whole.parse().map_err(|_| too_big())?;
    let frac: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| too_big())?
    };
    let scale = 10u128.pow(digits);
    let value = whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(frac))
        .and_then(|v| v.checked_mul(u128::from(factor)))
        .map(|v| v / scale)
        .ok_or_else(too_big)?;
    u64::try_from(value).map_err(|_| too_big())
}

/// A visitor taking a non-negative integer as is, or a string through `parse`.
struct UnitVisitor {
    what: &'static str,
    parse: fn(&str) -> Result<u64, String>,
}

impl Visitor<'_> for UnitVisitor {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} as an integer or a string with a unit", self.what)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        Ok(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v).map_err(|_| E::custom(format!("invalid {} {v}: negative", self.what)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        Err(E::custom(format!(
            "invalid {} {v}: write a fraction as a string with a unit, e.g. \"1.5 MB\"",
            self.what
        )))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

fn visitor(what: &'static str, parse: fn(&str) -> Result<u64, String>) -> UnitVisitor {
    UnitVisitor { what, parse }
}

/// `deserialize_with` for a size in bytes (`u64`).
pub fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(visitor("size", parse_size))
}

/// `deserialize_with` for a size in bytes (`usize`).
pub fn size_usize<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let v = size(d)?;
    usize::try_from(v).map_err(|_| de::Error::custom(format!("invalid size {v}: too large")))
}

/// `deserialize_with` for a rate in bytes per second (`u64`).
pub fn rate<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(visitor("rate", parse_rate))
}

/// `deserialize_with` for an optional size in bytes (the key absent means `None`).
pub fn opt_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    size(d).map(Some)
}

/// `deserialize_with` for an optional rate in bytes per second.
pub fn opt_rate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    rate(d).map(Some)
}

/// `deserialize_with` for a duration in whole seconds (`u64`).
pub fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    d.deserialize_any(visitor("duration", parse_duration_secs))
}

#[cfg(test)]
mod tests;
