//! The registry's replicated state machine, sans-IO: the commands Raft carries, the rules for
//! applying them, and the state image a Raft snapshot carries.
//!
//! The state is the set of relay descriptors published, the registries' signed attestations
//! of the relays they verified themselves ([`votes`]), which relays a majority vouched for, and
//! a clock that only the registries' attested clocks move, so applying the same log gives the
//! same state on every registry, whatever their wall clocks say. Storage (SQLite) is the
//! `store` module, behind the `store` feature; Raft itself (log, votes, network) is not here.

mod attest;
pub mod votes;

use braid_codec::{Reader, Writer};
use braid_directory::descriptor::UncheckedDescriptor;
use braid_directory::snapshot::{
    MAX_SNAPSHOT_DESCRIPTORS, SnapshotError, next_descriptor, verify_descriptor_signatures,
};
use braid_directory::{Error, SignedDescriptor};

pub use attest::{
    ATTESTATION_DOMAIN, ATTESTATION_VERSION, Attestation, AttestedRelay, MAX_ATTESTATION_LEN,
    MAX_ATTESTED_RELAYS, SignedAttestation, descriptor_digest,
};
use votes::Votes;

/// The command format this crate writes and reads (first byte of commands).
pub const STATE_VERSION: u8 = 1;

/// The state image format this crate writes and reads (first byte of images). Version 2 adds
/// the votes ([`votes::Votes`]).
pub const IMAGE_VERSION: u8 = 2;

/// The most descriptors the state may hold: the most a directory snapshot may list.
pub const MAX_STATE_DESCRIPTORS: usize = MAX_SNAPSHOT_DESCRIPTORS;

/// The longest opaque Raft membership record kept with the state, in bytes.
pub const MAX_MEMBERSHIP_LEN: usize = 64 * 1024;

/// The longest command encoding: version, tag, and a maximal descriptor or attestation.
pub const MAX_COMMAND_LEN: usize =
    2 + if braid_directory::descriptor::MAX_ENCODED_LEN > MAX_ATTESTATION_LEN {
        braid_directory::descriptor::MAX_ENCODED_LEN
    } else {
        MAX_ATTESTATION_LEN
    };

const TAG_PUBLISH: u8 = 1;
const TAG_EXPIRE: u8 = 2;
const TAG_ATTEST: u8 = 3;

/// BLAKE3 of a descriptor's claimed addresses (each as u16 length and bytes): votes for a
/// relay carry over to a newer descriptor with the same addresses.
pub fn addresses_digest(d: &SignedDescriptor) -> [u8; 32] {
    let mut w = Writer::default();
    for a in &d.descriptor().addresses {
        // Descriptor addresses are at most a few hundred bytes (the descriptor is < 4 KiB).
        w.u16(a.len() as u16);
        w.bytes(a.as_bytes());
    }
    *blake3::hash(&w.finish()).as_bytes()
}

/// A Raft log position: the leader's term and the entry's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    /// The term of the leader that created the entry.
    pub term: u64,
    /// The entry's position in the log (from 1).
    pub index: u64,
}

/// What a registry proposes to the Raft log. The leader proposes; every registry applies the
/// committed entries in log order.
// Commands are transient and handled one at a time: boxing the descriptor would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Record this relay's descriptor (or replace its older descriptor). It is listed only once
    /// a majority of the registries attested it ([`Command::Attest`]); any member may propose
    /// one.
    Publish(SignedDescriptor),
    /// Advance the state clock towards `now`, but never past what the registries' attested
    /// clocks allow ([`votes::attested_clock`]), and drop every descriptor expired by then.
    /// The leader proposes one periodically from its clock; with attestations flowing it
    /// changes nothing (they move the clock themselves).
    Expire {
        /// Unix seconds.
        now: u64,
    },
    /// One registry's signed attestation of the relays it verified itself. The signature is
    /// checked by [`Command::decode`]; that the signer is a configured registry and the
    /// attestation is newer than its last one is the store's apply rule.
    Attest(SignedAttestation),
}

