//! Fetch records, percentiles, the printed table and the JSON report.

use std::time::Duration;

use braid_router::StreamRecord;
use serde::Serialize;

use crate::fault::FaultRecord;
use crate::network::ExitCounters;

/// One fetch's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct FetchRecord {
    /// Index of its fetch group in the scenario.
    pub group: usize,
    /// Body size asked for.
    pub size: u64,
    /// Whether it ran on a fresh circuit.
    pub fresh: bool,
    /// Target host as named by the app.
    pub host: String,
    /// Whether every byte arrived and matched.
    pub ok: bool,
    /// Milliseconds to the first body byte.
    pub ttfb_ms: f64,
    /// Milliseconds to the last body byte.
    pub total_ms: f64,
    /// Megabytes (10^6) per second over the whole fetch.
    pub mbytes_per_s: f64,
    /// The error, if any.
    pub error: Option<String>,
    /// The braided stream's figures as the proxy recorded them; `None` with one strand per
    /// stream, or when the proxy recorded no stream for this fetch.
    pub braid: Option<BraidFigures>,
}

/// What one braided stream did, from the client's side.
#[derive(Debug, Clone, Serialize)]
pub struct BraidFigures {
    /// The largest share of the stream's fragment bytes that one non-exit relay carried
    /// (ideally about 1/K).
    pub max_relay_share: f64,
    /// Strands the stream used, replacements included.
    pub strands: usize,
    /// Strands that went down before the stream ended.
    pub failed_strands: usize,
    /// Fragments the client sent again.
    pub fragments_resent: u64,
    /// Fragments and acks the client rejected (forged, altered, malformed, misrouted).
    pub fragments_rejected: u64,
    /// Authentic fragments the client received twice (after a resend).
    pub duplicates: u64,
    /// Why the stream failed, if it did.
    pub failure: Option<String>,
}

impl BraidFigures {
    /// The figures of one recorded stream.
    pub fn of(r: &StreamRecord) -> Self {
        BraidFigures {
            max_relay_share: r.max_relay_share(),
            strands: r.report.strands.len(),
            failed_strands: r.report.strands.iter().filter(|t| t.failed).count(),
            fragments_resent: r.report.sent.fragments_resent,
            fragments_rejected: r.report.rejected(),
            duplicates: r.report.received.dropped.duplicate,
            failure: r.report.failure.map(|f| format!("{f:?}")),
        }
    }
}

/// Percentiles of one quantity.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Percentiles {
    /// Samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Percentiles of `v` (nearest rank).
    pub fn of(mut v: Vec<f64>) -> Self {
        if v.is_empty() {
            return Percentiles::default();
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
        Percentiles {
            n: v.len(),
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v[v.len() - 1],
        }
    }
}

/// A row of the summary tables: one fetch group of the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    /// Index of the fetch group in the scenario.
    pub group: usize,
    /// Body size.
    pub size: u64,
    /// Fresh or reused circuits.
    pub fresh: bool,
    /// Target host.
    pub host: String,
    /// Fetches run.
    pub count: usize,
    /// Successful fetches / all fetches.
    pub success_rate: f64,
    /// Time to first byte, ms.
    pub ttfb_ms: Percentiles,
    /// Throughput, MB/s.
    pub mbytes_per_s: Percentiles,
    /// Per braided stream, the largest share of its bytes one non-exit relay carried
    /// (`p50` is the median, `max` the largest over the group).
    pub max_relay_share: Percentiles,
    /// Strands that went down, over the group's streams.
    pub failed_strands: u64,
    /// Fragments the client sent again, over the group's streams.
    pub fragments_resent: u64,
    /// Fragments the client rejected, over the group's streams.
    pub fragments_rejected: u64,
    /// The exits' counters over the group (credited when each exit's stream ends).
    pub exit: ExitCounters,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Relays started.
    pub relays: usize,
    /// Exits among them.
    pub exits: usize,
    /// Hops per circuit.
    pub hops: usize,
    /// Strands per stream asked for (K).
    pub strands: usize,
    /// Fraction of fetches that succeeded.
    pub success_rate: f64,
    /// Per-group summaries, in scenario order.
    pub groups: Vec<GroupSummary>,
    /// Per braided stream of the whole run, the largest share one non-exit relay carried.
    pub max_relay_share: Percentiles,
    /// Circuit build times, ms.
    pub circuit_build_ms: Percentiles,
    /// Cells that failed authentication at relays.
    pub integrity_failures: u64,
    /// The exits' braided stream counters over the whole run.
    pub exit: ExitCounters,
    /// The scenario's faults and what became of each.
    pub faults: Vec<FaultRecord>,
    /// Every fetch.
    pub fetches: Vec<FetchRecord>,
}

