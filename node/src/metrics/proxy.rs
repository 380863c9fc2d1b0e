//! The proxy's collector: reads the circuit manager's `RouterStats` and the directory in use
//! on each scrape.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use braid_registry::service::SnapshotReceiver;
use braid_router::CircuitManager;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::{counter, directory, g, gauge, histogram, labelled_counter};

/// What a proxy's collector reads (handed out by `ProxyNode::metrics_sources`).
pub(crate) struct ProxySources {
    pub(crate) manager: Arc<CircuitManager>,
    /// The registries' snapshots, when the proxy follows them.
    pub(crate) snapshots: Option<SnapshotReceiver>,
}

/// The proxy's collector.
pub(crate) struct ProxyCollector(ProxySources);

impl std::fmt::Debug for ProxyCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyCollector").finish_non_exhaustive()
    }
}

impl ProxyCollector {
    pub(crate) fn new(sources: ProxySources) -> Self {
        ProxyCollector(sources)
    }
}

impl Collector for ProxyCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0.manager;
        let st = m.stats();
        counter(
            &mut enc,
            "braid_proxy_circuits_built",
            "Circuits built since start (single, strand, clean and replacement circuits).",
            None,
            st.circuits_built.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "braid_proxy_circuit_build_failures",
            "Circuit builds that failed (a relay down, a handshake refused or timed out).",
            None,
            st.circuit_build_failures.load(Relaxed),
        )?;
        histogram(
            &mut enc,
            "braid_proxy_circuit_build",
            "Time to build one circuit, from opening the guard stream to the last Created.",
            &st.build_latency.snapshot(),
        )?;
        gauge(
            &mut enc,
            "braid_proxy_streams_open",
            "App streams open now.",
            None,
            g(st.streams_open.load(Relaxed)),
        )?;
        counter(
            &mut enc,
            "braid_proxy_streams",
            "App streams opened since start.",
            None,
            st.streams_total.load(Relaxed),
        )?;
        labelled_counter(
            &mut enc,
            "braid_proxy_stream",
            "App bytes carried by finished braided streams: sent = from apps, received = to apps.",
            Some(&Unit::Bytes),
            "direction",
            &[
                ("sent", st.stream_bytes_sent.load(Relaxed)),
                ("received", st.stream_bytes_received.load(Relaxed)),
            ],
        )?;
        counter(
            &mut enc,
            "braid_proxy_strands_failed",
            "Strands that went down before their braided stream ended.",
            None,
            st.strands_failed.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "braid_proxy_fragments_resent",
            "Fragments sent again after a timeout or a lost strand.",
            None,
            st.fragments_resent.load(Relaxed),
        )?;
        counter(
            &mut enc,
            "braid_proxy_fragments_rejected",
            "Fragments and acks rejected as not authentic or malformed.",
            None,
            st.fragments_rejected.load(Relaxed),
        )?;
        gauge(
            &mut enc,
            "braid_proxy_directory_stale",
            "1 while the directory is past its validity and grace (no new circuits).",
            None,
            i64::from(m.directory_stale().is_some()),
        )?;
        let issued = self
            .0
            .snapshots
            .as_ref()
            .and_then(|r| r.borrow().as_ref().map(|s| s.issued_at()));
        directory(&mut enc, issued, m.relay_count())
    }
}
