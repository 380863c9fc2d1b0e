//! The relay's X25519 onion key, persisted beside the identity key with mode 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::NodeError;

/// File name of the onion key inside the data directory.
pub const ONION_KEY_FILE: &str = "onion.key";

/// Loads the onion secret from `data_dir`, or creates it (0600) if missing.
pub fn load_or_create_onion_key(data_dir: &Path) -> Result<[u8; 32], NodeError> {
    let path = data_dir.join(ONION_KEY_FILE);
    let bad = |reason: String| NodeError::KeyFile {
        path: path.clone(),
        reason,
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let meta = std::fs::metadata(&path).map_err(|e| bad(e.to_string()))?;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(bad("readable by group or others; chmod 600 it".into()));
            }
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|v: Vec<u8>| bad(format!("expected 32 bytes, found {}", v.len())))?;
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 32];
            rand::fill(&mut key);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| bad(e.to_string()))?;
            f.write_all(&key).map_err(|e| bad(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

/// The X25519 public key for an onion secret.
pub fn onion_public(secret: &[u8; 32]) -> [u8; 32] {
    x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
}

/// The peer id of the identity in `data_dir`, creating the identity (0600) if absent: what
/// `braid id` prints, e.g. for a registry's entry in everyone's `[[registries]]` list.
pub fn node_id(data_dir: &Path) -> Result<String, NodeError> {
    Ok(braid_transport::Identity::load_or_create(data_dir)?
        .peer_id()
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_rejects_open_permissions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_create_onion_key(dir.path()).expect("create");
        let b = load_or_create_onion_key(dir.path()).expect("load");
        assert_eq!(a, b);
        let path = dir.path().join(ONION_KEY_FILE);
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            load_or_create_onion_key(dir.path()),
            Err(NodeError::KeyFile { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        std::fs::write(&path, [1u8; 5]).expect("write");
        assert!(load_or_create_onion_key(dir.path()).is_err());
    }
}
