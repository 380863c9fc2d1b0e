//! Prometheus metrics for every role, as OpenMetrics text: [`NodeMetrics`] is built once per
//! node ([`NodeMetrics::for_relay`], [`NodeMetrics::for_proxy`],
//! [`NodeMetrics::for_registry`]) and [`NodeMetrics::encode`] renders it on each scrape.
//!
//! The protocol crates keep plain relaxed atomics (`braid_relay::service::RelayStats`,
//! `braid_router::RouterStats`, `braid_registry::service::RegistryStats`, Raft's status);
//! the collectors here read them at scrape time, so nothing is counted twice and the hot
//! path never takes a lock for metrics. Every label value comes from a fixed Rust enum or a
//! fixed list (direction, reason, result, status): no label ever carries a peer id, an
//! address or a target, so the number of series is bounded by the code, not by traffic.
//!
//! Not here: the HTTP server that serves `/metrics` (the node API) and libp2p's own swarm
//! metrics (see the README's "Metrics" section).

pub(crate) mod proxy;
pub(crate) mod registry;
pub(crate) mod relay;

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use braid_relay::stats::HistogramSnapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::{ProxyNode, RegistryNode, RelayNode};

/// The `Content-Type` to serve [`NodeMetrics::encode`]'s text with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One node's metrics: a prometheus-client registry whose collectors read the node's counters
/// when encoded. Cheap to keep; build it once after the node started.
pub struct NodeMetrics {
    registry: Registry,
}

impl std::fmt::Debug for NodeMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeMetrics").finish_non_exhaustive()
    }
}

impl NodeMetrics {
    /// A relay's (or exit's) metrics: cells and bytes relayed, circuits, refusals, integrity
    /// failures, handshake latency, advertisement, UPnP lease, publication, directory,
    /// accounting budget.
    pub fn for_relay(node: &RelayNode) -> Self {
        Self::with(relay::RelayCollector::new(node.metrics_sources()))
    }

    /// A proxy's metrics: circuits built and their build time, streams and their bytes,
    /// strands failed, fragments resent and rejected, directory.
    pub fn for_proxy(node: &ProxyNode) -> Self {
        Self::with(proxy::ProxyCollector::new(node.metrics_sources()))
    }

    /// A registry's metrics: Raft term, leadership, applied and log index, publish results,
    /// the directory snapshot it serves.
    pub fn for_registry(node: &RegistryNode) -> Self {
        Self::with(registry::RegistryCollector::new(node.metrics_sources()))
    }

    fn with(collector: impl Collector) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector));
        NodeMetrics { registry }
    }

    /// The registry, to add more collectors or metrics (e.g. the API's own) before serving.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The metrics now, as OpenMetrics text ending in `# EOF` (serve it with
    /// [`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            // Writing to a String cannot fail; a collector error leaves a partial text, so
            // end it properly rather than serve a body a scraper would reject.
            let _ = writeln!(out, "# EOF");
        }
        out
    }
}

/// Unix seconds now.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Encodes one counter without labels (`name` without `_total`).
pub(crate) fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: u64,
) -> std::fmt::Result {
    let c = ConstCounter::new(value);
    let m = enc.encode_descriptor(name, help, unit, c.metric_type())?;
    c.encode(m)
}

/// Encodes one gauge without labels.
pub(crate) fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: i64,
) -> std::fmt::Result {
    let g = ConstGauge::new(value);
    let m = enc.encode_descriptor(name, help, unit, g.metric_type())?;
    g.encode(m)
}

/// Encodes a counter family with one label whose values are fixed `&'static str`s.
pub(crate) fn labelled_counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    label: &'static str,
    values: &[(&'static str, u64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for &(value, n) in values {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes a gauge family with one label whose values are fixed `&'static str`s.
pub(crate) fn labelled_gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, i64)],
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for &(value, n) in values {
        let labels = [(label, value)];
        ConstGauge::new(n).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Encodes a latency histogram in seconds (`name` without `_seconds`).
pub(crate) fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &HistogramSnapshot,
) -> std::fmt::Result {
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    m.encode_histogram::<NoLabelSet>(h.sum_secs, h.count, &h.buckets, None)
}

/// The shared directory gauges: `braid_directory_age_seconds` and `braid_directory_relays`.
pub(crate) fn directory(
    enc: &mut DescriptorEncoder,
    issued_at: Option<u64>,
    relays: usize,
) -> std::fmt::Result {
    if let Some(issued) = issued_at {
        let age = unix_now().saturating_sub(issued);
        gauge(
            enc,
            "braid_directory_age",
            "Age of the directory snapshot in use (now minus its issued_at).",
            Some(&Unit::Seconds),
            i64::try_from(age).unwrap_or(i64::MAX),
        )?;
    }
    gauge(
        enc,
        "braid_directory_relays",
        "Relays listed in the directory in use.",
        None,
        i64::try_from(relays).unwrap_or(i64::MAX),
    )
}

/// A `u64` as a gauge value (saturating).
pub(crate) fn g(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
