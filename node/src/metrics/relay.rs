//! The relay's collector: reads `RelayStats`, the accounting budget, the UPnP mapping, the
//! advertisement, the publication status and the followed directory on each scrape.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use braid_registry::service::PublishStatus;
use braid_relay::CELL_LEN;
use braid_relay::service::{AccountingProbe, RelayStats};
use braid_relay::stats::RefusalReason;
use braid_transport::upnp::MappingHandle;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::{counter, directory, g, gauge, histogram, labelled_counter, labelled_gauge};
use crate::relay_node::advert::Advert;
use crate::relay_node::registries::RelayRegistry;

/// What a relay's collector reads (handed out by `RelayNode::metrics_sources`).
pub(crate) struct RelaySources {
    pub(crate) stats: Arc<RelayStats>,
    pub(crate) accounting: AccountingProbe,
    /// Whether the relay mapped its ports by UPnP at start.
    pub(crate) upnp_enabled: bool,
    pub(crate) mappings: Arc<Mutex<Option<MappingHandle>>>,
    pub(crate) registry: Arc<Mutex<Option<RelayRegistry>>>,
    pub(crate) advert: Arc<Advert>,
}

/// The relay's collector.
pub(crate) struct RelayCollector(RelaySources);

impl std::fmt::Debug for RelayCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayCollector").finish_non_exhaustive()
    }
}

impl RelayCollector {
    pub(crate) fn new(sources: RelaySources) -> Self {
        RelayCollector(sources)
    }
}

impl Collector for RelayCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let st = &s.stats;
        let (cells_in, cells_out) = (st.cells.load(Relaxed), st.cells_out.load(Relaxed));
        labelled_counter(
            &mut enc,
            "braid_relay_cells",
            "Relay cells relayed: in = received and authenticated at this hop, out = sent on.",
            None,
            "direction",
            &[("in", cells_in), ("out", cells_out)],
        )?;
        let cell = CELL_LEN as u64;
        labelled_counter(
            &mut enc,
            "braid_relay_relayed",
            "Bytes relayed on circuits (cells times the fixed cell size).",
            Some(&Unit::Bytes),
            "direction",
            &[
                ("in", cells_in.saturating_mul(cell)),
                ("out", cells_out.saturating_mul(cell)),
            ],
        )?;
        gauge(
            &mut enc,
            "braid_relay_circuits_open",
            "Circuits open through this relay now.",
            None,
            g(st.circuits_open.load(Relaxed)),
        )?;
        counter(
            &mut enc,
            "braid_relay_circuits_accepted",
            "Circuits accepted since start.",
            None,
            st.circuits_total.load(Relaxed),
        )?;
        let refused: Vec<(&'static str, u64)> = RefusalReason::ALL
            .iter()
            .map(|r| (r.as_str(), st.refused_for(*r)))
            .collect();
        labelled_counter(
            &mut enc,
            "braid_relay_circuits_refused",
            "Circuits refused, by reason.",
            None,
            "reason",
            &refused,
        )?;
        counter(
            &mut enc,
            "braid_relay_integrity_failures",
            "Cells that failed authentication (bad MAC or decryption); each ends its circuit.",
            None,
            st.integrity_failures.load(Relaxed),
        )?;
        histogram(
            &mut enc,
            "braid_relay_handshake",
            "Time from a Create cell to the Created answer (the extend to the next hop included).",
            &st.handshake_latency.snapshot(),
        )?;
        counter(
            &mut enc,
            "braid_relay_braided_streams",
            "Braided streams finished or failed at this exit.",
            None,
            st.braids.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "braid_relay_fragments_resent",
            "Fragments this exit sent again (after a timeout or a lost strand).",
            None,
            st.fragments_resent.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "braid_relay_fragments_rejected",
            "Fragments this exit rejected (forged, altered, replayed, duplicated).",
            None,
            st.fragments_rejected.load(Relaxed),
        )?;
        gauge(
            &mut enc,
            "braid_relay_advertised",
            "1 while the relay advertises its descriptor, 0 while it serves unadvertised.",
            None,
            i64::from(s.advert.advertised().is_some()),
        )?;
        self.encode_upnp(&mut enc)?;
        self.encode_registry(&mut enc)?;
        if let Some(a) = s.accounting.state() {
            gauge(
                &mut enc,
                "braid_relay_accounting_used",
                "Bytes relayed in the current accounting period.",
                Some(&Unit::Bytes),
                g(a.used_bytes),
            )?;
            gauge(
                &mut enc,
                "braid_relay_accounting_limit",
                "The accounting period's budget.",
                Some(&Unit::Bytes),
                g(a.limit_bytes),
            )?;
            gauge(
                &mut enc,
                "braid_relay_accounting_period_end_timestamp",
                "When the current accounting period ends (unix time).",
                Some(&Unit::Seconds),
                g(a.period_end_unix),
            )?;
            gauge(
                &mut enc,
                "braid_relay_hibernating",
                "1 while the budget is spent and new circuits are refused.",
                None,
                i64::from(a.hibernating),
            )?;
        }
        Ok(())
    }
}

impl RelayCollector {
    fn encode_upnp(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        let s = &self.0;
        let expires = {
            let guard = s.mappings.lock().unwrap_or_else(|p| p.into_inner());
            guard.as_ref().map(MappingHandle::lease_expires_at)
        };
        gauge(
            enc,
            "braid_relay_upnp_mapped",
            "1 while the relay holds UPnP port mappings (0: none, or UPnP not used).",
            None,
            i64::from(s.upnp_enabled && expires.is_some()),
        )?;
        if let Some(Some(at)) = expires {
            let left = at.saturating_sub(super::unix_now());
            gauge(
                enc,
                "braid_relay_upnp_lease_remaining",
                "Seconds until the UPnP lease runs out unless renewed (renewed at half).",
                Some(&Unit::Seconds),
                g(left),
            )?;
        }
        Ok(())
    }

    fn encode_registry(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        let (status, snapshot) = {
            let guard = self.0.registry.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(r) => (Some(r.publish_status().borrow().clone()), r.snapshot()),
                None => return Ok(()),
            }
        };
        let state = match status {
            Some(PublishStatus::Published { .. }) => "published",
            Some(PublishStatus::Failed { .. }) => "failed",
            _ => "not_yet",
        };
        let values: Vec<(&'static str, i64)> = ["not_yet", "published", "failed"]
            .iter()
            .map(|v| (*v, i64::from(*v == state)))
            .collect();
        labelled_gauge(
            enc,
            "braid_relay_publish_status",
            "How the last publication to the registries went (1 for the current status).",
            "status",
            &values,
        )?;
        directory(
            enc,
            snapshot.as_ref().map(|s| s.issued_at()),
            snapshot.as_ref().map_or(0, |s| s.relays().len()),
        )
    }
}
