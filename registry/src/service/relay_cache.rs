//! The relay side of `/braid/registry/1`: a relay serves `GetSnapshot` from the last snapshot
//! its [`DirectoryFeed`](super::DirectoryFeed) fetched and verified, so proxies need not all
//! ask the registries. It refuses `Publish`, `CoSign` and `Offer` from the header, unread. It
//! does not fetch or verify anything itself.

use std::sync::{Arc, Mutex, PoisonError};

use braid_transport::Transport;

use super::feed::SnapshotReceiver;
use super::served::{ServedSnapshot, snapshot_reply};
use super::server::{Handler, Reply, ServiceServer};
use super::{ServerSettings, ServiceError, unix_now};
use crate::protocol::{Refusal, RefuseCode, Request, Response, kind};

/// What the relay's request handler holds.
pub(crate) struct RelayCore {
    snapshots: SnapshotReceiver,
    /// The response frame of the snapshot last served, encoded once.
    encoded: Mutex<Option<Arc<ServedSnapshot>>>,
}

impl RelayCore {
    /// Only `GetSnapshot` is taken.
    pub(crate) fn admit(&self, kind: u8) -> Result<(), Refusal> {
        match kind {
            kind::GET_SNAPSHOT => Ok(()),
            kind::PUBLISH | kind::CO_SIGN | kind::OFFER => Err(Refusal::new(
                RefuseCode::NotServed,
                "this is a relay: it serves the directory snapshot only",
            )),
            other => Err(Refusal::new(
                RefuseCode::BadRequest,
                format!("unknown request kind {other:#04x}"),
            )),
        }
    }

    pub(crate) fn handle(&self, request: Request) -> Reply {
        let Request::GetSnapshot { newer_than } = request else {
            return Response::Refused(Refusal::new(
                RefuseCode::NotServed,
                "this is a relay: it serves the directory snapshot only",
            ))
            .into();
        };
        let current = self.snapshots.borrow().clone();
        let served = current.map(|verified| {
            let mut encoded = self.encoded.lock().unwrap_or_else(PoisonError::into_inner);
            match encoded.as_ref() {
                Some(s) if s.issued_at() == verified.issued_at() => Arc::clone(s),
                _ => {
                    let s = Arc::new(ServedSnapshot::new((*verified).clone()));
                    *encoded = Some(Arc::clone(&s));
                    s
                }
            }
        });
        snapshot_reply(served.as_deref(), newer_than, unix_now())
    }
}

/// A relay's directory cache server. Dropping it (or `stop`) ends it.
#[derive(Debug)]
pub struct RelayCache {
    server: ServiceServer,
}

impl RelayCache {
    /// Serves, on `transport`, the snapshots `snapshots` carries (a
    /// [`DirectoryFeed::subscribe`](super::DirectoryFeed::subscribe) receiver): the current
    /// one unless it has expired (then `Unavailable`).
    pub fn start(
        transport: &Transport,
        snapshots: SnapshotReceiver,
        settings: ServerSettings,
    ) -> Result<Self, ServiceError> {
        let core = RelayCore {
            snapshots,
            encoded: Mutex::new(None),
        };
        let server = ServiceServer::start(transport, Handler::Relay(Arc::new(core)), settings)?;
        Ok(Self { server })
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.server.stop();
    }
}
