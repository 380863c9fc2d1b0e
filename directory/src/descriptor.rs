//! Relay descriptors: what a relay says about itself, signed with its identity key.
//!
//! [`Descriptor`] is the plain value with its field rules ([`Descriptor::validate`]);
//! [`SignedDescriptor`] is the only way to hold one that was signed or whose signature was checked.
//! Wire form and signing are here; freshness is checked against a `now` the caller passes in. This
//! module does not fetch, store or gossip descriptors.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::Error;
use crate::policy::{ExitPolicy, MAX_EXIT_RULES};
use braid_codec::{Reader, Writer};

mod address;
mod family;

pub use family::MAX_FAMILY_MEMBERS;

/// The descriptor format this crate writes and reads (the first byte of every encoding). Version 3
/// adds the declared family; version 2 (no family) and version 1 (addresses as text) are no
/// longer read.
pub const DESCRIPTOR_VERSION: u8 = 3;

/// Prepended to the body before signing, so a descriptor signature can never be replayed as a
/// signature on anything else made with the same key.
pub const SIGNING_DOMAIN: &[u8] = b"braid descriptor v3\0";

/// The most addresses a descriptor may list.
pub const MAX_ADDRESSES: usize = 8;

/// The longest address, in bytes.
pub const MAX_ADDRESS_LEN: usize = 200;

/// The longest nickname, in characters.
pub const MAX_NICKNAME_LEN: usize = 32;

/// The longest a descriptor may stay valid: `expires - published` (7 days).
pub const MAX_LIFETIME_SECS: u64 = 7 * 24 * 60 * 60;

/// How far in the future `published` may be before a descriptor counts as not yet valid.
pub const CLOCK_SKEW_SECS: u64 = 300;

/// Length of the Ed25519 signature at the end of an encoding.
pub const SIGNATURE_LEN: usize = 64;

/// The longest possible encoding (every field at its maximum), 4237 bytes.
pub const MAX_ENCODED_LEN: usize = 1 // version
    + 32 + 32 // identity, onion key
    + 1 + MAX_ADDRESSES * address::MAX_WIRE_LEN
    + 1 + MAX_NICKNAME_LEN
    + 8 // bandwidth
    + 1 + MAX_EXIT_RULES * (1 + 16 + 1 + 4)
    + family::MAX_WIRE_LEN
    + 8 + 8 // published, expires
    + SIGNATURE_LEN;

/// What a relay says about itself. All fields are public; [`Descriptor::validate`] states the
/// rules, and [`Descriptor::sign`] refuses a descriptor that breaks them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Ed25519 public key; the same key is the relay's libp2p PeerId key.
    pub identity: [u8; 32],
    /// X25519 public key for circuit handshakes (Noise NK); not all zero.
    pub onion_key: [u8; 32],
    /// libp2p multiaddrs as text (`/ip4/127.0.0.2/udp/4001/quic-v1`): 1 to 8 entries, each 1 to
    /// 200 bytes of printable ASCII (no spaces) starting with `/`.
    pub addresses: Vec<String>,
    /// 1 to 32 characters from `[A-Za-z0-9_-]`.
    pub nickname: String,
    /// Advertised bytes per second, above 0.
    pub bandwidth: u64,
    /// Which destinations the relay will connect to as an exit.
    pub exit_policy: ExitPolicy,
    /// The identities of the other relays run by the same operator: at most
    /// [`MAX_FAMILY_MEMBERS`], none twice, never the relay's own. A family holds only between
    /// relays that list each other ([`crate::family::Families`]); clients never put two of them
    /// on one path.
    pub family: Vec<[u8; 32]>,
    /// When the descriptor was made, unix seconds.
    pub published: u64,
    /// When it stops being valid, unix seconds: after `published`, at most
    /// [`MAX_LIFETIME_SECS`] later.
    pub expires: u64,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidField {
        field,
        reason: reason.into(),
    }
}

impl Descriptor {
    /// Checks every field rule; the error names the first field that breaks one.
    pub fn validate(&self) -> Result<(), Error> {
        self.checked_identity().map(|_| ())
    }

