//! The registry's served snapshot (feature `server`): the newest verified, majority-signed
//! snapshot it holds, optionally kept in a file so that a restarted registry serves at once. It
//! does not fetch or build snapshots.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use braid_directory::snapshot::{RegistrySet, SignedSnapshot, VerifiedSnapshot};
use tracing::{info, warn};

use super::ServiceError;
use super::served::ServedSnapshot;

/// The file name under the data directory.
pub(crate) const SNAPSHOT_FILE: &str = "directory-snapshot.bin";

/// What [`Served::adopt`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Adopted {
    /// It is now served.
    Newer,
    /// One issued at the same time is already served.
    Same,
    /// A newer one is served; it was not taken.
    Older,
}

/// The registry's served snapshot.
pub(crate) struct Served {
    current: Mutex<Option<Arc<ServedSnapshot>>>,
    file: Option<PathBuf>,
    /// Serialises writes of the file.
    writing: tokio::sync::Mutex<()>,
}

impl Served {
    /// Starts with the snapshot in `data_dir` if there is one that verifies at `now`.
    pub(crate) async fn load(data_dir: Option<&Path>, set: &RegistrySet, now: u64) -> Self {
        let file = data_dir.map(|d| d.join(SNAPSHOT_FILE));
        let mut current = None;
        if let Some(path) = &file {
            match tokio::fs::read(path).await {
                Ok(bytes) => {
                    match SignedSnapshot::decode(&bytes).and_then(|s| s.verify(set, now)) {
                        Ok(verified) => {
                            info!(
                                issued_at = verified.issued_at(),
                                relays = verified.descriptors().len(),
                                "registry: serving the directory snapshot kept on disk"
                            );
                            current = Some(Arc::new(ServedSnapshot::new(verified)));
                        }
                        Err(error) => {
                            warn!(%error, "registry: the directory snapshot kept on disk is not usable")
                        }
                    }
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => warn!(
                    "registry: {}",
                    ServiceError::Persist {
                        path: path.clone(),
                        source: error
                    }
                ),
            }
        }
        Self {
            current: Mutex::new(current),
            file,
            writing: tokio::sync::Mutex::new(()),
        }
    }

    /// The snapshot served now.
    pub(crate) fn current(&self) -> Option<Arc<ServedSnapshot>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Serves `verified` if it was issued after the one served now.
    pub(crate) fn adopt(&self, verified: VerifiedSnapshot) -> Adopted {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        match current.as_ref().map(|c| c.issued_at()) {
            Some(served) if served > verified.issued_at() => Adopted::Older,
            Some(served) if served == verified.issued_at() => Adopted::Same,
            _ => {
                *current = Some(Arc::new(ServedSnapshot::new(verified)));
                Adopted::Newer
            }
        }
    }

    /// Writes the snapshot served now to the file (if there is one): a temporary file, then a
    /// rename, so a crash never leaves half a snapshot. Failures are logged; serving goes on.
    pub(crate) async fn persist(&self) {
        let Some(path) = &self.file else { return };
        let _writing = self.writing.lock().await;
        let Some(current) = self.current() else {
            return;
        };
        let bytes = current.verified.signed().encode();
        let tmp = path.with_extension("bin.tmp");
        let result = async {
            tokio::fs::write(&tmp, &bytes).await?;
            tokio::fs::rename(&tmp, path).await
        }
        .await;
        if let Err(source) = result {
            warn!(
                "registry: {}",
                ServiceError::Persist {
                    path: path.clone(),
                    source
                }
            );
        }
    }
}
