//! One listed relay on the snapshot wire: the descriptor's encoding, the flags byte and the
//! measured bandwidth (format 2, the README's "Snapshot wire format" table).
//!
//! Reading here checks only the encoding (lengths, flag bits); the descriptor inside is parsed
//! and its signature checked by [`SignedSnapshot::verify`](super::SignedSnapshot::verify).

use braid_codec::{Reader, Writer};

use super::{MIN_DESCRIPTOR_LEN, SnapshotError};
use crate::descriptor::MAX_ENCODED_LEN;
use crate::listing::{ListedRelay, RelayFlags};

/// Bytes of one entry after its descriptor: flags (1) and measured bandwidth (8).
pub(crate) const ENTRY_TAIL_LEN: usize = 1 + 8;

/// One entry as read from a snapshot body: descriptor bytes not yet parsed or verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEntry<'a> {
    /// The descriptor's encoding ([`SignedDescriptor::encode`](crate::SignedDescriptor::encode)).
    pub descriptor: &'a [u8],
    /// The flags byte, known bits only.
    pub flags: RelayFlags,
    /// The measured bandwidth; `None` for the wire value 0.
    pub measured_bw: Option<u64>,
}

impl<'a> RawEntry<'a> {
    /// The identity inside the descriptor encoding (bytes 1..33, after the version byte).
    pub fn identity(&self) -> Option<&'a [u8]> {
        self.descriptor.get(1..33)
    }
}

/// Reads one entry: u16 descriptor length and the bytes (`Malformed` outside
/// [`MIN_DESCRIPTOR_LEN`]..=[`MAX_ENCODED_LEN`]), the flags byte (`Malformed` for an unknown
/// bit), the measured bandwidth (u64, 0 = not measured). `Incomplete` if the bytes end early.
pub fn next_entry<'a>(r: &mut Reader<'a>) -> Result<RawEntry<'a>, SnapshotError> {
    let codec = SnapshotError::from_codec;
    let descriptor = next_descriptor(r)?;
    let flags = RelayFlags::from_bits(r.u8("snapshot relay flags").map_err(codec)?).ok_or(
        SnapshotError::Malformed {
            what: "unknown relay flag bits",
        },
    )?;
    let measured = r.u64("snapshot measured bandwidth").map_err(codec)?;
    Ok(RawEntry {
        descriptor,
        flags,
        measured_bw: (measured != 0).then_some(measured),
    })
}

/// Reads one length-prefixed descriptor encoding (u16 length, then the bytes, as a snapshot entry
/// and the registry's state image list them) and checks the length is possible: `Malformed`
/// outside [`MIN_DESCRIPTOR_LEN`]..=[`MAX_ENCODED_LEN`], `Incomplete` if the bytes end early.
pub fn next_descriptor<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], SnapshotError> {
    let len = r
        .u16("snapshot descriptor length")
        .map_err(SnapshotError::from_codec)?;
    let len = usize::from(len);
    if !(MIN_DESCRIPTOR_LEN..=MAX_ENCODED_LEN).contains(&len) {
        return Err(SnapshotError::Malformed {
            what: "descriptor length out of range",
        });
    }
    r.take(len, "snapshot descriptor")
        .map_err(SnapshotError::from_codec)
}

/// Appends one entry (the caller checked `measured_bw != Some(0)` and the descriptor length).
pub(crate) fn write_entry(w: &mut Writer, relay: &ListedRelay, encoded: &[u8]) {
    // A descriptor encoding is at most MAX_ENCODED_LEN (3212) bytes: the cast is lossless.
    w.u16(encoded.len() as u16);
    w.bytes(encoded);
    w.u8(relay.flags.bits());
    w.u64(relay.measured_bw.unwrap_or(0));
}

/// The entry rules the wire cannot express, checked when building and when verifying: a
/// measurement is at least 1 (0 means "not measured" on the wire), and the Exit flag needs a
/// policy that allows some exit. `None` if the entry is fine, else what is wrong.
pub(crate) fn entry_fault(relay: &ListedRelay) -> Option<&'static str> {
    if relay.measured_bw == Some(0) {
        return Some("measured bandwidth of 0 (unmeasured is None)");
    }
    if relay.flags.is_exit() && !relay.descriptor.descriptor().is_exit() {
        return Some("Exit flag on a relay whose policy allows no exit");
    }
    None
}
