//! The printed report: fetch timings per group, strand figures per group, the faults.

use super::{Report, human, triple};

impl Report {
    /// The human-readable tables.
    pub fn table(&self) -> String {
        let mut s = format!(
            "braid sim: scenario {:?}, {} relays ({} exits), {} hops, {} strands per stream\n\n",
            self.scenario, self.relays, self.exits, self.hops, self.strands
        );
        s += &format!(
            "{:>10} {:>7} {:>8} {:>26} {:>26}\n",
            "size", "circuit", "success", "ttfb ms p50/p90/p99", "MB/s p50/p90/p99"
        );
        for g in &self.groups {
            s += &format!(
                "{:>10} {:>7} {:>7.0}% {:>26} {:>26}\n",
                human(g.size),
                circuit(g.fresh),
                g.success_rate * 100.0,
                triple(&g.ttfb_ms),
                triple(&g.mbytes_per_s),
            );
        }
        if self.groups.iter().any(|g| g.max_relay_share.n > 0) {
            s += &format!(
                "\nstrands (share: the largest share of a stream's bytes one non-exit relay \
                 carried; ideal 1/{})\n",
                self.strands
            );
            s += &format!(
                "{:>10} {:>7} {:>7} {:>13} {:>6} {:>20} {:>20}\n",
                "size",
                "circuit",
                "streams",
                "share p50/max",
                "failed",
                "resent client/exit",
                "rejected client/exit"
            );
            for g in &self.groups {
                let share = if g.max_relay_share.n == 0 {
                    "-".to_string()
                } else {
                    format!(
                        "{:.2} / {:.2}",
                        g.max_relay_share.p50, g.max_relay_share.max
                    )
                };
                s += &format!(
                    "{:>10} {:>7} {:>7} {:>13} {:>6} {:>20} {:>20}\n",
                    human(g.size),
                    circuit(g.fresh),
                    g.max_relay_share.n,
                    share,
                    g.failed_strands,
                    format!("{} / {}", g.fragments_resent, g.exit.fragments_resent),
                    format!("{} / {}", g.fragments_rejected, g.exit.fragments_rejected),
                );
            }
        }
        if !self.faults.is_empty() {
            s += "\nfaults\n";
            for f in &self.faults {
                let when = match f.fired_at_ms {
                    Some(ms) => format!(" (fired at {ms:.0} ms)"),
                    None => String::new(),
                };
                s += &format!(
                    "  group {} at {} ms: {}: {}{}\n",
                    f.group, f.at_ms, f.fault, f.outcome, when
                );
            }
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
                circuit(f.fresh),
                f.error.as_deref().unwrap_or("?")
            );
        }
        s
    }
}

fn circuit(fresh: bool) -> &'static str {
    if fresh { "fresh" } else { "reused" }
}
