//! The signed directory snapshot: every listed relay (its signed descriptor, the registries'
//! flags and bandwidth measurement), signed in turn by a majority of the configured registries.
//!
//! Registries build a [`Snapshot`] from their replicated state, each signs it
//! ([`SignedSnapshot::sign_with`]) and the signatures are gathered
//! ([`SignedSnapshot::add_signature`]). Proxies and relays fetch the bytes from anyone,
//! [`SignedSnapshot::decode`] them (encoding only, cheap) and [`SignedSnapshot::verify`] them
//! against their [`RegistrySet`] and clock, which yields a [`VerifiedSnapshot`];
//! [`accept_newer`] adds the rule "only replace the snapshot in use by a newer valid one". This
//! module is sans-IO: it does not fetch, store, schedule or log; `now` is passed in.
//!
//! The wire format is in the crate README ("Directory snapshot wire format").

mod entry;
mod error;
mod registry_set;
mod verify;

use ed25519_dalek::{Signature, Signer, SigningKey};

use crate::SignedDescriptor;
use crate::descriptor::{CLOCK_SKEW_SECS, MAX_ENCODED_LEN, SIGNATURE_LEN};
use crate::directory::MAX_DIRECTORY_ENTRIES;
use crate::listing::ListedRelay;
use braid_codec::{Reader, Writer};

use entry::{ENTRY_TAIL_LEN, entry_fault, write_entry};
pub use entry::{RawEntry, next_descriptor, next_entry};
pub use error::SnapshotError;
pub use registry_set::{MAX_REGISTRIES, RegistrySet};
pub use verify::verify_descriptor_signatures;
pub use verify::{VerifiedSnapshot, accept_newer};

/// The snapshot format this crate writes and reads (the first byte of every encoding).
/// Version 2 lists each relay with its flags and measured bandwidth, and the unmeasured weight
/// in the header; version 1 (bare descriptors) is no longer read.
pub const SNAPSHOT_VERSION: u8 = 2;

/// Registry signatures cover this prefix followed by the 32-byte BLAKE3 digest of the body, so
/// they can never be taken for a signature on anything else made with a registry key.
pub const SNAPSHOT_SIGNING_DOMAIN: &[u8] = b"braid directory snapshot v2\0";

/// The most descriptors one snapshot may hold (the same limit as a [`crate::Directory`]).
pub const MAX_SNAPSHOT_DESCRIPTORS: usize = MAX_DIRECTORY_ENTRIES;

/// The longest a snapshot may be valid: `valid_until - issued_at` (24 hours).
pub const MAX_SNAPSHOT_LIFETIME_SECS: u64 = 24 * 60 * 60;

/// How far in the future `issued_at` may be before a snapshot counts as not yet valid (the same
/// skew as for descriptors).
pub const SNAPSHOT_CLOCK_SKEW_SECS: u64 = CLOCK_SKEW_SECS;

/// Bytes before the first entry: version, issued_at, valid_until, set digest, unmeasured weight,
/// entry count.
pub const HEADER_LEN: usize = 1 + 8 + 8 + 32 + 8 + 4;

/// The shortest possible signed descriptor encoding: one 1-byte text address (tag, length,
/// byte), a 1-character nickname, no exit rule.
pub const MIN_DESCRIPTOR_LEN: usize = 1 + 32 + 32 + 1 + 3 + 2 + 8 + 1 + 8 + 8 + SIGNATURE_LEN;

/// One registry signature on the wire: signer index and Ed25519 signature.
const SIGNATURE_ENTRY_LEN: usize = 1 + SIGNATURE_LEN;

/// The longest encoding accepted (about 32 MB): [`MAX_SNAPSHOT_DESCRIPTORS`] maximal
/// entries (length prefix, descriptor, flags, measurement), and [`MAX_REGISTRIES`] signatures.
/// Longer input is refused before it is read.
pub const MAX_SNAPSHOT_LEN: usize = HEADER_LEN
    + MAX_SNAPSHOT_DESCRIPTORS * (2 + MAX_ENCODED_LEN + ENTRY_TAIL_LEN)
    + 1
    + MAX_REGISTRIES * SIGNATURE_ENTRY_LEN;

/// The body a registry majority signs: lifetime, the registry set it is for, the weight of an
/// unmeasured relay, and the listed relays sorted by identity. Build it with [`Snapshot::new`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    issued_at: u64,
    valid_until: u64,
    registry_set: [u8; 32],
    unmeasured_weight: u64,
    relays: Vec<ListedRelay>,
}

