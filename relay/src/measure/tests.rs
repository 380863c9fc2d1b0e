use std::time::Duration;

use bytes::Bytes;

use super::*;

const S: StreamId = StreamId(1);

fn data(stream: StreamId, len: usize) -> RelayMsg {
    RelayMsg::Data {
        stream,
        data: Bytes::from(vec![7u8; len]),
    }
}

#[test]
fn echoes_data_of_the_open_stream_only() {
    let mut e = Echo::new();
    // Data before BeginMeasure is dropped.
    assert_eq!(e.on_message(data(S, 10)), EchoAction::Nothing);
    assert_eq!(
        e.on_message(RelayMsg::BeginMeasure { stream: S }),
        EchoAction::Nothing
    );
    assert_eq!(e.on_message(data(S, 10)), EchoAction::Send(data(S, 10)));
    assert_eq!(e.on_message(data(StreamId(2), 10)), EchoAction::Nothing);
    assert_eq!(e.echoed(), 10);
    assert_eq!(
        e.on_message(RelayMsg::Eof { stream: S }),
        EchoAction::Send(RelayMsg::Eof { stream: S })
    );
    assert!(e.is_done());
    assert_eq!(e.on_message(data(S, 10)), EchoAction::Nothing);
}

#[test]
fn a_second_measurement_is_refused() {
    let mut e = Echo::new();
    assert_eq!(
        e.on_message(RelayMsg::BeginMeasure { stream: S }),
        EchoAction::Nothing
    );
    let again = StreamId(3);
    assert_eq!(
        e.on_message(RelayMsg::BeginMeasure { stream: again }),
        EchoAction::Send(RelayMsg::End {
            stream: again,
            reason: EndReason::Limit
        })
    );
}

#[test]
fn bytes_past_the_bound_end_the_stream() {
    let mut e = Echo::new();
    let _ = e.on_message(RelayMsg::BeginMeasure { stream: S });
    let chunk = 4000usize;
    let fits = MEASURE_MAX_BYTES / chunk as u64;
    for _ in 0..fits {
        assert_eq!(
            e.on_message(data(S, chunk)),
            EchoAction::Send(data(S, chunk))
        );
    }
    assert_eq!(
        e.on_message(data(S, chunk)),
        EchoAction::Send(RelayMsg::End {
            stream: S,
            reason: EndReason::Limit
        })
    );
    assert_eq!(e.echoed(), fits * chunk as u64);
    assert!(e.echoed() <= MEASURE_MAX_BYTES);
    assert_eq!(e.on_message(data(S, 1)), EchoAction::Nothing);
}

#[test]
fn exit_requests_are_violations() {
    let mut e = Echo::new();
    let target = crate::msg::Target::Domain("a.b".into(), 80);
    let begin = RelayMsg::Begin {
        stream: S,
        target: target.clone(),
    };
    assert_eq!(e.on_message(begin), EchoAction::Violation);
    let link = RelayMsg::Link {
        stream: S,
        link: [0; 32],
        quiet: false,
    };
    assert_eq!(e.on_message(link), EchoAction::Violation);
    let unknown = RelayMsg::Unknown {
        command: 0x77,
        stream: S,
    };
    assert_eq!(e.on_message(unknown), EchoAction::Nothing);
}

#[test]
fn payloads_differ_by_key_and_index() {
    let a = payload(&[1; 32], 0, 64);
    assert_eq!(a, payload(&[1; 32], 0, 64));
    assert_ne!(a, payload(&[1; 32], 1, 64));
    assert_ne!(a, payload(&[2; 32], 0, 64));
    assert_eq!(cells_for(4072 * 3 + 1, 4072), 4);
    assert_eq!(cells_for(4072, 4072), 1);
}

#[test]
fn the_rate_is_taken_over_the_second_half() {
    // 8 cells; the first 4 echoes come in a burst, then one every 10 ms.
    let mut m = Meter::new(8);
    for k in 1..=4u64 {
        m.on_echo(Duration::from_millis(k));
    }
    assert_eq!(m.rate(), None);
    for k in 1..=4u64 {
        m.on_echo(Duration::from_millis(4 + 10 * k));
    }
    assert!(m.complete());
    // 4 cells, both directions, in 40 ms.
    let expected = 2 * CELL_LEN as u64 * 4 * 1000 / 40;
    assert_eq!(m.rate(), Some(expected));
}

#[test]
fn one_cell_uses_the_whole_transfer() {
    let mut m = Meter::new(1);
    m.on_echo(Duration::from_millis(100));
    assert_eq!(m.rate(), Some(2 * CELL_LEN as u64 * 10));
}
