#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::num::NonZeroU32;

use super::*;
use crate::config::PayloadLimit;
use crate::wire::{Ack, open};

const S: StreamId = StreamId(9);

fn key() -> FragmentKey {
    FragmentKey::from_bytes([4; 32])
}

fn config(payload: u32, window_bytes: u32, window_fragments: u32) -> Config {
    Config {
        max_payload: PayloadLimit::try_from(payload).unwrap(),
        window_bytes: NonZeroU32::new(window_bytes).unwrap(),
        window_fragments: NonZeroU32::new(window_fragments).unwrap(),
        ..Config::default()
    }
}

fn sender(config: &Config, strands: u32) -> Sender {
    let mut s = Sender::new(config, S, key(), 1).unwrap();
    for i in 0..strands {
        s.add_strand(StrandId(i)).unwrap();
    }
    s
}

/// Drains transmits at `now`: (strand, seq, fragment).
fn drain(s: &mut Sender, now: u64) -> Vec<(StrandId, u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let SendAction::Transmit {
        strand,
        seq,
        fragment,
    } = s.poll(now).unwrap()
    {
        out.push((strand, seq, fragment.to_vec()));
    }
    out
}

fn ack(cumulative: u64, echo: u64, sack: u64) -> [u8; crate::wire::ACK_FRAGMENT_LEN] {
    Ack {
        stream: S,
        cumulative,
        echo,
        sack,
    }
    .encode(&key())
}

