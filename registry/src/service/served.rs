//! The snapshot a server hands out (a registry or a relay cache): a verified, majority-signed
//! snapshot with its response frame encoded once, and the answer to `GetSnapshot` from it. It
//! does not fetch, build or keep snapshots.

use std::sync::Arc;

use braid_directory::snapshot::VerifiedSnapshot;

use super::server::Reply;
use crate::protocol::Response;

/// A verified snapshot and its `Response::Snapshot` frame.
pub(crate) struct ServedSnapshot {
    /// The snapshot.
    pub(crate) verified: VerifiedSnapshot,
    /// `Response::Snapshot` of it, encoded.
    pub(crate) frame: Arc<Vec<u8>>,
}

impl ServedSnapshot {
    pub(crate) fn new(verified: VerifiedSnapshot) -> Self {
        let frame = Arc::new(Response::Snapshot(verified.signed().clone()).encode());
        Self { verified, frame }
    }

    pub(crate) fn issued_at(&self) -> u64 {
        self.verified.issued_at()
    }
}

/// The answer to `GetSnapshot { newer_than }` at `now` from `current`.
pub(crate) fn snapshot_reply(current: Option<&ServedSnapshot>, newer_than: u64, now: u64) -> Reply {
    match current {
        None => Response::Unavailable.into(),
        Some(s) if s.verified.is_expired(now) => Response::Unavailable.into(),
        Some(s) if s.issued_at() <= newer_than => Response::NotModified.into(),
        Some(s) => Reply::Frame(Arc::clone(&s.frame)),
    }
}