impl Snapshot {
    /// A snapshot for `set` valid from `issued_at` until `valid_until` (unix seconds), listing
    /// `relays` (from [`build_listing`](crate::listing::build_listing)) in any order (they are
    /// sorted by identity here), where an unmeasured relay weighs `unmeasured_weight`. Refused:
    /// [`SnapshotError::BadLifetime`] unless `issued_at < valid_until <= issued_at +`
    /// [`MAX_SNAPSHOT_LIFETIME_SECS`]; [`SnapshotError::BadUnmeasuredWeight`] for 0;
    /// [`SnapshotError::TooManyDescriptors`]; [`SnapshotError::DuplicateIdentity`];
    /// [`SnapshotError::ExpiresTooSoon`] for a descriptor that would expire before
    /// `valid_until`, [`SnapshotError::BadDescriptor`] for one not yet valid at `issued_at`;
    /// [`SnapshotError::BadEntry`] for a measurement of 0, an Exit flag on a policy that allows no
    /// exit, or an entry whose `unmeasured_weight` is not this one. A registry drops such relays
    /// before building.
    pub fn new(
        set: &RegistrySet,
        issued_at: u64,
        valid_until: u64,
        unmeasured_weight: u64,
        relays: Vec<ListedRelay>,
    ) -> Result<Self, SnapshotError> {
        check_lifetime(issued_at, valid_until)?;
        if unmeasured_weight == 0 {
            return Err(SnapshotError::BadUnmeasuredWeight);
        }
        if relays.len() > MAX_SNAPSHOT_DESCRIPTORS {
            return Err(SnapshotError::TooManyDescriptors {
                count: relays.len(),
                max: MAX_SNAPSHOT_DESCRIPTORS,
            });
        }
        for (index, relay) in relays.iter().enumerate() {
            let d = &relay.descriptor;
            let expires = d.descriptor().expires;
            if expires < valid_until {
                return Err(SnapshotError::ExpiresTooSoon {
                    index,
                    expires,
                    valid_until,
                });
            }
            d.check_fresh(issued_at)
                .map_err(|e| SnapshotError::BadDescriptor {
                    index,
                    reason: Box::new(e),
                })?;
            let fault = entry_fault(relay).or((relay.unmeasured_weight != unmeasured_weight)
                .then_some("unmeasured_weight differs from the snapshot's"));
            if let Some(what) = fault {
                return Err(SnapshotError::BadEntry { index, what });
            }
        }
        let mut order: Vec<usize> = (0..relays.len()).collect();
        order.sort_unstable_by_key(|&i| (relays[i].identity(), i));
        for w in order.windows(2) {
            if relays[w[0]].identity() == relays[w[1]].identity() {
                return Err(SnapshotError::DuplicateIdentity {
                    index: w[1],
                    first: w[0],
                });
            }
        }
        let mut relays = relays;
        relays.sort_unstable_by(|a, b| a.identity().cmp(b.identity()));
        Ok(Self {
            issued_at,
            valid_until,
            registry_set: set.digest(),
            unmeasured_weight,
            relays,
        })
    }

    /// When the snapshot was issued (unix seconds).
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// When it stops being valid (unix seconds).
    pub fn valid_until(&self) -> u64 {
        self.valid_until
    }

    /// The listed relays, sorted by identity.
    pub fn relays(&self) -> &[ListedRelay] {
        &self.relays
    }

    /// The descriptors of the listed relays, sorted by identity.
    pub fn descriptors(&self) -> Vec<&SignedDescriptor> {
        self.relays.iter().map(|r| &r.descriptor).collect()
    }

    /// The weight of an unmeasured relay in this snapshot.
    pub fn unmeasured_weight(&self) -> u64 {
        self.unmeasured_weight
    }

    /// The canonical body bytes (everything the registry signatures cover through its digest).
    pub fn encode(&self) -> Vec<u8> {
        let encoded: Vec<Vec<u8>> = self.relays.iter().map(|r| r.descriptor.encode()).collect();
        let total = HEADER_LEN
            + encoded
                .iter()
                .map(|e| 2 + e.len() + ENTRY_TAIL_LEN)
                .sum::<usize>();
        let mut w = Writer::with_capacity(total + 1 + MAX_REGISTRIES * SIGNATURE_ENTRY_LEN);
        w.u8(SNAPSHOT_VERSION);
        w.u64(self.issued_at);
        w.u64(self.valid_until);
        w.bytes(&self.registry_set);
        w.u64(self.unmeasured_weight);
        // Snapshot::new caps the count at MAX_SNAPSHOT_DESCRIPTORS: the cast is lossless.
        w.u32(encoded.len() as u32);
        for (relay, e) in self.relays.iter().zip(&encoded) {
            write_entry(&mut w, relay, e);
        }
        w.finish()
    }

