//! Read-only views of the manager for a node's status API: every open circuit by relay
//! nickname, and the cells all circuits carried. Never a stream's target: the manager keeps
//! none per circuit, and these views add none.

use std::sync::Arc;
use std::time::Duration;

use super::CircuitManager;
use crate::circuit::{Circuit, Traffic};

/// One open circuit as a status view shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitSummary {
    /// Nicknames of its relays, guard first, exit last.
    pub path: Vec<String>,
    /// Circuits in its strand set (1 for a circuit carrying whole streams).
    pub strands: usize,
    /// Which strand set it belongs to (an index into this listing's sets), if any.
    pub strand_set: Option<usize>,
    /// Time since it was built.
    pub age: Duration,
    /// Cells it received so far.
    pub cells_in: u64,
    /// Streams on it now.
    pub streams: usize,
}

impl CircuitManager {
    /// Cells sent and received by every circuit this manager built (cumulative).
    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.settings.circuit.traffic
    }

    /// Every open circuit: those carrying whole streams, then each strand set's.
    pub fn circuit_summaries(&self) -> Vec<CircuitSummary> {
        let relays = self.relays.read().map(|r| r.clone()).unwrap_or_default();
        let names = |c: &Circuit| -> Vec<String> {
            c.path
                .iter()
                .map(|&i| {
                    relays
                        .get(i)
                        .map(|r| r.desc.nickname.clone())
                        .unwrap_or_else(|| "?".into())
                })
                .collect()
        };
        let summary = |c: &Circuit, strands: usize, strand_set: Option<usize>| CircuitSummary {
            path: names(c),
            strands,
            strand_set,
            age: c.built_at.elapsed(),
            cells_in: c.cells_in(),
            streams: c.stream_count(),
        };
        let mut out: Vec<CircuitSummary> = self
            .circuits
            .lock()
            .map(|c| {
                c.iter()
                    .filter(|e| !e.circuit.is_closed())
                    .map(|e| summary(&e.circuit, 1, None))
                    .collect()
            })
            .unwrap_or_default();
        let sets: Vec<Vec<Arc<Circuit>>> = self
            .sets
            .lock()
            .map(|s| s.iter().map(|set| set.circuits()).collect())
            .unwrap_or_default();
        for (i, set) in sets.iter().enumerate() {
            let open: Vec<&Arc<Circuit>> = set.iter().filter(|c| !c.is_closed()).collect();
            out.extend(open.iter().map(|c| summary(c, open.len(), Some(i))));
        }
        out
    }
}
