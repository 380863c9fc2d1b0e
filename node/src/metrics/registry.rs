//! The registry's collector: reads Raft's status, the publish counters and the snapshot
//! served on each scrape.

use std::sync::Arc;

use braid_registry::raft::RegistryRaft;
use braid_registry::service::{PublishResult, RegistryRole};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{directory, g, gauge, labelled_counter};

/// What a registry's collector reads (handed out by `RegistryNode::metrics_sources`).
pub(crate) struct RegistrySources {
    pub(crate) raft: RegistryRaft,
    pub(crate) role: Arc<RegistryRole>,
}

/// The registry's collector.
pub(crate) struct RegistryCollector(RegistrySources);

impl std::fmt::Debug for RegistryCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryCollector").finish_non_exhaustive()
    }
}

impl RegistryCollector {
    pub(crate) fn new(sources: RegistrySources) -> Self {
        RegistryCollector(sources)
    }
}

impl Collector for RegistryCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let r = self.0.raft.status();
        gauge(
            &mut enc,
            "braid_registry_raft_term",
            "The current Raft term.",
            None,
            g(r.term),
        )?;
        gauge(
            &mut enc,
            "braid_registry_raft_is_leader",
            "1 while this registry is the Raft leader.",
            None,
            i64::from(r.leader == Some(r.id)),
        )?;
        gauge(
            &mut enc,
            "braid_registry_raft_last_applied_index",
            "Index of the last Raft entry applied to the state (the committed state in use).",
            None,
            r.last_applied.map_or(0, g),
        )?;
        gauge(
            &mut enc,
            "braid_registry_raft_last_log_index",
            "Index of the last entry in this registry's Raft log.",
            None,
            r.last_log_index.map_or(0, g),
        )?;
        gauge(
            &mut enc,
            "braid_registry_raft_members",
            "Voting members of the Raft group.",
            None,
            i64::try_from(r.members.len()).unwrap_or(i64::MAX),
        )?;
        let stats = self.0.role.stats();
        let results: Vec<(&'static str, u64)> = PublishResult::ALL
            .iter()
            .map(|p| (p.as_str(), stats.publishes(*p)))
            .collect();
        labelled_counter(
            &mut enc,
            "braid_registry_publishes",
            "Publish requests this registry handled, by result.",
            None,
            "result",
            &results,
        )?;
        let snapshot = self.0.role.snapshot();
        directory(
            &mut enc,
            snapshot.as_ref().map(|s| s.issued_at()),
            snapshot.as_ref().map_or(0, |s| s.relays().len()),
        )
    }
}
