//! The node's Ed25519 identity key: its libp2p `PeerId`, and the key that signs relay
//! descriptors. This module loads, creates and checks the key file; it does no signing itself.

use std::{
    fmt,
    fs::{self, DirBuilder, OpenOptions},
    io::Write as _,
    os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _},
    path::{Path, PathBuf},
};

use libp2p::{PeerId, identity::ed25519};

use crate::Error;

/// Name of the key file inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// The node's identity key (Ed25519). `Debug` shows only the `PeerId`, never the secret.
#[derive(Clone)]
pub struct Identity {
    keypair: ed25519::Keypair,
}

impl Identity {
    /// Loads `data_dir/identity.key`, or creates it (and `data_dir`, mode 0700) when missing.
    ///
    /// The file holds the 32-byte secret as 64 hex digits and a newline, created with mode
    /// 0600; 32 raw bytes are accepted too. A file of any other length, or one that group or
    /// others may access, is rejected with an error naming the path.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, Error> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|source| Error::DataDir {
                path: data_dir.to_path_buf(),
                source,
            })?;
        let path = data_dir.join(IDENTITY_FILE);
        match fs::symlink_metadata(&path) {
            Ok(_) => Self::load(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::create(&path),
            Err(source) => Err(Error::IdentityIo { path, source }),
        }
    }

    /// A fresh random identity that is never stored (simulations).
    pub fn generate() -> Self {
        Self {
            keypair: ed25519::Keypair::generate(),
        }
    }

    /// The identity with this 32-byte secret (deterministic tests).
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        let mut bytes = bytes;
        let secret = match ed25519::SecretKey::try_from_bytes(&mut bytes) {
            Ok(secret) => secret,
            // try_from_bytes only fails on a length other than 32, which the array type rules out.
            Err(_) => unreachable!("an Ed25519 secret key is any 32 bytes"),
        };
        Self {
            keypair: ed25519::Keypair::from(secret),
        }
    }

    /// The 32-byte secret, for `ed25519_dalek::SigningKey::from_bytes` (descriptor signing).
    /// Never log it.
    pub fn secret_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.keypair.secret().as_ref());
        out
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.keypair.public().to_bytes()
    }

    /// The libp2p peer id derived from the public key.
    pub fn peer_id(&self) -> PeerId {
        libp2p::identity::PublicKey::from(self.keypair.public()).to_peer_id()
    }

    /// The keypair in libp2p's form, for the swarm.
    pub(crate) fn to_libp2p(&self) -> libp2p::identity::Keypair {
        libp2p::identity::Keypair::from(self.keypair.clone())
    }

    fn load(path: &Path) -> Result<Self, Error> {
        let io_err = |source| Error::IdentityIo {
            path: path.to_path_buf(),
            source,
        };
        let metadata = fs::metadata(path).map_err(io_err)?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::IdentityPermissions {
                path: path.to_path_buf(),
                mode,
            });
        }
        let contents = fs::read(path).map_err(io_err)?;
        let secret = parse_secret(&contents, path)?;
        Ok(Self::from_secret_bytes(secret))
    }

    fn create(path: &Path) -> Result<Self, Error> {
        let identity = Self::generate();
        let io_err = |source| Error::IdentityIo {
            path: path.to_path_buf(),
            source,
        };
        // Write a temporary file and rename it, so a crash never leaves a half-written key.
        let tmp = temporary_path(path);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::IdentityIo { path: tmp, source }),
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|source| Error::IdentityIo {
                path: tmp.clone(),
                source,
            })?;
        let text = format!("{}\n", hex::encode(identity.secret_bytes()));
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|source| Error::IdentityIo {
                path: tmp.clone(),
                source,
            })?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err)?;
        Ok(identity)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

/// The libp2p peer id of an Ed25519 public key (e.g. one read from a relay descriptor).
pub fn peer_id_from_public(public: &[u8; 32]) -> Result<PeerId, Error> {
    let key = ed25519::PublicKey::try_from_bytes(public).map_err(|e| Error::InvalidPublicKey {
        reason: e.to_string(),
    })?;
    Ok(libp2p::identity::PublicKey::from(key).to_peer_id())
}