    /// [`Descriptor::validate`], giving back the decompressed identity key so that a caller
    /// checking a signature next does not decompress it a second time.
    fn checked_identity(&self) -> Result<VerifyingKey, Error> {
        let identity = VerifyingKey::from_bytes(&self.identity)
            .map_err(|_| invalid("identity", "not a valid Ed25519 public key"))?;
        if identity.is_weak() {
            return Err(invalid("identity", "small-order (weak) Ed25519 key"));
        }
        if self.onion_key == [0; 32] {
            return Err(invalid("onion_key", "all-zero X25519 key"));
        }
        if !(1..=MAX_ADDRESSES).contains(&self.addresses.len()) {
            let n = self.addresses.len();
            return Err(invalid(
                "addresses",
                format!("{n} entries; need 1 to {MAX_ADDRESSES}"),
            ));
        }
        for (i, addr) in self.addresses.iter().enumerate() {
            if !(1..=MAX_ADDRESS_LEN).contains(&addr.len()) {
                let n = addr.len();
                return Err(invalid(
                    "addresses",
                    format!("entry {i} is {n} bytes; need 1 to {MAX_ADDRESS_LEN}"),
                ));
            }
            if !addr.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "addresses",
                    format!("entry {i} is not printable ASCII without spaces"),
                ));
            }
            if !addr.starts_with('/') {
                return Err(invalid(
                    "addresses",
                    format!("entry {i} is not a multiaddr (must start with '/')"),
                ));
            }
        }
        let nick_len = self.nickname.chars().count();
        if !(1..=MAX_NICKNAME_LEN).contains(&nick_len) {
            return Err(invalid(
                "nickname",
                format!("{nick_len} characters; need 1 to {MAX_NICKNAME_LEN}"),
            ));
        }
        if !self
            .nickname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid(
                "nickname",
                "only A-Z, a-z, 0-9, '_' and '-' are allowed",
            ));
        }
        if self.bandwidth == 0 {
            return Err(invalid("bandwidth", "must be above 0"));
        }
        if self.expires <= self.published {
            return Err(invalid(
                "expires",
                format!("{} is not after published {}", self.expires, self.published),
            ));
        }
        if self.expires - self.published > MAX_LIFETIME_SECS {
            return Err(invalid(
                "expires",
                format!("more than {MAX_LIFETIME_SECS} s after published"),
            ));
        }
        self.exit_policy.validate()?;
        family::validate(&self.identity, &self.family)?;
        Ok(identity)
    }

    /// Validates, then signs with `key`, whose public half must be `identity`
    /// ([`Error::KeyMismatch`] otherwise). Deterministic: the same descriptor and key give the
    /// same bytes.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedDescriptor, Error> {
        self.validate()?;
        if key.verifying_key().to_bytes() != self.identity {
            return Err(Error::KeyMismatch);
        }
        let body = self.encode_body()?;
        let signature = key.sign(&signed_message(&body)).to_bytes();
        Ok(SignedDescriptor {
            body,
            signature,
            descriptor: self.clone(),
        })
    }

    /// Whether the relay's exit policy accepts anything at all.
    pub fn is_exit(&self) -> bool {
        self.exit_policy.is_exit()
    }

    /// The body: every field in order, without version byte or signature. Needs a valid
    /// descriptor (lengths must fit their prefixes).
    fn encode_body(&self) -> Result<Vec<u8>, Error> {
        let too_long = |field| invalid(field, "too long to encode");
        let mut w = Writer::default();
        w.bytes(&self.identity);
        w.bytes(&self.onion_key);
        w.u8(u8::try_from(self.addresses.len()).map_err(|_| too_long("addresses"))?);
        for addr in &self.addresses {
            address::encode(&mut w, addr)?;
        }
        w.u8_prefixed(self.nickname.as_bytes(), usize::from(u8::MAX), "nickname")
            .map_err(|_| too_long("nickname"))?;
        w.u64(self.bandwidth);
        self.exit_policy.encode(&mut w)?;
        family::encode(&mut w, &self.family)?;
        w.u64(self.published);
        w.u64(self.expires);
        Ok(w.finish())
    }

    /// Reads a body written by [`Descriptor::encode_body`]. Only the encoding is checked here;
    /// field rules are [`Descriptor::validate`]'s job.
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, Error> {
        let identity = r.array("descriptor identity")?;
        let onion_key = r.array("descriptor onion key")?;
        let count = r.u8("descriptor address count")?;
        let mut addresses = Vec::with_capacity(usize::from(count).min(MAX_ADDRESSES));
        for _ in 0..count {
            addresses.push(address::decode(r)?);
        }
        let nickname =
            std::str::from_utf8(r.u8_prefixed(usize::from(u8::MAX), "descriptor nickname")?)
                .map_err(|_| invalid("nickname", "not UTF-8"))?;
        let bandwidth = r.u64("descriptor bandwidth")?;
        let exit_policy = ExitPolicy::decode(r)?;
        let family = family::decode(r)?;
        let published = r.u64("descriptor published")?;
        let expires = r.u64("descriptor expires")?;
        Ok(Self {
            identity,
            onion_key,
            addresses,
            nickname: nickname.to_owned(),
            bandwidth,
            exit_policy,
            family,
            published,
            expires,
        })
    }
}

/// What the signature covers: [`SIGNING_DOMAIN`] then the body.
fn signed_message(body: &[u8]) -> Vec<u8> {
    [SIGNING_DOMAIN, body].concat()
}

/// A descriptor together with its encoded body and a signature by its identity key that has been
/// made or checked. Only [`Descriptor::sign`] and [`SignedDescriptor::decode`] create one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDescriptor {
    body: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    descriptor: Descriptor,
}

