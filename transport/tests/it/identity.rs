//! The identity key file: created 0600 in a 0700 directory, persisted, and rejected when it is
//! readable by others or has the wrong length.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::{fs, os::unix::fs::PermissionsExt as _};

use braid_transport::{Error, IDENTITY_FILE, Identity};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn created_with_private_modes_and_persists() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("node").join("data");
    let first = Identity::load_or_create(&data_dir).unwrap();
    let key_file = data_dir.join(IDENTITY_FILE);
    assert_eq!(mode(&key_file), 0o600);
    assert_eq!(mode(&data_dir), 0o700);
    // 64 hex digits and a newline, encoding the secret.
    let text = fs::read_to_string(&key_file).unwrap();
    assert_eq!(text, format!("{}\n", hex_encode(&first.secret_bytes())));
    assert!(!data_dir.join(format!("{IDENTITY_FILE}.tmp")).exists());

    let second = Identity::load_or_create(&data_dir).unwrap();
    assert_eq!(second.peer_id(), first.peer_id());
    assert_eq!(second.public_bytes(), first.public_bytes());
    assert_eq!(second.secret_bytes(), first.secret_bytes());
    assert_ne!(Identity::generate().peer_id(), first.peer_id());
}

#[test]
fn raw_32_byte_file_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join(IDENTITY_FILE);
    fs::write(&key_file, [0x42u8; 32]).unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    let loaded = Identity::load_or_create(tmp.path()).unwrap();
    assert_eq!(
        loaded.peer_id(),
        Identity::from_secret_bytes([0x42; 32]).peer_id()
    );
}

#[test]
fn world_readable_file_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    Identity::load_or_create(tmp.path()).unwrap();
    let key_file = tmp.path().join(IDENTITY_FILE);
    for bad_mode in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&key_file, fs::Permissions::from_mode(bad_mode)).unwrap();
        let err = Identity::load_or_create(tmp.path()).unwrap_err();
        match &err {
            Error::IdentityPermissions { path, mode } => {
                assert_eq!(path, &key_file);
                assert_eq!(*mode, bad_mode);
            }
            other => panic!("expected IdentityPermissions, got {other:?}"),
        }
        let text = err.to_string();
        assert!(text.contains(&key_file.display().to_string()), "{text}");
    }
}

#[test]
fn wrong_length_file_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let key_file = tmp.path().join(IDENTITY_FILE);
    fs::write(&key_file, b"0123456789").unwrap();
    fs::set_permissions(&key_file, fs::Permissions::from_mode(0o600)).unwrap();
    let err = Identity::load_or_create(tmp.path()).unwrap_err();
    assert!(
        matches!(&err, Error::IdentityLength { path, len: 10 } if path == &key_file),
        "{err:?}"
    );
    assert!(err.to_string().contains(&key_file.display().to_string()));
}

#[test]
fn data_dir_that_is_a_file_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let not_a_dir = tmp.path().join("file");
    fs::write(&not_a_dir, b"x").unwrap();
    let err = Identity::load_or_create(&not_a_dir).unwrap_err();
    assert!(
        matches!(&err, Error::DataDir { path, .. } if path == &not_a_dir),
        "{err:?}"
    );
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_peer_id_gives_back_its_ed25519_key() {
    let id = Identity::generate();
    let public = id.public_bytes();
    let peer = braid_transport::peer_id_from_public(&public).unwrap();
    assert_eq!(peer, id.peer_id());
    assert_eq!(braid_transport::public_from_peer_id(&peer), Some(public));
    // A peer id that is a hash (not an inlined key) carries no key.
    let hashed: braid_transport::PeerId = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
        .parse()
        .unwrap();
    assert_eq!(braid_transport::public_from_peer_id(&hashed), None);
}