/// The Ed25519 public key a peer id carries, if it is an Ed25519 peer id (every braid node's
/// is: the key is inlined in the id). The inverse of [`peer_id_from_public`]; a registry's
/// peer id in a config thus also names the key that signs its directory snapshots.
pub fn public_from_peer_id(peer: &PeerId) -> Option<[u8; 32]> {
    let digest = peer.as_ref();
    // An inlined key uses the identity multihash (code 0).
    if digest.code() != 0 {
        return None;
    }
    let key = libp2p::identity::PublicKey::try_decode_protobuf(digest.digest()).ok()?;
    Some(key.try_into_ed25519().ok()?.to_bytes())
}

/// 32 raw bytes, or 64 hex digits with optional trailing whitespace.
fn parse_secret(contents: &[u8], path: &Path) -> Result<[u8; 32], Error> {
    if let Ok(raw) = <[u8; 32]>::try_from(contents) {
        return Ok(raw);
    }
    let trimmed = contents.trim_ascii_end();
    if trimmed.len() != 64 {
        return Err(Error::IdentityLength {
            path: path.to_path_buf(),
            len: trimmed.len(),
        });
    }
    let mut secret = [0u8; 32];
    hex::decode_to_slice(trimmed, &mut secret).map_err(|_| Error::IdentityHex {
        path: path.to_path_buf(),
    })?;
    Ok(secret)
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.1, TEST 1: secret key and its public key.
    const RFC8032_SECRET: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
    const RFC8032_PUBLIC: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    fn rfc_secret() -> [u8; 32] {
        let mut secret = [0u8; 32];
        hex::decode_to_slice(RFC8032_SECRET, &mut secret).unwrap();
        secret
    }

    #[test]
    fn rfc8032_vector() {
        let identity = Identity::from_secret_bytes(rfc_secret());
        assert_eq!(hex::encode(identity.public_bytes()), RFC8032_PUBLIC);
        assert_eq!(identity.secret_bytes(), rfc_secret());
        assert_eq!(
            peer_id_from_public(&identity.public_bytes()).unwrap(),
            identity.peer_id()
        );
    }

    #[test]
    fn debug_hides_secret() {
        let text = format!("{:?}", Identity::from_secret_bytes(rfc_secret()));
        assert!(!text.contains("9d61"), "{text}");
        assert!(text.contains("peer_id"), "{text}");
    }

    #[test]
    fn parse_accepts_raw_and_hex() {
        let path = Path::new("k");
        assert_eq!(parse_secret(&rfc_secret(), path).unwrap(), rfc_secret());
        let hex_line = format!("{RFC8032_SECRET}\n");
        assert_eq!(
            parse_secret(hex_line.as_bytes(), path).unwrap(),
            rfc_secret()
        );
        assert_eq!(
            parse_secret(RFC8032_SECRET.as_bytes(), path).unwrap(),
            rfc_secret()
        );
    }

    #[test]
    fn parse_rejects_wrong_length_and_bad_hex() {
        let path = Path::new("k");
        assert!(matches!(
            parse_secret(&[7u8; 31], path),
            Err(Error::IdentityLength { len: 31, .. })
        ));
        assert!(matches!(
            parse_secret(&RFC8032_SECRET.as_bytes()[..63], path),
            Err(Error::IdentityLength { len: 63, .. })
        ));
        let bad = "z".repeat(64);
        assert!(matches!(
            parse_secret(bad.as_bytes(), path),
            Err(Error::IdentityHex { .. })
        ));
    }

    #[test]
    fn invalid_public_key_rejected() {
        // y = 2 is not the y-coordinate of any point on the curve.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert!(matches!(
            peer_id_from_public(&not_a_point),
            Err(Error::InvalidPublicKey { .. })
        ));
    }
}
