//! Fetch records, percentiles, the printed table and the JSON report.

use std::time::Duration;

use serde::Serialize;

/// One fetch's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct FetchRecord {
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

/// A row of the summary table: one (size, fresh) group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupSummary {
    /// Body size.
    pub size: u64,
    /// Fresh or reused circuits.
    pub fresh: bool,
    /// Successful fetches / all fetches.
    pub success_rate: f64,
    /// Time to first byte, ms.
    pub ttfb_ms: Percentiles,
    /// Throughput, MB/s.
    pub mbytes_per_s: Percentiles,
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
    /// Fraction of fetches that succeeded.
    pub success_rate: f64,
    /// Per-group summaries.
    pub groups: Vec<GroupSummary>,
    /// Circuit build times, ms.
    pub circuit_build_ms: Percentiles,
    /// Cells that failed authentication at relays.
    pub integrity_failures: u64,
    /// Every fetch.
    pub fetches: Vec<FetchRecord>,
}

impl Report {
    /// Builds the summaries from the records.
    pub fn new(
        scenario: &crate::Scenario,
        fetches: Vec<FetchRecord>,
        builds: &[Duration],
        integrity_failures: u64,
    ) -> Self {
        let mut keys: Vec<(u64, bool)> = fetches.iter().map(|f| (f.size, f.fresh)).collect();
        keys.dedup();
        keys.sort();
        keys.dedup();
        let groups = keys
            .into_iter()
            .map(|(size, fresh)| {
                let g: Vec<&FetchRecord> = fetches
                    .iter()
                    .filter(|f| f.size == size && f.fresh == fresh)
                    .collect();
                let ok: Vec<&&FetchRecord> = g.iter().filter(|f| f.ok).collect();
                GroupSummary {
                    size,
                    fresh,
                    success_rate: ok.len() as f64 / g.len().max(1) as f64,
                    ttfb_ms: Percentiles::of(ok.iter().map(|f| f.ttfb_ms).collect()),
                    mbytes_per_s: Percentiles::of(ok.iter().map(|f| f.mbytes_per_s).collect()),
                }
            })
            .collect();
        let ok = fetches.iter().filter(|f| f.ok).count();
        Report {
            scenario: scenario.name.clone(),
            relays: scenario.relays,
            exits: scenario.exits,
            hops: scenario.hops,
            success_rate: ok as f64 / fetches.len().max(1) as f64,
            groups,
            circuit_build_ms: Percentiles::of(
                builds.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
            ),
            integrity_failures,
            fetches,
        }
    }

    /// Whether every fetch succeeded.
    pub fn all_ok(&self) -> bool {
        !self.fetches.is_empty() && self.fetches.iter().all(|f| f.ok)
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = format!(
            "braid sim: scenario {:?}, {} relays ({} exits), {} hops\n\n",
            self.scenario, self.relays, self.exits, self.hops
        );
        s += &format!(
            "{:>10} {:>7} {:>8} {:>26} {:>26}\n",
            "size", "circuit", "success", "ttfb ms p50/p90/p99", "MB/s p50/p90/p99"
        );
        for g in &self.groups {
            s += &format!(
                "{:>10} {:>7} {:>7.0}% {:>26} {:>26}\n",
                human(g.size),
                if g.fresh { "fresh" } else { "reused" },
                g.success_rate * 100.0,
                triple(&g.ttfb_ms),
                triple(&g.mbytes_per_s),
            );
        }
        s += &format!(
            "\ncircuit build ms p50/p90/p99: {} (n={})\n",
            triple(&self.circuit_build_ms),
            self.circuit_build_ms.n
        );
        s += &format!(
            "success rate: {:.1}% of {} fetches; integrity failures at relays: {}\n",
            self.success_rate * 100.0,
            self.fetches.len(),
            self.integrity_failures
        );
        for f in self.fetches.iter().filter(|f| !f.ok) {
            s += &format!(
                "FAILED {} fetch ({}): {}\n",
                human(f.size),
                if f.fresh { "fresh" } else { "reused" },
                f.error.as_deref().unwrap_or("?")
            );
        }
        s
    }
}

fn triple(p: &Percentiles) -> String {
    if p.n == 0 {
        return "-".into();
    }
    format!("{:.2} / {:.2} / {:.2}", p.p50, p.p90, p.p99)
}

fn human(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

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
