//! The engine without sockets: a client and an exit engine on a virtual clock ([`pair`]),
//! over strands that lose, duplicate, reorder, stall and die.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod pair;

use braid_splitter::StrandId;
use braid_splitter::harness::{Link, data};
use pair::{CLIENT, EXIT, MAX_DATA, Pair};
use proptest::prelude::*;

use super::BURST;
use crate::braid::BraidSettings;
use crate::msg::EndReason;

fn pair(k: u32, link: Link, seed: u64, up: Vec<u8>, down: Vec<u8>) -> Pair {
    let settings = BraidSettings::default();
    Pair::new(k, link, seed, up, down, &settings, &settings)
}

/// Both directions arrived exactly and both ends finished cleanly.
fn assert_exact(p: &Pair, up: &[u8], down: &[u8]) {
    assert!(p.sides[EXIT].app_out == up, "upload differs");
    assert!(p.sides[CLIENT].app_out == down, "download differs");
    for side in [CLIENT, EXIT] {
        assert_eq!(p.report(side).failure, None, "side {side}");
        assert!(
            p.sides[side].app_closed,
            "side {side} did not close its app"
        );
        assert_eq!(p.sides[side].answered, 1, "side {side}");
    }
}

#[test]
fn both_directions_arrive_exactly_over_three_strands() {
    let (up, down) = (data(512 << 10, 1), data(2 << 20, 2));
    let mut p = pair(3, Link::clean(10), 1, up.clone(), down.clone());
    assert!(p.run(60_000), "did not finish");
    assert_exact(&p, &up, &down);
    assert_eq!(p.report(CLIENT).rejected() + p.report(EXIT).rejected(), 0);
    // A clean network needs no resend (every ack of every batch counts).
    assert_eq!(p.report(CLIENT).sent.fragments_resent, 0);
    assert_eq!(p.report(EXIT).sent.fragments_resent, 0);
    // Bulk transfers are not erasure-coded.
    assert_eq!(p.report(CLIENT).received.messages_rebuilt, 0);
    for t in &p.report(EXIT).strands {
        assert!(t.bytes_sent > 0, "strand {} carried nothing", t.strand.0);
    }
    for t in &p.report(CLIENT).strands {
        assert!(t.bytes_sent > 0, "strand {} carried nothing", t.strand.0);
    }
}

#[test]
fn a_strand_dying_mid_transfer_loses_nothing_and_a_replacement_joins() {
    let (up, down) = (data(256 << 10, 3), data(2 << 20, 4));
    let mut p = pair(3, Link::clean(10), 2, up.clone(), down.clone());
    p.rate = 1;
    p.kills.push((40, StrandId(1)));
    p.replace_after = Some(20);
    assert!(p.run(60_000), "did not finish");
    assert_exact(&p, &up, &down);
    assert_eq!(p.sides[CLIENT].lost, vec![(StrandId(1), 2)], "supply told");
    for side in [CLIENT, EXIT] {
        let strands = &p.report(side).strands;
        let dead = strands.iter().find(|t| t.strand == StrandId(1)).unwrap();
        assert!(dead.failed, "side {side}: strand 1 must be reported failed");
        let new = strands.iter().find(|t| t.strand == StrandId(3));
        assert!(
            new.is_some_and(|t| t.bytes_sent > 0 && !t.failed),
            "side {side}: the replacement must carry fragments: {strands:?}"
        );
    }
}

/// The exit's queue of strand 1 refuses everything from the start. The scheduler keeps bulk
/// data off a full queue, but an erasure-coded answer puts one shard on every strand: that
/// shard waits on strand 1 for `stall_timeout`, then strand 1 is treated as lost and the
/// shard goes over another.
#[test]
fn a_stalled_strand_is_treated_as_lost_and_the_others_carry_its_data() {
    let (up, down) = (data(300, 5), data(1500, 6));
    let mut p = pair(3, Link::clean(10), 3, up.clone(), down.clone());
    p.sides[EXIT]
        .queues
        .get_mut(&StrandId(1))
        .unwrap()
        .stalled_from = Some(0);
    assert!(p.run(60_000), "did not finish");
    assert_exact(&p, &up, &down);
    let exit = p.report(EXIT);
    let stalled = exit
        .strands
        .iter()
        .find(|t| t.strand == StrandId(1))
        .unwrap();
    assert!(stalled.failed, "the stalled strand must be treated as lost");
    assert_eq!(p.sides[EXIT].lost, vec![(StrandId(1), 2)]);
    assert_eq!(stalled.bytes_sent, 0, "it carried nothing");
    // Lost after the stall timeout, not before.
    let stall = BraidSettings::default().stall_timeout.as_millis() as u64;
    assert!(p.sides[EXIT].finished_at.unwrap() >= stall);
}

#[test]
fn reordered_duplicated_and_lost_fragments_arrive_exactly() {
    let (up, down) = (data(256 << 10, 7), data(1 << 20, 8));
    let link = Link {
        delay: 10,
        jitter: 30,
        loss: 0.01,
        dup: 0.1,
        dies_at: None,
    };
    let mut p = pair(3, link, 4, up.clone(), down.clone());
    // Queues that now and then refuse a message although they had room.
    p.refuse = 0.02;
    assert!(p.run(120_000), "did not finish");
    assert_exact(&p, &up, &down);
    let (c, e) = (p.report(CLIENT), p.report(EXIT));
    assert!(c.received.dropped.duplicate > 0, "{:?}", c.received);
    assert!(e.received.dropped.duplicate > 0, "{:?}", e.received);
    assert!(e.sent.fragments_resent > 0, "{:?}", e.sent);
    assert_eq!(c.rejected() + e.rejected(), 0);
}

