//! Registry attestations, sans-IO: one registry's signed statement "at my clock `now`, I
//! dialed back these relays myself and their current descriptors are these (by digest)",
//! optionally with the bandwidth it measured. Attestations travel in the Raft log
//! ([`Command::Attest`](super::Command::Attest)); the apply rule (which signers count, replay,
//! the listing majority) is in the store. This module only encodes, signs and checks
//! signatures.
//!
//! ```text
//! attestation = version u8 (1) | signer [32] (Ed25519 key) | now u64 | seq u64
//!             | count u16 (<= MAX_ATTESTED_RELAYS)
//!             | count x ( relay [32] | digest [32] | bw flag u8 (0|1) | [bw u64 if 1] )
//!             | signature [64]
//! signature   = Ed25519 over ATTESTATION_DOMAIN || every byte before the signature
//! ```
//!
//! Relays are sorted by key and distinct. `digest` is [`descriptor_digest`] (BLAKE3 of the
//! exact signed descriptor encoding the registry verified).

use braid_codec::{Reader, Writer};
use braid_directory::{Error, SignedDescriptor};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

/// The attestation format this crate writes and reads.
pub const ATTESTATION_VERSION: u8 = 1;

/// The most relays one attestation names (it must fit one Raft entry of 8 KiB).
pub const MAX_ATTESTED_RELAYS: usize = 64;

/// Bytes of one relay entry at most (relay, digest, flag, bandwidth).
const MAX_ENTRY_BYTES: usize = 32 + 32 + 1 + 8;

/// The longest attestation encoding: header, [`MAX_ATTESTED_RELAYS`] entries with a bandwidth,
/// signature.
pub const MAX_ATTESTATION_LEN: usize =
    1 + 32 + 8 + 8 + 2 + MAX_ATTESTED_RELAYS * MAX_ENTRY_BYTES + 64;

// An attestation command (version, tag, attestation) fits one Raft entry (8 KiB).
const _: () = assert!(2 + MAX_ATTESTATION_LEN <= 8 * 1024);

/// What the signature covers first, so an attestation signature is never valid as anything
/// else (descriptors and snapshots have their own domains).
pub const ATTESTATION_DOMAIN: &[u8] = b"braid registry attestation v1\0";

/// BLAKE3 of a signed descriptor's exact encoding: what an attestation names.
pub fn descriptor_digest(d: &SignedDescriptor) -> [u8; 32] {
    *blake3::hash(&d.encode()).as_bytes()
}

/// One relay a registry verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestedRelay {
    /// The relay's identity key (its descriptor's `identity`).
    pub relay: [u8; 32],
    /// [`descriptor_digest`] of the descriptor the registry verified.
    pub digest: [u8; 32],
    /// The bandwidth the registry measured, bytes per second, if it measured one.
    pub measured_bw: Option<u64>,
}

/// The content of an attestation, before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attestation {
    /// The attesting registry's Ed25519 key (its transport identity key).
    pub signer: [u8; 32],
    /// The registry's wall clock when it made the attestation, unix seconds.
    pub now: u64,
    /// A counter that orders attestations made in the same second: the store takes a
    /// registry's attestations only in strictly increasing `(now, seq)` order.
    pub seq: u64,
    /// The relays verified, at most [`MAX_ATTESTED_RELAYS`] (sorted and deduplicated by
    /// [`Attestation::sign`]).
    pub relays: Vec<AttestedRelay>,
}

impl Attestation {
    /// Sorts and deduplicates the relays and signs with `key`, whose public half must be
    /// `signer`: [`Error::KeyMismatch`], or [`Error::Malformed`] for more than
    /// [`MAX_ATTESTED_RELAYS`] relays.
    pub fn sign(mut self, key: &SigningKey) -> Result<SignedAttestation, Error> {
        if key.verifying_key().to_bytes() != self.signer {
            return Err(Error::KeyMismatch);
        }
        self.relays.sort_by_key(|r| r.relay);
        self.relays.dedup_by_key(|r| r.relay);
        if self.relays.len() > MAX_ATTESTED_RELAYS {
            return Err(Error::Malformed {
                what: "attestation names more relays than the limit",
            });
        }
        let mut w = Writer::default();
        write_body(&mut w, &self);
        let body = w.finish();
        let signature = key.sign(&signed_message(&body)).to_bytes();
        let mut encoded = body;
        encoded.extend_from_slice(&signature);
        Ok(SignedAttestation {
            attestation: self,
            encoded,
        })
    }
}