impl Command {
    /// `[version, tag]` then, for `Publish` (tag 1), the descriptor's encoding; for `Expire`
    /// (tag 2), `now` as a big-endian u64.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(STATE_VERSION);
        match self {
            Command::Publish(d) => {
                w.u8(TAG_PUBLISH);
                w.bytes(&d.encode());
            }
            Command::Expire { now } => {
                w.u8(TAG_EXPIRE);
                w.u64(*now);
            }
            Command::Attest(a) => {
                w.u8(TAG_ATTEST);
                w.bytes(&a.encode());
            }
        }
        w.finish()
    }

    /// Parses [`Command::encode`]'s output, checking the descriptor or attestation inside
    /// completely (signature included): the errors of [`SignedDescriptor::decode`] and
    /// [`SignedAttestation::decode`], plus
    /// [`Error::BadVersion`], and [`Error::Malformed`] for an unknown tag, an input over
    /// [`MAX_COMMAND_LEN`] or trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_COMMAND_LEN {
            return Err(Error::Malformed {
                what: "command longer than the limit",
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("command version")?;
        if version != STATE_VERSION {
            return Err(Error::BadVersion(version));
        }
        match r.u8("command tag")? {
            TAG_PUBLISH => {
                let rest = bytes.get(2..).unwrap_or_default();
                Ok(Command::Publish(SignedDescriptor::decode(rest)?))
            }
            TAG_EXPIRE => {
                let now = r.u64("expire command time")?;
                r.finish("trailing bytes after the command")?;
                Ok(Command::Expire { now })
            }
            TAG_ATTEST => {
                let rest = bytes.get(2..).unwrap_or_default();
                Ok(Command::Attest(SignedAttestation::decode(rest)?))
            }
            _ => Err(Error::Malformed {
                what: "unknown command tag",
            }),
        }
    }
}

/// Why a committed command changed nothing. Deterministic: every registry rejects the same
/// entry the same way. The entry still counts as applied (`last_applied` moves past it).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The entry's bytes are not a valid command (forged or tampered descriptor included).
    #[error("log entry is not a valid command: {0}")]
    BadCommand(Error),
    /// The descriptor expires at or before the state clock.
    #[error("descriptor expired at {expires}; the registry clock is at {clock}")]
    Expired {
        /// The descriptor's `expires`.
        expires: u64,
        /// The state clock.
        clock: u64,
    },
    /// A descriptor of this relay published at the same time or later is already listed.
    #[error("descriptor published at {published} is not newer than the listed one ({listed})")]
    Stale {
        /// The refused descriptor's `published`.
        published: u64,
        /// The listed descriptor's `published`.
        listed: u64,
    },
    /// The state holds its limit of descriptors and this relay is not one of them.
    #[error("the registry already lists its limit of {max} relays")]
    Full {
        /// The limit.
        max: usize,
    },
    /// A time field is past 2^63 - 1, which the store cannot hold.
    #[error("time {value} is past the largest the store can hold")]
    TimeOutOfRange {
        /// The offending value.
        value: u64,
    },
    /// An attestation signed by a key that is not one of the configured registries.
    #[error("attestation signed by a key that is not a configured registry")]
    UnknownSigner,
    /// An attestation not newer (by `(now, seq)`) than the signer's last applied one: a replay.
    #[error(
        "attestation ({now}, {seq}) is not newer than the registry's last ({last_now}, {last_seq})"
    )]
    Replayed {
        /// The attestation's `now`.
        now: u64,
        /// The attestation's `seq`.
        seq: u64,
        /// The signer's last applied `now`.
        last_now: u64,
        /// The signer's last applied `seq`.
        last_seq: u64,
    },
}

/// The listed descriptor of a relay, as far as the publish rule needs it.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Listed<'a> {
    /// Its `published`.
    pub published: u64,
    /// Its encoding.
    pub encoded: &'a [u8],
}

