//! The Raft group seen as the registry service's `Replica`.

use braid_directory::SignedDescriptor;
use braid_registry::raft::RegistryRaft;
use braid_registry::service::{Replica, ReplicaError};
use braid_registry::state::Command;
use braid_registry::store::Applied;
use futures::future::BoxFuture;

/// A `RegistryRaft` as the service's replicated state.
pub(crate) struct RaftReplica {
    raft: RegistryRaft,
}

impl RaftReplica {
    pub(crate) fn new(raft: RegistryRaft) -> Self {
        Self { raft }
    }
}

impl Replica for RaftReplica {
    fn submit(&self, command: Command) -> BoxFuture<'static, Result<Applied, ReplicaError>> {
        let raft = self.raft.clone();
        Box::pin(async move {
            raft.submit(command)
                .await
                .map_err(|e| ReplicaError::Unavailable {
                    reason: e.to_string(),
                })
        })
    }

    fn descriptors(&self) -> Result<Vec<SignedDescriptor>, ReplicaError> {
        self.raft
            .descriptors()
            .map_err(|e| ReplicaError::Unavailable {
                reason: e.to_string(),
            })
    }

    fn view(&self) -> Result<braid_registry::store::StateView, ReplicaError> {
        self.raft.view().map_err(|e| ReplicaError::Unavailable {
            reason: e.to_string(),
        })
    }

    fn is_leader(&self) -> bool {
        let s = self.raft.status();
        s.leader == Some(s.id)
    }

    fn leader(&self) -> Option<braid_transport::PeerId> {
        let leader = self.raft.status().leader?;
        self.raft.members().get(&leader).copied()
    }

    fn leader_term(&self) -> Option<u64> {
        let s = self.raft.status();
        (s.leader == Some(s.id)).then_some(s.term)
    }
}