/// An attestation whose signature verified against its `signer` key. Only
/// [`Attestation::sign`] and [`SignedAttestation::decode`] make one. Whether the signer is
/// one of the configured registries is the store's apply rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedAttestation {
    attestation: Attestation,
    encoded: Vec<u8>,
}

impl SignedAttestation {
    /// The signed content.
    pub fn attestation(&self) -> &Attestation {
        &self.attestation
    }

    /// The encoding (the module's format table).
    pub fn encode(&self) -> Vec<u8> {
        self.encoded.clone()
    }

    /// Parses and checks an attestation: [`Error::Incomplete`] for a strict prefix,
    /// [`Error::BadVersion`], [`Error::Malformed`] for over [`MAX_ATTESTATION_LEN`] bytes, over
    /// [`MAX_ATTESTED_RELAYS`] relays, unsorted or repeated relays, a flag not 0 or 1, trailing
    /// bytes, a signer that is not a usable Ed25519 key or a signature that does not verify.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_ATTESTATION_LEN {
            return Err(Error::Malformed {
                what: "attestation longer than the limit",
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8("attestation version")?;
        if version != ATTESTATION_VERSION {
            return Err(Error::BadVersion(version));
        }
        let signer = r.array::<32>("attestation signer")?;
        let now = r.u64("attestation time")?;
        let seq = r.u64("attestation sequence")?;
        let count = usize::from(r.u16("attestation relay count")?);
        if count > MAX_ATTESTED_RELAYS {
            return Err(Error::Malformed {
                what: "attestation names more relays than the limit",
            });
        }
        let mut relays: Vec<AttestedRelay> = Vec::with_capacity(count);
        for _ in 0..count {
            let relay = r.array::<32>("attested relay")?;
            let digest = r.array::<32>("attested digest")?;
            let measured_bw = match r.u8("attested bandwidth flag")? {
                0 => None,
                1 => Some(r.u64("attested bandwidth")?),
                _ => {
                    return Err(Error::Malformed {
                        what: "attested bandwidth flag is neither 0 nor 1",
                    });
                }
            };
            if relays.last().is_some_and(|p| p.relay >= relay) {
                return Err(Error::Malformed {
                    what: "attested relays are not sorted and distinct",
                });
            }
            relays.push(AttestedRelay {
                relay,
                digest,
                measured_bw,
            });
        }
        let body_len = bytes.len().saturating_sub(r.remaining());
        let signature = r.array::<64>("attestation signature")?;
        r.finish("trailing bytes after the attestation")?;
        let key = VerifyingKey::from_bytes(&signer).map_err(|_| Error::Malformed {
            what: "attestation signer is not an Ed25519 key",
        })?;
        if key.is_weak() {
            return Err(Error::Malformed {
                what: "attestation signer is a weak key",
            });
        }
        let body = bytes.get(..body_len).unwrap_or_default();
        key.verify_strict(&signed_message(body), &Signature::from_bytes(&signature))
            .map_err(|_| Error::Malformed {
                what: "attestation signature does not verify against its signer",
            })?;
        Ok(Self {
            attestation: Attestation {
                signer,
                now,
                seq,
                relays,
            },
            encoded: bytes.to_vec(),
        })
    }
}

fn write_body(w: &mut Writer, a: &Attestation) {
    w.u8(ATTESTATION_VERSION);
    w.bytes(&a.signer);
    w.u64(a.now);
    w.u64(a.seq);
    // At most MAX_ATTESTED_RELAYS (checked by the callers): fits a u16.
    w.u16(a.relays.len() as u16);
    for r in &a.relays {
        w.bytes(&r.relay);
        w.bytes(&r.digest);
        match r.measured_bw {
            None => w.u8(0),
            Some(bw) => {
                w.u8(1);
                w.u64(bw);
            }
        }
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(ATTESTATION_DOMAIN.len() + body.len());
    m.extend_from_slice(ATTESTATION_DOMAIN);
    m.extend_from_slice(body);
    m
}

#[cfg(test)]
mod tests;