#[test]
fn an_app_that_stops_reading_holds_the_strands_not_the_memory() {
    let (up, down) = (data(4 << 10, 9), data(4 << 20, 10));
    let mut p = pair(3, Link::clean(10), 5, up.clone(), down.clone());
    p.sides[CLIENT].paused_until = 5_000;
    assert!(p.run(120_000), "did not finish");
    assert_exact(&p, &up, &down);
    let settings = BraidSettings::default();
    let client = &p.sides[CLIENT];
    let window = settings.splitter.window_bytes.get() as usize;
    assert!(
        client.max_output >= settings.out_buffer,
        "the buffer filled: {}",
        client.max_output
    );
    assert!(
        client.max_output <= settings.out_buffer + window + MAX_DATA,
        "out_buffer not honoured: {} bytes waited for the app",
        client.max_output
    );
    assert!(client.max_inbox > 0, "the engine stopped taking events");
    assert!(client.finished_at.unwrap() > 5_000);
}

/// A short request and a short answer are erasure-coded over the three strands (2 of 3 shards
/// rebuild each), so a strand that alters every fragment it carries costs them no resend.
#[test]
fn short_messages_are_coded_and_survive_an_altered_strand() {
    let (request, answer) = (data(300, 11), data(1500, 12));
    let client = BraidSettings::default();
    let exit = BraidSettings {
        corrupt: Some((StrandId(1), 1)),
        ..BraidSettings::default()
    };
    let mut p = Pair::new(
        3,
        Link::clean(10),
        6,
        request.clone(),
        answer.clone(),
        &client,
        &exit,
    );
    assert!(p.run(60_000), "did not finish");
    assert_exact(&p, &request, &answer);
    let (c, e) = (p.report(CLIENT), p.report(EXIT));
    assert_eq!(e.received.messages_rebuilt, 1, "{:?}", e.received);
    assert_eq!(c.received.messages_rebuilt, 1, "{:?}", c.received);
    assert!(c.received.dropped.forged >= 1, "{:?}", c.received);
    // Only the end-of-stream fragment may have needed a resend.
    assert!(e.sent.fragments_resent <= 1, "{:?}", e.sent);
}

#[test]
fn no_strand_left_times_out_unless_none_can_come() {
    let (up, down) = (data(2 << 20, 13), data(2 << 20, 14));
    let mut p = pair(2, Link::clean(10), 7, up, down);
    p.rate = 1;
    p.kills.push((100, StrandId(0)));
    p.kills.push((100, StrandId(1)));
    assert!(p.run(60_000), "did not finish");
    // The client's supply has nothing under way (`pending() == Some(0)`): it fails at once.
    let client = p.report(CLIENT);
    assert_eq!(client.failure, Some(EndReason::Misc));
    assert!(p.sides[CLIENT].finished_at.unwrap() <= 110);
    // The exit cannot know whether another strand comes: it waits `no_strand_timeout`.
    let exit = p.report(EXIT);
    assert_eq!(exit.failure, Some(EndReason::Timeout));
    let wait = BraidSettings::default().no_strand_timeout.as_millis() as u64;
    let at = p.sides[EXIT].finished_at.unwrap();
    assert!((100 + wait..=110 + wait).contains(&at), "timed out at {at}");
    assert_eq!(p.sides[EXIT].lost.len(), 2);
    assert!(p.sides[EXIT].app_closed, "a failed stream closes the app");
}

#[test]
fn a_burst_is_bounded_per_round() {
    let down = data(1 << 20, 15);
    let mut p = pair(3, Link::clean(10), 8, Vec::new(), down);
    p.one_round(EXIT);
    let queued: usize = p.sides[EXIT].queues.values().map(|q| q.len()).sum();
    assert_eq!(queued, BURST + 1, "one round queues 1 + BURST fragments");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Any mix of delay, jitter, loss, duplication, refused queues and a dying strand: both
    /// directions arrive exactly.
    #[test]
    fn any_network_delivers_both_directions_exactly(
        seed in any::<u64>(),
        k in 2u32..=4,
        delay in 1u64..40,
        jitter in 0u64..30,
        loss in 0.0f64..0.03,
        dup in 0.0f64..0.1,
        refuse in 0.0f64..0.05,
        kill in proptest::option::of(20u64..400),
        up_len in 0usize..200_000,
        down_len in 0usize..400_000,
    ) {
        let (up, down) = (data(up_len, seed), data(down_len, seed ^ 1));
        let link = Link { delay, jitter, loss, dup, dies_at: None };
        let mut p = pair(k, link, seed, up.clone(), down.clone());
        p.refuse = refuse;
        if let Some(at) = kill {
            p.kills.push((at, StrandId(0)));
            p.replace_after = Some(30);
        }
        prop_assert!(p.run(300_000), "did not finish");
        prop_assert!(p.sides[EXIT].app_out == up, "upload differs");
        prop_assert!(p.sides[CLIENT].app_out == down, "download differs");
        prop_assert_eq!(p.report(CLIENT).failure, None);
        prop_assert_eq!(p.report(EXIT).failure, None);
    }
}
