//! What a registry tells its local API (`crate::api::StatusSource`): its Raft state and the
//! majority-signed snapshot it serves. Only reads what the registry keeps.

use std::sync::Arc;

use braid_registry::raft::RegistryRaft;
use braid_registry::service::RegistryRole;

use crate::api::{DirectoryInfo, RaftInfo, RegistriesInfo, Status, StatusSource};

/// A registry's status source.
pub(super) struct RegistryStatus {
    pub(super) peer_id: String,
    pub(super) raft: RegistryRaft,
    pub(super) role: Arc<RegistryRole>,
    pub(super) registries: usize,
}

impl StatusSource for RegistryStatus {
    fn status(&self) -> Status {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let r = self.raft.status();
        let snapshot = self.role.snapshot();
        Status {
            role: "registry".into(),
            peer_id: Some(self.peer_id.clone()),
            registries: Some(RegistriesInfo {
                configured: self.registries,
                reached: None,
                last: None,
            }),
            directory: Some(match &snapshot {
                Some(s) => DirectoryInfo {
                    relays: s.relays().len(),
                    age_secs: Some(now.saturating_sub(s.issued_at())),
                    valid_until: Some(s.valid_until()),
                    stale: None,
                },
                None => DirectoryInfo::default(),
            }),
            raft: Some(RaftInfo {
                id: r.id,
                leader: r.leader,
                is_leader: r.leader == Some(r.id),
                term: r.term,
                last_applied: r.last_applied,
                members: r.members.len(),
            }),
            ..Status::default()
        }
    }

    fn traffic(&self) -> (u64, u64) {
        (0, 0)
    }

    fn circuits_open(&self) -> Option<u64> {
        None
    }
}