/// What applying a `Publish` does.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PublishEffect {
    /// The same bytes are already listed: nothing to do.
    Unchanged,
    /// Insert a new relay.
    Insert,
    /// Replace the relay's older descriptor.
    Replace,
}

/// The publish rule: refuse a descriptor that expires by `clock` or is not newer than the listed
/// one, or a new relay when `count` has reached `max`.
#[cfg_attr(not(feature = "store"), allow(dead_code))]
pub(crate) fn publish_effect(
    d: &SignedDescriptor,
    encoded: &[u8],
    clock: u64,
    listed: Option<Listed<'_>>,
    count: usize,
    max: usize,
) -> Result<PublishEffect, Rejection> {
    let (published, expires) = (d.descriptor().published, d.descriptor().expires);
    for value in [published, expires] {
        if i64::try_from(value).is_err() {
            return Err(Rejection::TimeOutOfRange { value });
        }
    }
    if expires <= clock {
        return Err(Rejection::Expired { expires, clock });
    }
    match listed {
        Some(l) if l.encoded == encoded => Ok(PublishEffect::Unchanged),
        Some(l) if published <= l.published => Err(Rejection::Stale {
            published,
            listed: l.published,
        }),
        Some(_) => Ok(PublishEffect::Replace),
        None if count >= max => Err(Rejection::Full { max }),
        None => Ok(PublishEffect::Insert),
    }
}

/// The whole state, as a Raft snapshot carries it: where it stands in the log, the clock, the
/// opaque Raft membership record, the descriptors sorted by identity, and the votes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateImage {
    /// The last log entry applied.
    pub last_applied: Option<LogId>,
    /// The state clock (the latest `Expire { now }` applied).
    pub clock: u64,
    /// The last membership entry applied and its bytes (opaque here; the Raft layer encodes it).
    pub membership: Option<(LogId, Vec<u8>)>,
    /// The published descriptors, sorted by identity, none expired at `clock`.
    pub descriptors: Vec<SignedDescriptor>,
    /// The registries' clocks and votes and the eligible relays; every vote and listed relay
    /// names a relay in `descriptors`.
    pub votes: Votes,
}

