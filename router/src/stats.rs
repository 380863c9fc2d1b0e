//! The proxy side's counters (circuits built, streams, strands, fragments), plain relaxed
//! atomics a node reads for its metrics. No metrics library and no labels here: nothing in
//! this struct names a relay, a client or a target.

use std::sync::atomic::{AtomicU64, Ordering};

use braid_relay::braid::BraidReport;
use braid_relay::stats::LatencyHistogram;

/// Counters a [`crate::CircuitManager`] and the SOCKS front door keep.
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Circuits built since start (every kind: single, strand, clean, replacement).
    pub circuits_built: AtomicU64,
    /// Circuit builds that failed (a relay down, a handshake refused or timed out).
    pub circuit_build_failures: AtomicU64,
    /// Time to build one circuit, from opening the stream to the guard to the last `Created`.
    pub build_latency: LatencyHistogram,
    /// App streams open now (SOCKS requests answered with success and not yet ended).
    pub streams_open: AtomicU64,
    /// App streams opened since start.
    pub streams_total: AtomicU64,
    /// App bytes sent into braided streams.
    pub stream_bytes_sent: AtomicU64,
    /// App bytes delivered from braided streams, in order.
    pub stream_bytes_received: AtomicU64,
    /// Strands that went down before their braided stream ended.
    pub strands_failed: AtomicU64,
    /// Fragments this proxy sent again (after a timeout or a lost strand).
    pub fragments_resent: AtomicU64,
    /// Fragments and acks this proxy rejected as not authentic or malformed.
    pub fragments_rejected: AtomicU64,
}

impl RouterStats {
    /// Adds a finished braided stream's report.
    pub(crate) fn add_report(&self, report: &BraidReport) {
        let failed = report.strands.iter().filter(|s| s.failed).count() as u64;
        self.strands_failed.fetch_add(failed, Ordering::Relaxed);
        self.fragments_resent
            .fetch_add(report.sent.fragments_resent, Ordering::Relaxed);
        self.fragments_rejected
            .fetch_add(report.rejected(), Ordering::Relaxed);
        self.stream_bytes_sent
            .fetch_add(report.sent.bytes_written, Ordering::Relaxed);
        self.stream_bytes_received
            .fetch_add(report.received.bytes_delivered, Ordering::Relaxed);
    }

    /// Counts an app stream as open until the returned guard is dropped.
    pub(crate) fn stream_opened(self: &std::sync::Arc<Self>) -> OpenStreamGuard {
        self.streams_open.fetch_add(1, Ordering::Relaxed);
        self.streams_total.fetch_add(1, Ordering::Relaxed);
        OpenStreamGuard(self.clone())
    }
}

/// Decrements `streams_open` when dropped.
pub(crate) struct OpenStreamGuard(std::sync::Arc<RouterStats>);

impl Drop for OpenStreamGuard {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::Relaxed);
    }
}
