//! The driver's own plumbing, without sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use std::collections::BTreeMap;
use std::time::Instant;

use braid_splitter::StrandId;
use tokio::sync::mpsc;

use super::{EVENT_BATCH, StrandEvent, take_events};
use crate::braid::{Braid, BraidEngine, BraidSettings, Role};

/// A strand event the engine shrugs off (a strand it never had went down), tagged by `n`.
fn noop(n: u32) -> StrandEvent {
    StrandEvent::Down {
        strand: StrandId(1000 + n),
        ended: None,
    }
}

fn tag(event: &StrandEvent) -> u32 {
    match event {
        StrandEvent::Down { strand, .. } => strand.0 - 1000,
        other => panic!("unexpected event {other:?}"),
    }
}

/// A full batch takes exactly `EVENT_BATCH` events off the queue: the next one stays queued
/// for the next wake-up instead of being taken and dropped (a lost fragment costs the peer a
/// resend timeout, a lost `Up` or `Down` a strand).
#[test]
fn a_full_batch_leaves_the_next_event_queued() {
    let settings = BraidSettings::default();
    let braid = Braid::new(&settings, &[7; 32], Role::Exit, 4000).unwrap();
    let mut engine = BraidEngine::new(braid, &settings, Instant::now());
    let mut links = BTreeMap::new();
    let extra = 3;
    let total = EVENT_BATCH as u32 + extra;
    let (tx, mut rx) = mpsc::channel(total as usize);
    for n in 0..total {
        tx.try_send(noop(n)).unwrap();
    }
    let first = rx.try_recv().ok();
    take_events(&mut engine, &mut links, &mut rx, first);
    assert!(
        engine.wants_events(),
        "the engine took the events without failing"
    );
    let left: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|e| tag(&e))
        .collect();
    let expected: Vec<u32> = (EVENT_BATCH as u32..total).collect();
    assert_eq!(
        left, expected,
        "events after the batch, in order, none lost"
    );
}
