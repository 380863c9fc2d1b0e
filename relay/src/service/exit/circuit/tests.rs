#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

//! Each message kind against the circuit's stream table, with real channels and messages.
//! Plain streams here target addresses the exit policy rejects, so no socket is opened.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use braid_directory::ExitPolicy;
use tokio::sync::mpsc::error::TryRecvError;

use super::*;
use crate::service::exit::tests::context;

/// A circuit with room for `max_streams` streams, and the client's end of its queue.
fn circuit(max_streams: usize) -> (ExitCircuit, mpsc::Receiver<RelayMsg>) {
    let (tx, rx) = mpsc::channel(8);
    let ctx = context(ExitPolicy::reject_all(), max_streams);
    (ExitCircuit::new(ctx, tx, 400), rx)
}

fn begin(stream: u16) -> RelayMsg {
    RelayMsg::Begin {
        stream: StreamId(stream),
        target: Target::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 9))),
    }
}

fn begin_braid(stream: u16, secret: u8) -> RelayMsg {
    RelayMsg::BeginBraid {
        stream: StreamId(stream),
        secret: [secret; 32],
        target: Target::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 9))),
    }
}

fn link(stream: u16, link: u8, quiet: bool) -> RelayMsg {
    RelayMsg::Link {
        stream: StreamId(stream),
        link: [link; 32],
        quiet,
    }
}

fn end(stream: u16, reason: EndReason) -> RelayMsg {
    RelayMsg::End {
        stream: StreamId(stream),
        reason,
    }
}

/// A strand entry whose engine's end of the events is `events`.
fn strand(strand: u32) -> (StreamEntry, mpsc::Receiver<StrandEvent>) {
    let (tx, rx) = mpsc::channel(8);
    let entry = StreamEntry::Strand {
        strand: StrandId(strand),
        events: tx,
    };
    (entry, rx)
}