impl SignedDescriptor {
    /// The canonical bytes: version byte, body, 64-byte signature.
    pub fn encode(&self) -> Vec<u8> {
        [&[DESCRIPTOR_VERSION][..], &self.body, &self.signature].concat()
    }

    /// Parses an encoding and checks it completely: [`Error::Incomplete`] if the bytes stop early,
    /// [`Error::BadVersion`], [`Error::Malformed`] for a bad encoding or trailing bytes,
    /// [`Error::InvalidField`] for a field breaking its rules, [`Error::BadSignature`] if the
    /// signature is not the identity key's over this body. Time is not checked: see
    /// [`SignedDescriptor::check_fresh`].
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        UncheckedDescriptor::parse(bytes)?.verify()
    }

    /// The signed descriptor's fields.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The relay's identity key (same as `descriptor().identity`).
    pub fn identity(&self) -> &[u8; 32] {
        &self.descriptor.identity
    }

    /// The Ed25519 signature over [`SIGNING_DOMAIN`] and the body.
    pub fn signature(&self) -> &[u8; SIGNATURE_LEN] {
        &self.signature
    }

    /// Whether the descriptor is usable at `now_unix`: [`Error::Expired`] once
    /// `now_unix >= expires`, [`Error::NotYetValid`] if `published` is more than
    /// [`CLOCK_SKEW_SECS`] after `now_unix`.
    pub fn check_fresh(&self, now_unix: u64) -> Result<(), Error> {
        check_fresh(&self.descriptor, now_unix)
    }
}

/// [`SignedDescriptor::check_fresh`] on the plain fields.
fn check_fresh(descriptor: &Descriptor, now_unix: u64) -> Result<(), Error> {
    let Descriptor {
        published, expires, ..
    } = *descriptor;
    if now_unix >= expires {
        return Err(Error::Expired {
            expires,
            now: now_unix,
        });
    }
    if published > now_unix.saturating_add(CLOCK_SKEW_SECS) {
        return Err(Error::NotYetValid {
            published,
            now: now_unix,
        });
    }
    Ok(())
}

/// A descriptor whose encoding and field rules have been checked but whose signature has not
/// (yet). The only ways out are [`UncheckedDescriptor::verify`] and, after the signature was
/// checked some other way (a batch check, or the caller's own store of descriptors it verified
/// before), [`UncheckedDescriptor::assume_verified`].
pub struct UncheckedDescriptor {
    body: Vec<u8>,
    signature: [u8; SIGNATURE_LEN],
    descriptor: Descriptor,
    identity: VerifyingKey,
}

impl UncheckedDescriptor {
    /// Parses one complete encoding: every error of [`SignedDescriptor::decode`] except
    /// [`Error::BadSignature`].
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes);
        let version = r.u8("descriptor version")?;
        if version != DESCRIPTOR_VERSION {
            return Err(Error::BadVersion(version));
        }
        let body_start = r.position();
        let descriptor = Descriptor::decode_body(&mut r)?;
        let body = r.consumed_since(body_start).to_vec();
        let signature = r.array("descriptor signature")?;
        r.finish("trailing bytes after the signature")?;
        let identity = descriptor.checked_identity()?;
        Ok(Self {
            body,
            signature,
            descriptor,
            identity,
        })
    }

    /// Checks the signature (`verify_strict`) and yields the signed descriptor.
    pub fn verify(self) -> Result<SignedDescriptor, Error> {
        self.identity
            .verify_strict(&self.message(), &Signature::from_bytes(&self.signature))
            .map_err(|_| Error::BadSignature)?;
        Ok(self.assume_verified())
    }

    /// The descriptor's `expires`.
    pub fn expires(&self) -> u64 {
        self.descriptor.expires
    }

    /// [`SignedDescriptor::check_fresh`], before paying for the signature check.
    pub fn check_fresh(&self, now_unix: u64) -> Result<(), Error> {
        check_fresh(&self.descriptor, now_unix)
    }

    /// The signed message: [`SIGNING_DOMAIN`] then the body.
    #[cfg_attr(not(feature = "batch"), allow(dead_code))]
    pub(crate) fn message(&self) -> Vec<u8> {
        signed_message(&self.body)
    }

    /// The signature and the identity key, for a batch check.
    #[cfg_attr(not(feature = "batch"), allow(dead_code))]
    pub(crate) fn signature_and_key(&self) -> (Signature, VerifyingKey) {
        (Signature::from_bytes(&self.signature), self.identity)
    }

    /// The signed descriptor, for a caller that has checked the signature some other way (a batch
    /// verification covering this descriptor, or bytes read back from the caller's own store that
    /// it wrote only after checking them). Never call it on bytes from the network.
    pub fn assume_verified(self) -> SignedDescriptor {
        SignedDescriptor {
            body: self.body,
            signature: self.signature,
            descriptor: self.descriptor,
        }
    }
}