    /// The snapshot ready for registry signatures (none yet).
    pub fn into_unsigned(self) -> SignedSnapshot {
        SignedSnapshot {
            issued_at: self.issued_at,
            valid_until: self.valid_until,
            registry_set: self.registry_set,
            unmeasured_weight: self.unmeasured_weight,
            descriptor_count: self.relays.len(),
            body: self.encode(),
            signatures: Vec::new(),
        }
    }
}

fn check_lifetime(issued_at: u64, valid_until: u64) -> Result<(), SnapshotError> {
    if valid_until <= issued_at || valid_until - issued_at > MAX_SNAPSHOT_LIFETIME_SECS {
        return Err(SnapshotError::BadLifetime {
            issued_at,
            valid_until,
        });
    }
    Ok(())
}

/// One registry's signature: the signer's index in the [`RegistrySet`] and an Ed25519
/// signature over [`SNAPSHOT_SIGNING_DOMAIN`] followed by the body digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrySignature {
    /// Index of the signing key in the (sorted) registry set.
    pub signer: u8,
    /// The Ed25519 signature bytes.
    pub signature: [u8; SIGNATURE_LEN],
}

/// An encoded snapshot body with the registry signatures gathered so far. Holding one proves
/// nothing: it comes from [`Snapshot::into_unsigned`] or from [`SignedSnapshot::decode`], which
/// checks only the encoding. [`SignedSnapshot::verify`] checks everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedSnapshot {
    issued_at: u64,
    valid_until: u64,
    registry_set: [u8; 32],
    unmeasured_weight: u64,
    descriptor_count: usize,
    /// The body as encoded (version through the last descriptor).
    body: Vec<u8>,
    signatures: Vec<RegistrySignature>,
}