#[test]
fn write_cuts_fragments_and_respects_the_byte_window() {
    let mut s = sender(&config(100, 250, 64), 1);
    // 100 + 100, then no 50-byte runt at the window edge while data is in flight.
    assert_eq!(s.write(&[7; 1000]).unwrap(), 200);
    assert_eq!(s.window_available(), 50);
    assert_eq!(s.write(&[7; 50]).unwrap(), 50);
    assert_eq!(s.window_available(), 0);
    assert_eq!(s.write(&[7; 10]).unwrap(), 0);
    let sent = drain(&mut s, 0);
    let lens: Vec<usize> = sent
        .iter()
        .map(|(_, _, f)| match open(&key(), f).unwrap() {
            Fragment::Data(d) => d.payload.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lens, [100, 100, 50]);
    assert_eq!(sent.iter().map(|x| x.1).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(matches!(
        s.on_ack(StrandId(0), &ack(2, 1, 0), 5).unwrap(),
        AckVerdict::Accepted { newly_acked: 2 }
    ));
    assert_eq!(s.window_available(), 200);
    // No short fragment at the window edge while data is in flight (the unsent 50-byte tail
    // is filled first, then one more whole fragment fits).
    let mut s = sender(&config(100, 250, 64), 1);
    assert_eq!(s.write(&[1; 50]).unwrap(), 50);
    assert_eq!(s.write(&[1; 300]).unwrap(), 150);
}

/// The payloads of `sent`, in order.
fn payloads(sent: &[(StrandId, u64, Vec<u8>)]) -> Vec<Vec<u8>> {
    sent.iter()
        .map(|(_, _, f)| match open(&key(), f).unwrap() {
            Fragment::Data(d) => d.payload.to_vec(),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn read_size_keeps_bulk_reads_to_whole_fragments() {
    let mut s = sender(&config(100, 1000, 8), 1);
    // Idle: anything that fits, so a short request goes out whole.
    assert_eq!(s.read_size(50), 50);
    assert_eq!(s.read_size(5000), 700); // 7 slots (one kept for the FIN) of 100
    assert_eq!(s.write(&[3; 150]).unwrap(), 150); // 100 + a 50-byte tail, not sent yet
    // In flight: the tail's room plus whole fragments, within both windows.
    assert_eq!(s.read_size(30), 30);
    assert_eq!(s.read_size(99), 50);
    assert_eq!(s.read_size(250), 250);
    assert_eq!(s.read_size(5000), 550); // the tail's 50 and 5 free slots
    let taken = s.write(&vec![3; s.read_size(5000)]).unwrap();
    assert_eq!(taken, 550);
    assert_eq!(s.read_size(5000), 0);
    let lens: Vec<usize> = payloads(&drain(&mut s, 0)).iter().map(Vec::len).collect();
    assert_eq!(lens, [100; 7]);
}

#[test]
fn write_fills_an_unsent_short_fragment_but_never_a_sent_one() {
    let mut s = sender(&config(100, 10_000, 64), 1);
    assert_eq!(s.write(&[1; 130]).unwrap(), 130);
    assert_eq!(s.write(&[2; 90]).unwrap(), 90); // fills the unsent 30-byte tail, then 20 more
    let first = payloads(&drain(&mut s, 0));
    let lens: Vec<usize> = first.iter().map(Vec::len).collect();
    assert_eq!(lens, [100, 100, 20]);
    assert_eq!(first.concat(), [[1; 130].as_slice(), &[2; 90]].concat());
    // The 20-byte fragment is on the wire now: new bytes start a new fragment.
    assert_eq!(s.read_size(1000), 1000);
    assert_eq!(s.write(&[3; 50]).unwrap(), 50);
    s.finish().unwrap();
    // And the FIN is never filled.
    assert!(s.write(&[4; 10]).is_err());
    let second = drain(&mut s, 0);
    assert_eq!(second.len(), 2);
    assert_eq!(payloads(&second[..1]), [vec![3; 50]]);
    assert_eq!(s.stats().bytes_written, 270);
}

#[test]
fn fragment_window_keeps_a_slot_for_fin() {
    let mut s = sender(&config(100, 1 << 20, 4), 1);
    // Each one-byte fragment is sent before the next write, so none is filled.
    let mut sent = Vec::new();
    for _ in 0..3 {
        assert_eq!(s.write(&[1]).unwrap(), 1);
        sent.extend(drain(&mut s, 0));
    }
    assert_eq!(s.write(&[1]).unwrap(), 0);
    s.finish().unwrap();
    assert!(matches!(
        s.write(&[1]),
        Err(Error::StreamFinished { stream: S })
    ));
    assert!(matches!(
        s.write_message(b"x", ErasureParams::new(1, 2).unwrap()),
        Err(Error::StreamFinished { .. })
    ));
    sent.extend(drain(&mut s, 0));
    assert_eq!(sent.len(), 4);
    assert!(matches!(
        open(&key(), &sent[3].2).unwrap(),
        Fragment::Data(Data {
            fin: true,
            seq: 3,
            ..
        })
    ));
    assert!(!s.is_finished());
    let _ = s.on_ack(StrandId(0), &ack(4, 3, 0), 1).unwrap();
    assert!(s.is_finished());
    assert_eq!(s.poll(2).unwrap(), SendAction::Finished);
}

#[test]
fn timeout_resends_on_another_strand_with_backoff_until_the_limit() {
    let mut c = config(100, 1 << 20, 64);
    c.max_sends = NonZeroU32::new(3).unwrap();
    let mut s = sender(&c, 2);
    s.write(b"hello").unwrap();
    let first = drain(&mut s, 0);
    assert_eq!(first.len(), 1);
    let rto = s.scheduler.rto(first[0].0);
    assert_eq!(s.poll(0).unwrap(), SendAction::Idle { wake_at: Some(rto) });
    assert!(drain(&mut s, rto - 1).is_empty());
    let second = drain(&mut s, rto);
    assert_eq!(second.len(), 1);
    assert_ne!(second[0].0, first[0].0, "resent on the other strand");
    assert_eq!(second[0].2, first[0].2, "the same bytes");
    // Backoff: the second send waits twice the RTO.
    assert_eq!(
        s.poll(rto).unwrap(),
        SendAction::Idle {
            wake_at: Some(rto + 2 * rto)
        }
    );
    let third = drain(&mut s, 3 * rto);
    assert_eq!(third.len(), 1);
    let err = s.poll(3 * rto + 4 * rto).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ResendLimit {
                stream: S,
                seq: 0,
                attempts: 3
            }
        ),
        "{err}"
    );
    let stats = s.stats();
    assert_eq!(
        (stats.fragments_sent, stats.fragments_resent, stats.timeouts),
        (3, 2, 3)
    );
}

#[test]
fn strand_failure_requeues_its_fragments_on_survivors() {
    let mut s = sender(&config(100, 1 << 20, 64), 3);
    s.write(&[5; 3000]).unwrap();
    let sent = drain(&mut s, 0);
    assert_eq!(sent.len(), 30);
    let on_1: Vec<u64> = sent
        .iter()
        .filter(|x| x.0 == StrandId(1))
        .map(|x| x.1)
        .collect();
    assert!(!on_1.is_empty());
    assert_eq!(s.on_strand_failed(StrandId(1)), on_1.len());
    let resent = drain(&mut s, 1);
    assert_eq!(resent.iter().map(|x| x.1).collect::<Vec<_>>(), on_1);
    assert!(resent.iter().all(|x| x.0 != StrandId(1)));
    assert_eq!(s.stats().fragments_resent, on_1.len() as u64);
    assert!(s.strand_stats()[1].failed);
    // Acked fragments are not resent when their strand fails.
    let _ = s.on_ack(StrandId(0), &ack(30, 0, 0), 2).unwrap();
    assert_eq!(s.remove_strand(StrandId(0)), 0);
    assert_eq!(s.strand_stats().len(), 2);
}

#[test]
fn no_strand_and_strand_limits() {
    let mut s = sender(&config(100, 1 << 20, 64), 0);
    assert_eq!(s.poll(0).unwrap(), SendAction::Idle { wake_at: None });
    s.write(b"x").unwrap();
    assert_eq!(s.poll(0).unwrap(), SendAction::NoStrand);
    s.add_strand(StrandId(4)).unwrap();
    assert!(matches!(
        s.add_strand(StrandId(4)),
        Err(Error::DuplicateStrand {
            strand: StrandId(4)
        })
    ));
    assert!(matches!(
        s.poll(0).unwrap(),
        SendAction::Transmit {
            strand: StrandId(4),
            seq: 0,
            ..
        }
    ));
    let mut c = config(100, 1 << 20, 64);
    c.max_strands = crate::config::StrandLimit::try_from(2).unwrap();
    let mut s = sender(&c, 2);
    assert!(matches!(
        s.add_strand(StrandId(7)),
        Err(Error::TooManyStrands { limit: 2, .. })
    ));
}

#[test]
fn acks_are_verified_and_checked() {
    let mut s = sender(&config(100, 1 << 20, 64), 1);
    s.write(&[1; 250]).unwrap();
    let _ = drain(&mut s, 0);
    let mut forged = ack(3, 0, 0);
    forged[20] ^= 1;
    assert_eq!(
        s.on_ack(StrandId(0), &forged, 1).unwrap(),
        AckVerdict::Dropped(DropReason::Forged)
    );
    assert_eq!(
        s.on_ack(StrandId(0), &forged[..10], 1).unwrap(),
        AckVerdict::Dropped(DropReason::Malformed)
    );
    let other = Ack {
        stream: StreamId(1),
        cumulative: 1,
        echo: 0,
        sack: 0,
    }
    .encode(&key());
    assert_eq!(
        s.on_ack(StrandId(0), &other, 1).unwrap(),
        AckVerdict::Dropped(DropReason::WrongStream)
    );
    let mut data = Vec::new();
    Fragment::Data(Data {
        stream: S,
        seq: 0,
        fin: false,
        payload: b"x",
    })
    .encode(&key(), &mut data)
    .unwrap();
    assert_eq!(
        s.on_ack(StrandId(0), &data, 1).unwrap(),
        AckVerdict::Dropped(DropReason::UnexpectedKind)
    );
    let err = s.on_ack(StrandId(0), &ack(4, 0, 0), 1).unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol {
            violation: Violation::AckBeyondSent {
                cumulative: 4,
                sent: 3
            },
            ..
        }
    ));
    let err = s.on_ack(StrandId(0), &ack(0, 0, 0b100), 1).unwrap_err();
    assert!(matches!(
        err,
        Error::Protocol {
            violation: Violation::AckBeyondSent { .. },
            ..
        }
    ));
    // A selective ack frees nothing until the front is acked, and a replay is idempotent.
    assert_eq!(
        s.on_ack(StrandId(0), &ack(0, 2, 0b10), 9).unwrap(),
        AckVerdict::Accepted { newly_acked: 1 }
    );
    assert_eq!(
        s.on_ack(StrandId(0), &ack(0, 2, 0b10), 9).unwrap(),
        AckVerdict::Accepted { newly_acked: 0 }
    );
    assert_eq!(s.window_available(), (1 << 20) - 250);
    assert_eq!(
        s.on_ack(StrandId(0), &ack(2, 1, 0), 9).unwrap(),
        AckVerdict::Accepted { newly_acked: 2 }
    );
    assert_eq!(s.window_available(), 1 << 20);
    let d = s.stats().dropped;
    assert_eq!(
        (d.forged, d.malformed, d.wrong_stream, d.unexpected_kind),
        (1, 1, 1, 1)
    );
    // RTT sample from the echo of a first transmission on the same strand.
    assert!(s.strand_stats()[0].srtt_ms < 500.0);
}

#[test]
fn erasure_shards_go_to_distinct_strands() {
    let mut s = sender(&Config::default(), 3);
    assert!(
        s.write_message(&[3; 5000], ErasureParams::new(2, 3).unwrap())
            .unwrap()
    );
    let sent = drain(&mut s, 0);
    let mut strands: Vec<u32> = sent.iter().map(|x| x.0.0).collect();
    strands.sort_unstable();
    assert_eq!(strands, [0, 1, 2]);
    // Window full: nothing queued, no error.
    let mut s = sender(&config(2000, 4000, 64), 3);
    assert_eq!(s.write(&[0; 2000]).unwrap(), 2000);
    assert!(
        !s.write_message(&[1; 1500], ErasureParams::new(1, 2).unwrap())
            .unwrap()
    );
    assert!(matches!(
        s.write_message(&[1; 3000], ErasureParams::new(2, 3).unwrap()),
        Err(Error::MessageTooLong { len: 3000, .. })
    ));
}

#[test]
fn short_writes_are_coded_over_the_strands_only_when_idle() {
    let cfg = config(1000, 100_000, 64);
    // Idle, three strands: 2 of 3 shards, one per strand.
    let mut s = sender(&cfg, 3);
    assert_eq!(s.write_short(&[5; 300], 4096).unwrap(), 300);
    let sent = drain(&mut s, 0);
    let mut strands: Vec<u32> = sent.iter().map(|x| x.0.0).collect();
    strands.sort_unstable();
    assert_eq!(strands, [0, 1, 2]);
    for (_, _, bytes) in &sent {
        let shard = open(&key(), bytes).unwrap();
        assert!(
            matches!(shard, Fragment::Erasure(Shard { k: 2, n: 3, .. })),
            "{shard:?}"
        );
    }
    // Not idle (those shards are unacknowledged): plain data.
    assert_eq!(s.write_short(&[6; 300], 4096).unwrap(), 300);
    let sent = drain(&mut s, 0);
    assert_eq!(sent.len(), 1);
    assert!(matches!(
        open(&key(), &sent[0].2).unwrap(),
        Fragment::Data(_)
    ));

    // Longer than `max_len`, or than k payloads: plain data.
    let mut s = sender(&cfg, 3);
    assert_eq!(s.write_short(&[7; 301], 300).unwrap(), 301);
    assert!(matches!(
        open(&key(), &drain(&mut s, 0)[0].2).unwrap(),
        Fragment::Data(_)
    ));
    let mut s = sender(&cfg, 3);
    let too_long = 2 * (1000 - ERASURE_HEADER_LEN) + 2;
    assert_eq!(
        s.write_short(&vec![8; too_long], 1 << 20).unwrap(),
        too_long
    );
    assert!(
        drain(&mut s, 0)
            .iter()
            .all(|f| matches!(open(&key(), &f.2).unwrap(), Fragment::Data(_)))
    );

    // One strand, or one left after a failure: nothing to spread over.
    let mut s = sender(&cfg, 1);
    assert_eq!(s.write_short(&[9; 10], 4096).unwrap(), 10);
    assert!(matches!(
        open(&key(), &drain(&mut s, 0)[0].2).unwrap(),
        Fragment::Data(_)
    ));
    let mut s = sender(&cfg, 2);
    s.on_strand_failed(StrandId(0));
    assert_eq!(s.write_short(&[9; 10], 4096).unwrap(), 10);
    assert!(matches!(
        open(&key(), &drain(&mut s, 0)[0].2).unwrap(),
        Fragment::Data(_)
    ));
    // Two strands: each gets a whole copy (k = 1).
    let mut s = sender(&cfg, 2);
    assert_eq!(s.write_short(&[9; 10], 4096).unwrap(), 10);
    let sent = drain(&mut s, 0);
    assert_eq!(sent.len(), 2);
    assert!(matches!(
        open(&key(), &sent[0].2).unwrap(),
        Fragment::Erasure(Shard { k: 1, n: 2, .. })
    ));
}
