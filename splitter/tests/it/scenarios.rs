//! End-to-end scenarios over the simulated braid: clean transfer and strand shares, strand
//! failure mid-stream, loss/duplication/reordering, tampering, erasure-coded messages.

use braid_splitter::harness::{Link, Net, STREAM, data, keys};
use braid_splitter::{
    Config, DropReason, ErasureParams, Received, Receiver, SendAction, Sender, StrandId,
};

#[test]
fn clean_transfer_is_exact_and_equal_strands_share_equally() {
    let payload = data(3 << 20, 1);
    let mut net = Net::new(&Config::default(), vec![Link::clean(20); 3], 11);
    assert!(net.run(&payload, 65536, 600_000).unwrap());
    assert_eq!(net.out, payload);
    let stats = net.sender.strand_stats();
    let total: u64 = stats.iter().map(|s| s.bytes_sent).sum();
    for s in &stats {
        let share = s.bytes_sent as f64 / total as f64;
        assert!(
            (share - 1.0 / 3.0).abs() < 0.1,
            "strand {} share {share}",
            s.strand
        );
        assert!(s.srtt_ms > 30.0 && s.srtt_ms < 50.0, "srtt {}", s.srtt_ms);
    }
    assert_eq!(net.sender.stats().fragments_resent, 0);
    assert_eq!(net.receiver.stats().dropped.total(), 0);
}

#[test]
fn faster_strand_carries_more() {
    // Long enough that the first window (sent before any RTT is measured) does not dominate.
    let payload = data(8 << 20, 2);
    let mut net = Net::new(
        &Config::default(),
        vec![Link::clean(10), Link::clean(80)],
        3,
    );
    assert!(net.run(&payload, 65536, 600_000).unwrap());
    assert_eq!(net.out, payload);
    assert!(net.sent_on[0] > 2 * net.sent_on[1], "{:?}", net.sent_on);
}

#[test]
fn strand_failure_mid_stream_resends_on_survivors() {
    let payload = data(4 << 20, 3);
    let mut links = vec![Link::clean(20); 3];
    links[1].dies_at = Some(100);
    let mut net = Net::new(&Config::default(), links, 5);
    assert!(net.run(&payload, 65536, 600_000).unwrap());
    assert_eq!(net.out, payload);
    let stats = net.sender.stats();
    assert!(stats.fragments_resent > 0, "{stats:?}");
    let dead = &net.sender.strand_stats()[1];
    assert!(dead.failed);
    // Nothing after the failure was reported (t = 150): everything it got was sent before.
    let sent_before = dead.fragments_sent;
    assert!(sent_before < net.sent_on[0] && sent_before < net.sent_on[2]);
}

#[test]
fn loss_duplication_and_reordering_still_reassemble_exactly() {
    let payload = data(512 << 10, 4);
    let link = Link {
        delay: 15,
        jitter: 60,
        loss: 0.05,
        dup: 0.05,
        dies_at: None,
    };
    let mut net = Net::new(&Config::default(), vec![link; 3], 7);
    assert!(net.run(&payload, 10_000, 3_600_000).unwrap());
    assert_eq!(net.out, payload);
    assert!(net.receiver.stats().dropped.duplicate > 0);
    assert!(net.sender.stats().timeouts > 0);
    assert!(net.max_buffered <= Config::default().window_bytes.get() as usize);
}

#[test]
fn tampered_fragments_are_dropped_counted_and_resent() {
    let payload = data(256 << 10, 5);
    let mut net = Net::new(&Config::default(), vec![Link::clean(10); 3], 9);
    net.tamper = Some(Box::new(|dice, bytes| {
        if dice.chance(0.05) {
            let i = dice.below(bytes.len() as u64) as usize;
            bytes[i] ^= 0x20;
        }
    }));
    assert!(net.run(&payload, 65536, 3_600_000).unwrap());
    assert_eq!(net.out, payload);
    let dropped = net.receiver.stats().dropped;
    assert!(dropped.forged + dropped.malformed > 0, "{dropped:?}");
}

#[test]
fn replayed_and_forged_fragments_are_dropped_and_counted() {
    let config = Config::default();
    let mut sender = Sender::new(&config, STREAM, keys(), 1).unwrap();
    sender.add_strand(StrandId(0)).unwrap();
    assert_eq!(sender.write(b"hello braid").unwrap(), 11);
    let SendAction::Transmit { fragment, .. } = sender.poll(0).unwrap() else {
        panic!("no transmit")
    };
    let fragment = fragment.to_vec();
    let mut receiver = Receiver::new(&config, STREAM, keys()).unwrap();
    let mut out = Vec::new();
    assert!(matches!(
        receiver
            .on_fragment(StrandId(0), &fragment, &mut out)
            .unwrap(),
        Received::Accepted { delivered: 11, .. }
    ));
    // Replay, on the same and on another strand.
    for strand in [0, 2] {
        assert!(matches!(
            receiver
                .on_fragment(StrandId(strand), &fragment, &mut out)
                .unwrap(),
            Received::Duplicate { .. }
        ));
    }
    // Forged: same header, different payload, old tag.
    let mut forged = fragment.clone();
    forged[16] ^= 1;
    assert_eq!(
        receiver
            .on_fragment(StrandId(0), &forged, &mut out)
            .unwrap(),
        Received::Dropped(DropReason::Forged)
    );
    // Tagged with another key.
    let mut other = Sender::new(
        &config,
        STREAM,
        braid_splitter::FragmentKey::derive(b"other"),
        1,
    )
    .unwrap();
    other.add_strand(StrandId(0)).unwrap();
    other.write(b"evil").unwrap();
    let SendAction::Transmit { fragment: evil, .. } = other.poll(0).unwrap() else {
        panic!()
    };
    assert_eq!(
        receiver.on_fragment(StrandId(0), evil, &mut out).unwrap(),
        Received::Dropped(DropReason::Forged)
    );
    assert_eq!(out, b"hello braid");
    let dropped = receiver.stats().dropped;
    assert_eq!((dropped.duplicate, dropped.forged), (2, 2));
}

#[test]
fn erasure_message_survives_a_dead_strand_without_resend() {
    let config = Config::default();
    let mut links = vec![Link::clean(20); 3];
    links[2].dies_at = Some(0); // dead from the start and never reported
    let mut net = Net::new(&config, links, 13);
    let request = data(5000, 6);
    assert!(
        net.sender
            .write_message(&request, ErasureParams::new(2, 3).unwrap())
            .unwrap()
    );
    // No finish: run until idle, then check the message arrived within one trip.
    net.finish = false;
    assert!(!net.run(&[], 1, 45).unwrap());
    assert_eq!(net.out, request);
    assert_eq!(net.sender.stats().fragments_resent, 0);
    assert_eq!(net.sent_on, vec![1, 1, 1], "one shard per strand");
    assert_eq!(net.receiver.stats().messages_rebuilt, 1);
}
