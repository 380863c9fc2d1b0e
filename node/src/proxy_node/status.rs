//! What a proxy tells its local API (`crate::api::StatusSource`): the directory in use, its
//! circuits by relay nickname (never a stream's target), streams open and the cells its
//! circuits carried. Only reads what the circuit manager keeps.

use std::sync::Arc;

use braid_registry::service::SnapshotReceiver;
use braid_router::CircuitManager;

use super::unix_now;
use crate::api::{CircuitInfo, DirectoryInfo, RegistriesInfo, Status, StatusSource};

/// A proxy's status source.
pub(super) struct ProxyStatus {
    pub(super) peer_id: String,
    pub(super) manager: Arc<CircuitManager>,
    pub(super) registries: usize,
    pub(super) snapshots: Option<SnapshotReceiver>,
}

const CELL: u64 = braid_relay::CELL_LEN as u64;

impl StatusSource for ProxyStatus {
    fn status(&self) -> Status {
        let now = unix_now();
        let snapshot = self.snapshots.as_ref().and_then(|s| s.borrow().clone());
        let registries = (self.registries > 0).then(|| RegistriesInfo {
            configured: self.registries,
            reached: snapshot.as_ref().map(|_| 1),
            last: Some(match &snapshot {
                Some(s) => format!("verified snapshot issued at {}", s.issued_at()),
                None => "waiting for a verified snapshot".into(),
            }),
        });
        let circuits = self.manager.circuit_summaries();
        Status {
            role: "proxy".into(),
            peer_id: Some(self.peer_id.clone()),
            registries,
            directory: Some(DirectoryInfo {
                relays: self.manager.relay_count(),
                age_secs: snapshot.as_ref().map(|s| now.saturating_sub(s.issued_at())),
                valid_until: snapshot.as_ref().map(|s| s.valid_until()),
                stale: self.manager.directory_stale(),
            }),
            circuits_open: Some(circuits.len() as u64),
            streams_open: Some(circuits.iter().map(|c| c.streams as u64).sum()),
            ..Status::default()
        }
    }

    fn traffic(&self) -> (u64, u64) {
        let (cells_in, cells_out) = self.manager.traffic().cells();
        (
            cells_in.saturating_mul(CELL),
            cells_out.saturating_mul(CELL),
        )
    }

    fn circuits_open(&self) -> Option<u64> {
        Some(self.manager.circuit_summaries().len() as u64)
    }

    fn circuits(&self) -> Option<Vec<CircuitInfo>> {
        Some(
            self.manager
                .circuit_summaries()
                .into_iter()
                .map(|c| CircuitInfo {
                    path: c.path,
                    strands: c.strands,
                    strand_set: c.strand_set,
                    age_secs: c.age.as_secs(),
                    bytes_in: c.cells_in.saturating_mul(CELL),
                    streams: c.streams,
                })
                .collect(),
        )
    }
}