impl SignedSnapshot {
    /// Parses an encoding and checks its structure: [`SnapshotError::TooLarge`] over
    /// [`MAX_SNAPSHOT_LEN`]; [`SnapshotError::Incomplete`] if it stops early;
    /// [`SnapshotError::BadVersion`]; [`SnapshotError::BadLifetime`];
    /// [`SnapshotError::BadUnmeasuredWeight`] for 0;
    /// [`SnapshotError::TooManyDescriptors`] / [`SnapshotError::TooManySignatures`] for counts
    /// over the limits; [`SnapshotError::Malformed`] for a descriptor length out of range, an
    /// unknown flag bit or trailing bytes; [`SnapshotError::Unsorted`] if identities are not strictly ascending.
    /// Signatures, descriptors and time are not checked here: see [`SignedSnapshot::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() > MAX_SNAPSHOT_LEN {
            return Err(SnapshotError::TooLarge {
                len: bytes.len(),
                max: MAX_SNAPSHOT_LEN,
            });
        }
        let codec = SnapshotError::from_codec;
        let mut r = Reader::new(bytes);
        let version = r.u8("snapshot version").map_err(codec)?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::BadVersion(version));
        }
        let issued_at = r.u64("snapshot issued_at").map_err(codec)?;
        let valid_until = r.u64("snapshot valid_until").map_err(codec)?;
        check_lifetime(issued_at, valid_until)?;
        let registry_set = r.array("snapshot registry set").map_err(codec)?;
        let unmeasured_weight = r.u64("snapshot unmeasured weight").map_err(codec)?;
        if unmeasured_weight == 0 {
            return Err(SnapshotError::BadUnmeasuredWeight);
        }
        let count = r.u32("snapshot descriptor count").map_err(codec)?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > MAX_SNAPSHOT_DESCRIPTORS {
            return Err(SnapshotError::TooManyDescriptors {
                count,
                max: MAX_SNAPSHOT_DESCRIPTORS,
            });
        }
        let mut previous: Option<&[u8]> = None;
        for index in 0..count {
            let entry = next_entry(&mut r)?;
            // next_entry guarantees at least MIN_DESCRIPTOR_LEN descriptor bytes.
            let identity = entry.identity().ok_or(SnapshotError::Malformed {
                what: "descriptor too short",
            })?;
            if previous.is_some_and(|p| p >= identity) {
                return Err(SnapshotError::Unsorted { index });
            }
            previous = Some(identity);
        }
        let body = bytes.get(..r.position()).unwrap_or_default().to_vec();
        let sig_count = usize::from(r.u8("snapshot signature count").map_err(codec)?);
        if sig_count > MAX_REGISTRIES {
            return Err(SnapshotError::TooManySignatures {
                count: sig_count,
                max: MAX_REGISTRIES,
            });
        }
        let mut signatures = Vec::with_capacity(sig_count);
        for _ in 0..sig_count {
            let signer = r.u8("snapshot signer").map_err(codec)?;
            let signature = r.array("snapshot signature").map_err(codec)?;
            signatures.push(RegistrySignature { signer, signature });
        }
        r.finish("trailing bytes after the signatures")
            .map_err(codec)?;
        Ok(Self {
            issued_at,
            valid_until,
            registry_set,
            unmeasured_weight,
            descriptor_count: count,
            body,
            signatures,
        })
    }

    /// The canonical bytes: the body, the signature count (one byte), then each signature as
    /// signer index and 64 bytes, in the order they were added or decoded.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(
            self.body.len() + 1 + self.signatures.len() * SIGNATURE_ENTRY_LEN,
        );
        w.bytes(&self.body);
        // At most MAX_REGISTRIES signatures: decode, sign_with and add_signature keep it so.
        w.u8(self.signatures.len() as u8);
        for s in &self.signatures {
            w.u8(s.signer);
            w.bytes(&s.signature);
        }
        w.finish()
    }

    /// BLAKE3 of the body: what the registry signatures cover (after the domain prefix).
    pub fn digest(&self) -> [u8; 32] {
        *blake3::hash(&self.body).as_bytes()
    }

    /// When the snapshot was issued (unix seconds); not authenticated before
    /// [`SignedSnapshot::verify`].
    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// When it stops being valid (unix seconds); not authenticated before verification.
    pub fn valid_until(&self) -> u64 {
        self.valid_until
    }

    /// The weight of an unmeasured relay the snapshot names; not authenticated before
    /// verification.
    pub fn unmeasured_weight(&self) -> u64 {
        self.unmeasured_weight
    }

    /// How many descriptors the body lists.
    pub fn descriptor_count(&self) -> usize {
        self.descriptor_count
    }

    /// The registry set digest the snapshot names.
    pub fn registry_set(&self) -> [u8; 32] {
        self.registry_set
    }

    /// The signatures gathered so far (none of them checked unless verified).
    pub fn signatures(&self) -> &[RegistrySignature] {
        &self.signatures
    }

    /// Adds the signature of `key`, one of `set`'s registries: [`SnapshotError::WrongRegistrySet`]
    /// if the snapshot names another set, [`SnapshotError::NotARegistry`] if the key is not in
    /// `set`, [`SnapshotError::DuplicateSigner`] if that registry already signed.
    pub fn sign_with(&mut self, set: &RegistrySet, key: &SigningKey) -> Result<(), SnapshotError> {
        self.check_set(set)?;
        let signer = set
            .index_of(&key.verifying_key())
            .ok_or(SnapshotError::NotARegistry)?;
        let signature = key.sign(&self.signed_message()).to_bytes();
        self.push(RegistrySignature { signer, signature })
    }

    /// Adds a signature made by another registry, after checking it:
    /// [`SnapshotError::WrongRegistrySet`], [`SnapshotError::UnknownSigner`],
    /// [`SnapshotError::BadSignature`] if it does not verify, [`SnapshotError::DuplicateSigner`].
    pub fn add_signature(
        &mut self,
        set: &RegistrySet,
        signature: RegistrySignature,
    ) -> Result<(), SnapshotError> {
        self.check_set(set)?;
        let index = signature.signer;
        let key = set.key(index).ok_or(SnapshotError::UnknownSigner {
            index,
            registries: set.len(),
        })?;
        key.verify_strict(
            &self.signed_message(),
            &Signature::from_bytes(&signature.signature),
        )
        .map_err(|_| SnapshotError::BadSignature { index })?;
        self.push(signature)
    }

    /// Appends a signature, keeping signers distinct.
    fn push(&mut self, signature: RegistrySignature) -> Result<(), SnapshotError> {
        let index = signature.signer;
        if self.signatures.iter().any(|s| s.signer == index) {
            return Err(SnapshotError::DuplicateSigner { index });
        }
        self.signatures.push(signature);
        Ok(())
    }

    /// [`SnapshotError::WrongRegistrySet`] unless the snapshot names `set`.
    fn check_set(&self, set: &RegistrySet) -> Result<(), SnapshotError> {
        if self.registry_set == set.digest() {
            Ok(())
        } else {
            Err(SnapshotError::WrongRegistrySet {
                snapshot: self.registry_set,
                configured: set.digest(),
            })
        }
    }

    /// What registries sign: [`SNAPSHOT_SIGNING_DOMAIN`] then the body digest.
    fn signed_message(&self) -> Vec<u8> {
        [SNAPSHOT_SIGNING_DOMAIN, &self.digest()].concat()
    }

    /// The entries in the body, in order, nothing inside checked beyond the encoding (e.g. for a
    /// co-signer that looks each descriptor up in its own state).
    pub fn raw_entries(&self) -> Result<Vec<RawEntry<'_>>, SnapshotError> {
        let mut reader = Reader::new(&self.body);
        reader
            .take(HEADER_LEN, "snapshot header")
            .map_err(SnapshotError::from_codec)?;
        (0..self.descriptor_count)
            .map(|_| next_entry(&mut reader))
            .collect()
    }
}
