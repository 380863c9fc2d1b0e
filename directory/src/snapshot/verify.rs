//! Checking a snapshot completely, and the client rule for replacing the snapshot in use.
//!
//! Cheap checks come first: the registry set digest, the signer list, the registry signatures
//! over the body digest, the lifetime; only then every descriptor inside (parse, freshness,
//! signature), which is where the time goes. [`VerifiedSnapshot`] is the proof that all of it
//! passed. Nothing here keeps state: the caller holds the snapshot in use.

use crate::descriptor::UncheckedDescriptor;
use crate::listing::ListedRelay;
use crate::{Directory, SignedDescriptor};
use ed25519_dalek::Signature;

use super::entry::entry_fault;
use super::{RegistrySet, SNAPSHOT_CLOCK_SKEW_SECS, SignedSnapshot, SnapshotError};

/// A snapshot whose registry signatures (a majority of the set), lifetime and every entry
/// (descriptor signature and freshness at the time of the check, entry rules) have been
/// verified. Only [`SignedSnapshot::verify`] makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedSnapshot {
    signed: SignedSnapshot,
    relays: Vec<ListedRelay>,
    signers: Vec<u8>,
}

impl SignedSnapshot {
    /// Checks everything, at `now` (unix seconds), against the configured `set`:
    /// [`SnapshotError::WrongRegistrySet`]; [`SnapshotError::UnknownSigner`] for a signer index
    /// past the set; [`SnapshotError::DuplicateSigner`]; [`SnapshotError::TooFewSignatures`]
    /// unless at least `set.threshold()` distinct registries' signatures verify (signatures that
    /// do not verify, e.g. made by a key outside the set, are not counted);
    /// [`SnapshotError::NotYetValid`] if issued more than the clock skew after `now`;
    /// [`SnapshotError::Expired`] once `now >= valid_until`; [`SnapshotError::BadDescriptor`]
    /// naming the first descriptor that is not a valid signed descriptor or not fresh at `now`;
    /// [`SnapshotError::BadEntry`] for an Exit flag on a relay whose policy allows no exit.
    pub fn verify(&self, set: &RegistrySet, now: u64) -> Result<VerifiedSnapshot, SnapshotError> {
        self.check_set(set)?;
        let signers = self.valid_signers(set)?;
        if signers.len() < set.threshold() {
            return Err(SnapshotError::TooFewSignatures {
                valid: signers.len(),
                needed: set.threshold(),
            });
        }
        if self.issued_at > now.saturating_add(SNAPSHOT_CLOCK_SKEW_SECS) {
            return Err(SnapshotError::NotYetValid {
                issued_at: self.issued_at,
                now,
            });
        }
        if now >= self.valid_until {
            return Err(SnapshotError::Expired {
                valid_until: self.valid_until,
                now,
            });
        }
        let relays = self.checked_relays(now)?;
        Ok(VerifiedSnapshot {
            signed: self.clone(),
            relays,
            signers,
        })
    }

    /// The indices of the registries whose signatures verify; errors for structural faults.
    fn valid_signers(&self, set: &RegistrySet) -> Result<Vec<u8>, SnapshotError> {
        let mut seen = [false; super::MAX_REGISTRIES];
        for s in &self.signatures {
            let index = s.signer;
            let slot = seen
                .get_mut(usize::from(index))
                .filter(|_| usize::from(index) < set.len())
                .ok_or(SnapshotError::UnknownSigner {
                    index,
                    registries: set.len(),
                })?;
            if *slot {
                return Err(SnapshotError::DuplicateSigner { index });
            }
            *slot = true;
        }
        let message = self.signed_message();
        let mut valid: Vec<u8> = self
            .signatures
            .iter()
            .filter(|s| {
                set.key(s.signer).is_some_and(|key| {
                    key.verify_strict(&message, &Signature::from_bytes(&s.signature))
                        .is_ok()
                })
            })
            .map(|s| s.signer)
            .collect();
        valid.sort_unstable();
        Ok(valid)
    }

    /// Parses every descriptor, checks its freshness at `now`, then the signatures, then the
    /// entry rules.
    fn checked_relays(&self, now: u64) -> Result<Vec<ListedRelay>, SnapshotError> {
        let bad = |index, reason| SnapshotError::BadDescriptor {
            index,
            reason: Box::new(reason),
        };
        let entries = self.raw_entries()?;
        let mut unchecked = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let d = UncheckedDescriptor::parse(entry.descriptor).map_err(|e| bad(index, e))?;
            d.check_fresh(now).map_err(|e| bad(index, e))?;
            unchecked.push(d);
        }
        let descriptors =
            verify_descriptor_signatures(unchecked).map_err(|(index, e)| bad(index, e))?;
        entries
            .iter()
            .zip(descriptors)
            .enumerate()
            .map(|(index, (entry, descriptor))| {
                let relay = ListedRelay {
                    descriptor,
                    measured_bw: entry.measured_bw,
                    flags: entry.flags,
                    unmeasured_weight: self.unmeasured_weight,
                };
                match entry_fault(&relay) {
                    Some(what) => Err(SnapshotError::BadEntry { index, what }),
                    None => Ok(relay),
                }
            })
            .collect()
    }
}