impl StateImage {
    /// Version byte; `last_applied` (flag byte, then term and index as u64 if 1); `clock` (u64);
    /// membership (flag byte, then term, index, u32 length and bytes if 1); descriptor count
    /// (u32); each descriptor as u16 length and bytes; then the votes ([`Votes`]'s layout).
    /// Fields must be within the limits that [`StateImage::decode`] checks.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(IMAGE_VERSION);
        write_log_id(&mut w, self.last_applied);
        w.u64(self.clock);
        write_log_id(&mut w, self.membership.as_ref().map(|m| m.0));
        if let Some((_, bytes)) = &self.membership {
            // At most MAX_MEMBERSHIP_LEN (64 KiB) for any image that decodes or comes from a
            // store: fits a u32.
            w.u32(bytes.len() as u32);
            w.bytes(bytes);
        }
        // At most MAX_STATE_DESCRIPTORS, each at most MAX_ENCODED_LEN bytes: the casts are
        // lossless.
        w.u32(self.descriptors.len() as u32);
        for d in &self.descriptors {
            let e = d.encode();
            w.u16(e.len() as u16);
            w.bytes(&e);
        }
        self.votes.write(&mut w);
        w.finish()
    }

    /// Parses and checks an image: the errors of the snapshot codec ([`SnapshotError::Incomplete`]
    /// for any strict prefix, `Malformed`, `BadVersion`, `TooManyDescriptors` over
    /// `max_descriptors`, `Unsorted`), and [`SnapshotError::BadDescriptor`] for a descriptor
    /// that is not validly signed or is expired at the image's clock; `Malformed` for votes
    /// that are unsorted or name a relay without a descriptor. Every descriptor signature is
    /// checked: the image comes from another registry. The votes themselves are not signed in
    /// an image (the attestations they came from are in the log): a registry that installs a
    /// snapshot trusts its leader for them (README, "What a hostile registry can do").
    pub fn decode(bytes: &[u8], max_descriptors: usize) -> Result<Self, SnapshotError> {
        let codec = SnapshotError::from_codec;
        let mut r = Reader::new(bytes);
        let version = r.u8("state image version").map_err(codec)?;
        if version != IMAGE_VERSION {
            return Err(SnapshotError::BadVersion(version));
        }
        let last_applied = read_log_id(&mut r)?;
        let clock = r.u64("state image clock").map_err(codec)?;
        let membership = match read_log_id(&mut r)? {
            None => None,
            Some(id) => {
                // Over the limit is Malformed with this name, as soon as the length is read.
                let record = r
                    .u32_prefixed(MAX_MEMBERSHIP_LEN, "membership record over the limit")
                    .map_err(codec)?;
                Some((id, record.to_vec()))
            }
        };
        let count = r.u32("state image descriptor count").map_err(codec)?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        let max = max_descriptors.min(MAX_STATE_DESCRIPTORS);
        if count > max {
            return Err(SnapshotError::TooManyDescriptors { count, max });
        }
        let mut encodings = Vec::with_capacity(count);
        for index in 0..count {
            let encoded = next_descriptor(&mut r)?;
            let identity = encoded.get(1..33);
            if encodings
                .last()
                .is_some_and(|p: &&[u8]| p.get(1..33) >= identity)
            {
                return Err(SnapshotError::Unsorted { index });
            }
            encodings.push(encoded);
        }
        let votes = Votes::read(&mut r, max)?;
        r.finish("trailing bytes after the state image")
            .map_err(codec)?;
        let known = |relay: &[u8; 32]| {
            encodings
                .binary_search_by(|e| e.get(1..33).cmp(&Some(&relay[..])))
                .is_ok()
        };
        if !votes.votes.iter().all(|v| known(&v.relay))
            || !votes.listed.iter().all(|(relay, _)| known(relay))
        {
            return Err(SnapshotError::Malformed {
                what: "a vote or listed relay names a relay without a descriptor",
            });
        }
        let bad = |index, reason| SnapshotError::BadDescriptor {
            index,
            reason: Box::new(reason),
        };
        let mut unchecked = Vec::with_capacity(count);
        for (index, encoded) in encodings.into_iter().enumerate() {
            let d = UncheckedDescriptor::parse(encoded).map_err(|e| bad(index, e))?;
            let expires = d.expires();
            if i64::try_from(expires).is_err() {
                let reason = Error::InvalidField {
                    field: "expires",
                    reason: "past 2^63 - 1, which the store cannot hold".into(),
                };
                return Err(bad(index, reason));
            }
            if expires <= clock {
                return Err(bad(
                    index,
                    Error::Expired {
                        expires,
                        now: clock,
                    },
                ));
            }
            unchecked.push(d);
        }
        let descriptors =
            verify_descriptor_signatures(unchecked).map_err(|(index, e)| bad(index, e))?;
        Ok(Self {
            last_applied,
            clock,
            membership,
            descriptors,
            votes,
        })
    }
}

fn write_log_id(w: &mut Writer, id: Option<LogId>) {
    match id {
        None => w.u8(0),
        Some(LogId { term, index }) => {
            w.u8(1);
            w.u64(term);
            w.u64(index);
        }
    }
}

fn read_log_id(r: &mut Reader<'_>) -> Result<Option<LogId>, SnapshotError> {
    let codec = SnapshotError::from_codec;
    match r.u8("log id flag").map_err(codec)? {
        0 => Ok(None),
        1 => Ok(Some(LogId {
            term: r.u64("log id term").map_err(codec)?,
            index: r.u64("log id index").map_err(codec)?,
        })),
        _ => Err(SnapshotError::Malformed {
            what: "log id flag is neither 0 nor 1",
        }),
    }
}