fn down(event: StrandEvent) -> (u32, Option<EndReason>) {
    match event {
        StrandEvent::Down { strand, ended } => (strand.0, ended),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn opening_messages_over_the_stream_limit_are_answered_with_an_end() {
    let (mut c, mut rx) = circuit(0);
    assert_eq!(c.on_message(begin(1)).await, Step::Continue);
    assert_eq!(rx.try_recv().unwrap(), end(1, EndReason::Limit));
    assert_eq!(c.on_message(begin_braid(2, 9)).await, Step::Continue);
    assert_eq!(rx.try_recv().unwrap(), end(2, EndReason::Limit));
    assert_eq!(c.on_message(link(3, 9, true)).await, Step::Continue);
    assert_eq!(rx.try_recv().unwrap(), end(3, EndReason::Misc));
    assert!(c.streams.is_empty());
    // Nothing else changed: the braided stream did not begin, and no strand joined `[9; 32]`.
    assert!(c.ctx.braids.begin(link_id(&[9; 32])).is_ok());
    let (_tx, mut events) = c.ctx.braids.begin([9; 32]).unwrap();
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn a_stream_id_in_use_closes_the_circuit() {
    let (mut c, _rx) = circuit(4);
    assert_eq!(c.on_message(begin(1)).await, Step::Continue);
    let protocol = Step::Close(Outcome::Protocol);
    assert_eq!(c.on_message(begin(1)).await, protocol);
    assert_eq!(c.on_message(begin_braid(1, 1)).await, protocol);
    assert_eq!(c.on_message(link(1, 1, false)).await, protocol);
}

#[tokio::test]
async fn only_the_exit_sends_connected_and_linked() {
    let (mut c, _rx) = circuit(4);
    let stream = StreamId(1);
    let protocol = Step::Close(Outcome::Protocol);
    assert_eq!(c.on_message(RelayMsg::Connected { stream }).await, protocol);
    assert_eq!(c.on_message(RelayMsg::Linked { stream }).await, protocol);
}

#[tokio::test]
async fn unknown_commands_are_ignored() {
    let (mut c, mut rx) = circuit(4);
    let stream = StreamId(1);
    let unknown = RelayMsg::Unknown {
        command: 200,
        stream,
    };
    assert_eq!(c.on_message(unknown).await, Step::Continue);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[tokio::test]
async fn a_finished_stream_task_frees_its_place() {
    let (mut c, mut rx) = circuit(1);
    assert_eq!(c.on_message(begin(1)).await, Step::Continue);
    // The policy rejects the target: the stream's task ends it, then reports it done.
    assert_eq!(rx.recv().await.unwrap(), end(1, EndReason::ExitPolicy));
    tokio::time::timeout(Duration::from_secs(5), async {
        while !c.streams.is_empty() {
            tokio::task::yield_now().await;
            c.forget_finished();
        }
    })
    .await
    .unwrap();
    assert_eq!(c.on_message(begin(2)).await, Step::Continue);
    assert!(c.streams.contains_key(&StreamId(2)));
}

#[tokio::test]
async fn strands_of_ended_braided_streams_no_longer_count() {
    let (mut c, _rx) = circuit(1);
    let (entry, events) = strand(0);
    c.streams.insert(StreamId(1), entry);
    c.forget_finished();
    assert_eq!(c.streams.len(), 1);
    drop(events);
    c.forget_finished();
    assert!(c.streams.is_empty());
}

#[tokio::test]
async fn a_begin_braid_whose_link_id_already_began_is_answered_misc() {
    let (mut c, mut rx) = circuit(4);
    let _begun = c.ctx.braids.begin(link_id(&[5; 32])).unwrap();
    assert_eq!(c.on_message(begin_braid(1, 5)).await, Step::Continue);
    assert_eq!(rx.try_recv().unwrap(), end(1, EndReason::Misc));
    assert!(c.streams.is_empty());
}

#[tokio::test]
async fn a_link_joins_and_is_answered_linked_unless_quiet() {
    let (mut c, mut rx) = circuit(4);
    assert_eq!(c.on_message(link(1, 6, false)).await, Step::Continue);
    assert_eq!(
        rx.try_recv().unwrap(),
        RelayMsg::Linked {
            stream: StreamId(1)
        }
    );
    assert_eq!(c.on_message(link(2, 6, true)).await, Step::Continue);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    assert_eq!(c.streams.len(), 2);
    // Both wait in the braided stream's slot for its `BeginBraid`.
    let (_tx, mut events) = c.ctx.braids.begin([6; 32]).unwrap();
    for (strand, stream) in [(1, 1), (2, 2)] {
        match events.try_recv().unwrap() {
            StrandEvent::Up { strand: s, link } => {
                assert_eq!((s, link.stream), (StrandId(strand), StreamId(stream)));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn data_goes_to_its_stream_and_a_gone_stream_is_forgotten() {
    let (mut c, _rx) = circuit(4);
    let (entry, mut events) = strand(3);
    c.streams.insert(StreamId(1), entry);
    let data = Bytes::from_static(b"fragment");
    let msg = RelayMsg::Data {
        stream: StreamId(1),
        data: data.clone(),
    };
    assert_eq!(c.on_message(msg.clone()).await, Step::Continue);
    match events.try_recv().unwrap() {
        StrandEvent::Fragment { strand, bytes } => {
            assert_eq!((strand, &bytes[..]), (StrandId(3), &data[..]));
        }
        other => panic!("{other:?}"),
    }
    drop(events);
    assert_eq!(c.on_message(msg).await, Step::Continue);
    assert!(c.streams.is_empty());

    let (tx, rx) = mpsc::channel(1);
    drop(rx);
    let task = tokio::spawn(async {});
    c.streams
        .insert(StreamId(2), StreamEntry::Plain { tx, task });
    let msg = RelayMsg::Data {
        stream: StreamId(2),
        data,
    };
    assert_eq!(c.on_message(msg).await, Step::Continue);
    assert!(c.streams.is_empty());
}

#[tokio::test]
async fn eof_half_closes_a_plain_stream() {
    let (mut c, _rx) = circuit(4);
    let (tx, mut rx) = mpsc::channel(1);
    let task = tokio::spawn(async {});
    c.streams
        .insert(StreamId(1), StreamEntry::Plain { tx, task });
    let eof = RelayMsg::Eof {
        stream: StreamId(1),
    };
    assert_eq!(c.on_message(eof).await, Step::Continue);
    assert!(matches!(rx.try_recv(), Ok(StreamCmd::Eof)));
    assert_eq!(c.streams.len(), 1);
}

#[tokio::test]
async fn end_drops_the_stream_and_close_drops_them_all() {
    let (mut c, _rx) = circuit(4);
    let (first, mut first_events) = strand(1);
    let (second, mut second_events) = strand(2);
    c.streams.insert(StreamId(1), first);
    c.streams.insert(StreamId(2), second);
    let msg = end(1, EndReason::Done);
    assert_eq!(c.on_message(msg).await, Step::Continue);
    assert_eq!(c.streams.len(), 1);
    assert_eq!(
        down(first_events.try_recv().unwrap()),
        (1, Some(EndReason::Done))
    );
    // The circuit is gone: the strand's stream may replace it.
    c.close();
    assert_eq!(down(second_events.try_recv().unwrap()), (2, None));
}

#[tokio::test]
async fn answers_to_a_client_that_has_gone_close_the_circuit() {
    let (mut c, rx) = circuit(0);
    drop(rx);
    assert_eq!(c.on_message(begin(1)).await, Step::Close(Outcome::Closed));
}