/// One `verify_strict` per descriptor; the error names the first that fails.
#[cfg(not(feature = "batch"))]
pub fn verify_descriptor_signatures(
    unchecked: Vec<UncheckedDescriptor>,
) -> Result<Vec<SignedDescriptor>, (usize, crate::Error)> {
    unchecked
        .into_iter()
        .enumerate()
        .map(|(i, d)| d.verify().map_err(|e| (i, e)))
        .collect()
}

/// One Ed25519 batch verification over all descriptor signatures; if it fails, one
/// `verify_strict` each to name the first bad descriptor. A batch check is cofactorless with
/// random weights, like `verify_strict` it proves the identity key signed, but it may accept a
/// signature with a small-order component that `verify_strict` refuses (only the key's owner can
/// make one). Registries check each descriptor with `verify_strict` when it is published.
#[cfg(feature = "batch")]
pub fn verify_descriptor_signatures(
    unchecked: Vec<UncheckedDescriptor>,
) -> Result<Vec<SignedDescriptor>, (usize, crate::Error)> {
    let messages: Vec<Vec<u8>> = unchecked.iter().map(|d| d.message()).collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let (signatures, keys): (Vec<_>, Vec<_>) =
        unchecked.iter().map(|d| d.signature_and_key()).unzip();
    if ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok() {
        return Ok(unchecked
            .into_iter()
            .map(UncheckedDescriptor::assume_verified)
            .collect());
    }
    unchecked
        .into_iter()
        .enumerate()
        .map(|(i, d)| d.verify().map_err(|e| (i, e)))
        .collect()
}

impl VerifiedSnapshot {
    /// The listed relays, sorted by identity; every descriptor verified and fresh at the check.
    pub fn relays(&self) -> &[ListedRelay] {
        &self.relays
    }

    /// The descriptors of the listed relays, sorted by identity.
    pub fn descriptors(&self) -> Vec<&SignedDescriptor> {
        self.relays.iter().map(|r| &r.descriptor).collect()
    }

    /// The weight of an unmeasured relay in this snapshot.
    pub fn unmeasured_weight(&self) -> u64 {
        self.signed.unmeasured_weight
    }

    /// When the snapshot was issued (unix seconds).
    pub fn issued_at(&self) -> u64 {
        self.signed.issued_at
    }

    /// When it stops being valid (unix seconds).
    pub fn valid_until(&self) -> u64 {
        self.signed.valid_until
    }

    /// Whether it has expired at `now` (a caller keeping it as the last good one may warn).
    pub fn is_expired(&self, now: u64) -> bool {
        now >= self.signed.valid_until
    }

    /// The indices of the registries whose signatures verified, ascending.
    pub fn signers(&self) -> &[u8] {
        &self.signers
    }

    /// The signed snapshot, e.g. to re-serve its exact bytes with
    /// [`SignedSnapshot::encode`].
    pub fn signed(&self) -> &SignedSnapshot {
        &self.signed
    }

    /// The listed relays as a [`Directory`], for code that builds circuits from one.
    pub fn to_directory(&self) -> Directory {
        Directory::from_verified(self.relays.clone())
    }
}

impl From<VerifiedSnapshot> for Directory {
    fn from(snapshot: VerifiedSnapshot) -> Self {
        Directory::from_verified(snapshot.relays)
    }
}

/// The client rule "the last good snapshot stays in use": decodes and verifies `candidate`
/// (bytes fetched from any registry or relay) and returns it only if it is valid at `now` and
/// issued after `current`. On `Err` the caller keeps `current` and logs the error, which says
/// why ([`SnapshotError::NotNewer`] for an older or equal one, checked before any signature).
pub fn accept_newer(
    current: Option<&VerifiedSnapshot>,
    candidate: &[u8],
    set: &RegistrySet,
    now: u64,
) -> Result<VerifiedSnapshot, SnapshotError> {
    let candidate = SignedSnapshot::decode(candidate)?;
    if let Some(current) = current
        && candidate.issued_at() <= current.issued_at()
    {
        return Err(SnapshotError::NotNewer {
            current: current.issued_at(),
            candidate: candidate.issued_at(),
        });
    }
    candidate.verify(set, now)
}
