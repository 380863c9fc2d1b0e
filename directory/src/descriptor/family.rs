//! The declared family of a descriptor (format 3): the identities of the other relays its
//! operator runs, as a count byte then 32 bytes per member.
//!
//! | field | size | rules |
//! |---|---|---|
//! | member count | 1 | 0 to [`MAX_FAMILY_MEMBERS`]; more is `Malformed` |
//! | each member | 32 | a relay identity (Ed25519 public key); no repeats, never the descriptor's own |
//!
//! The order is the relay's (the encoding is canonical because the body is kept as received).
//! One relay's list proves nothing: a family holds only between two relays that list each other
//! (see [`crate::family`]). This module does not check that members are valid keys or listed
//! relays: an unknown member simply never matches.

use std::collections::HashSet;

use super::invalid;
use crate::Error;
use braid_codec::{Reader, Writer};

/// The most family members one descriptor may declare.
pub const MAX_FAMILY_MEMBERS: usize = 32;

/// The longest wire form: count byte and [`MAX_FAMILY_MEMBERS`] identities.
pub(crate) const MAX_WIRE_LEN: usize = 1 + MAX_FAMILY_MEMBERS * 32;

/// Field rules: at most [`MAX_FAMILY_MEMBERS`] members, no member twice, not `identity` itself.
pub(crate) fn validate(identity: &[u8; 32], family: &[[u8; 32]]) -> Result<(), Error> {
    if family.len() > MAX_FAMILY_MEMBERS {
        let n = family.len();
        return Err(invalid(
            "family",
            format!("{n} members; at most {MAX_FAMILY_MEMBERS}"),
        ));
    }
    let mut seen = HashSet::with_capacity(family.len());
    for (i, member) in family.iter().enumerate() {
        if member == identity {
            return Err(invalid(
                "family",
                format!("member {i} is the relay's own identity"),
            ));
        }
        if !seen.insert(member) {
            return Err(invalid("family", format!("member {i} is listed twice")));
        }
    }
    Ok(())
}

/// Writes the count and the members. Needs a validated list (at most 32 members).
pub(crate) fn encode(w: &mut Writer, family: &[[u8; 32]]) -> Result<(), Error> {
    let count = u8::try_from(family.len())
        .ok()
        .filter(|&n| usize::from(n) <= MAX_FAMILY_MEMBERS)
        .ok_or_else(|| invalid("family", "too long to encode"))?;
    w.u8(count);
    for member in family {
        w.bytes(member);
    }
    Ok(())
}

/// Reads the count and the members: `Malformed` for a count over [`MAX_FAMILY_MEMBERS`],
/// `Incomplete` if the bytes end early. Repeats and self-listing are [`validate`]'s.
pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Vec<[u8; 32]>, Error> {
    let count = usize::from(r.u8("descriptor family count")?);
    if count > MAX_FAMILY_MEMBERS {
        return Err(Error::Malformed {
            what: "family has more than 32 members",
        });
    }
    let mut family = Vec::with_capacity(count);
    for _ in 0..count {
        family.push(r.array("descriptor family member")?);
    }
    Ok(family)
}
