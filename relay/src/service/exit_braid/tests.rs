#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use super::*;

/// A strand's `Up` whose circuit queue is `circuit`.
fn up(strand: u32, stream: u16, circuit: &mpsc::Sender<RelayMsg>) -> StrandEvent {
    StrandEvent::Up {
        strand: StrandId(strand),
        link: StrandLink {
            tx: circuit.clone(),
            stream: StreamId(stream),
        },
    }
}

fn up_strand(event: StrandEvent) -> u32 {
    match event {
        StrandEvent::Up { strand, .. } => strand.0,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_link_that_comes_first_waits_for_its_begin() {
    let table = BraidTable::new(4);
    let (circuit, _rx) = mpsc::channel(8);
    let (id, events) = table.join(&[1; 32]).unwrap();
    assert_eq!(id, StrandId(1));
    events.try_send(up(1, 5, &circuit)).unwrap();
    assert_eq!(table.join(&[1; 32]).unwrap().0, StrandId(2));
    let (_tx, mut rx) = table.begin([1; 32]).unwrap();
    assert_eq!(up_strand(rx.try_recv().unwrap()), 1);
    // Begun once: a repeated or replayed `BeginBraid` is refused and changes nothing.
    assert_eq!(table.begin([1; 32]).err(), Some(BeginRefused::Taken));
    assert_eq!(table.join(&[1; 32]).unwrap().0, StrandId(3));
    assert_eq!(table.len(), 1);
}

#[test]
fn links_after_the_begin_join_in_order_up_to_the_strand_limit() {
    let table = BraidTable::new(4);
    let (_tx, _rx) = table.begin([2; 32]).unwrap();
    for i in 1..MAX_STRANDS {
        assert_eq!(table.join(&[2; 32]).unwrap().0, StrandId(u32::from(i)));
    }
    assert!(table.join(&[2; 32]).is_none());
    table.remove(&[2; 32]);
    assert_eq!(table.len(), 0);
}

#[test]
fn a_full_table_refuses_begins_and_early_links() {
    let table = BraidTable::new(1);
    let (_tx, _rx) = table.begin([3; 32]).unwrap();
    assert_eq!(table.begin([4; 32]).err(), Some(BeginRefused::Full));
    assert!(table.join(&[4; 32]).is_none());
    assert_eq!(table.len(), 1);
}

#[test]
fn early_links_whose_begin_never_comes_are_ended() {
    let mut table = BraidTable::new(4);
    table.ttl = Duration::ZERO;
    let (circuit, mut at_circuit) = mpsc::channel(8);
    let (_, events) = table.join(&[5; 32]).unwrap();
    events.try_send(up(1, 7, &circuit)).unwrap();
    // The next use of the table sweeps the expired slot: its strand gets an `End`, and its
    // circuit's entry sees the queue closed.
    let (_tx, _rx) = table.begin([6; 32]).unwrap();
    assert_eq!(
        at_circuit.try_recv().unwrap(),
        RelayMsg::End {
            stream: StreamId(7),
            reason: EndReason::Misc,
        }
    );
    assert!(events.is_closed());
    assert_eq!(table.len(), 1);
    // A begun stream is never swept.
    assert!(table.join(&[6; 32]).is_some());
    assert_eq!(table.len(), 1);
}

#[test]
fn an_abandoned_stream_ends_its_early_links() {
    let table = BraidTable::new(4);
    let (circuit, mut at_circuit) = mpsc::channel(8);
    let (_, events) = table.join(&[8; 32]).unwrap();
    events.try_send(up(1, 9, &circuit)).unwrap();
    let (_tx, rx) = table.begin([8; 32]).unwrap();
    table.remove(&[8; 32]);
    end_links(rx);
    assert!(matches!(
        at_circuit.try_recv().unwrap(),
        RelayMsg::End {
            stream: StreamId(9),
            ..
        }
    ));
    assert_eq!(table.len(), 0);
}