/// What a run collected, for [`Report::new`].
#[derive(Debug, Clone, Default)]
pub struct RunRecords {
    /// Every fetch, in order.
    pub fetches: Vec<FetchRecord>,
    /// The exits' counters during each fetch group, by group index.
    pub exit_per_group: Vec<ExitCounters>,
    /// The exits' counters over the whole run.
    pub exit_total: ExitCounters,
    /// The faults.
    pub faults: Vec<FaultRecord>,
}

fn shares<'a>(fetches: impl Iterator<Item = &'a FetchRecord>) -> Percentiles {
    Percentiles::of(
        fetches
            .filter_map(|f| f.braid.as_ref().map(|b| b.max_relay_share))
            .collect(),
    )
}

impl Report {
    /// Builds the summaries from the records.
    pub fn new(
        scenario: &crate::Scenario,
        run: RunRecords,
        builds: &[Duration],
        integrity_failures: u64,
    ) -> Self {
        let RunRecords {
            fetches,
            exit_per_group,
            exit_total,
            faults,
        } = run;
        let mut indexes: Vec<usize> = fetches.iter().map(|f| f.group).collect();
        indexes.dedup();
        indexes.sort_unstable();
        indexes.dedup();
        let groups = indexes
            .into_iter()
            .filter_map(|group| {
                let g: Vec<&FetchRecord> = fetches.iter().filter(|f| f.group == group).collect();
                let first = g.first()?;
                let ok: Vec<&&FetchRecord> = g.iter().filter(|f| f.ok).collect();
                let braids = || g.iter().filter_map(|f| f.braid.as_ref());
                Some(GroupSummary {
                    group,
                    size: first.size,
                    fresh: first.fresh,
                    host: first.host.clone(),
                    count: g.len(),
                    success_rate: ok.len() as f64 / g.len().max(1) as f64,
                    ttfb_ms: Percentiles::of(ok.iter().map(|f| f.ttfb_ms).collect()),
                    mbytes_per_s: Percentiles::of(ok.iter().map(|f| f.mbytes_per_s).collect()),
                    max_relay_share: shares(g.iter().copied()),
                    failed_strands: braids().map(|b| b.failed_strands as u64).sum(),
                    fragments_resent: braids().map(|b| b.fragments_resent).sum(),
                    fragments_rejected: braids().map(|b| b.fragments_rejected).sum(),
                    exit: exit_per_group.get(group).copied().unwrap_or_default(),
                })
            })
            .collect();
        let ok = fetches.iter().filter(|f| f.ok).count();
        Report {
            scenario: scenario.name.clone(),
            relays: scenario.relays,
            exits: scenario.exits,
            hops: scenario.hops,
            strands: scenario.strands,
            success_rate: ok as f64 / fetches.len().max(1) as f64,
            groups,
            max_relay_share: shares(fetches.iter()),
            circuit_build_ms: Percentiles::of(
                builds.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
            ),
            integrity_failures,
            exit: exit_total,
            faults,
            fetches,
        }
    }

    /// Whether every fetch succeeded.
    pub fn all_ok(&self) -> bool {
        !self.fetches.is_empty() && self.fetches.iter().all(|f| f.ok)
    }
}

pub(crate) fn triple(p: &Percentiles) -> String {
    if p.n == 0 {
        return "-".into();
    }
    format!("{:.2} / {:.2} / {:.2}", p.p50, p.p90, p.p99)
}

pub(crate) fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

mod table;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of(vec![]).n, 0);
    }
}
