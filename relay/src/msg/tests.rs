use super::*;

fn round_trip(m: RelayMsg) {
    let mut buf = vec![0xffu8; 200];
    m.encode_into(&mut buf).expect("encode");
    assert_eq!(RelayMsg::decode(&buf).expect("decode"), m);
}

#[test]
fn round_trips() {
    let s = StreamId(7);
    round_trip(RelayMsg::Begin {
        stream: s,
        target: Target::Domain("localhost".into(), 8080),
    });
    round_trip(RelayMsg::Begin {
        stream: s,
        target: Target::Ip("[::1]:443".parse().expect("addr")),
    });
    round_trip(RelayMsg::Begin {
        stream: s,
        target: Target::Ip("10.1.2.3:80".parse().expect("addr")),
    });
    round_trip(RelayMsg::Connected { stream: s });
    round_trip(RelayMsg::Data {
        stream: s,
        data: b"GET /".to_vec().into(),
    });
    round_trip(RelayMsg::Eof { stream: s });
    round_trip(RelayMsg::End {
        stream: s,
        reason: EndReason::Refused,
    });
    round_trip(RelayMsg::Unknown {
        command: 99,
        stream: s,
    });
}

#[test]
fn begin_test_vector() {
    let mut buf = [0u8; 24];
    RelayMsg::Begin {
        stream: StreamId(1),
        target: Target::Domain("a.b".into(), 80),
    }
    .encode_into(&mut buf)
    .expect("encode");
    assert_eq!(
        hex::encode(buf),
        "0101000100070303612e6200500000000000000000000000"
    );
}

fn encoded(m: &RelayMsg, len: usize) -> String {
    let mut buf = vec![0xffu8; len];
    m.encode_into(&mut buf).expect("encode");
    assert_eq!(RelayMsg::decode(&buf).as_ref(), Ok(m));
    hex::encode(buf)
}

#[test]
fn more_test_vectors() {
    let s = StreamId(1);
    let v4 = Target::Ip("10.1.2.3:80".parse().expect("addr"));
    assert_eq!(
        encoded(
            &RelayMsg::Begin {
                stream: s,
                target: v4
            },
            13
        ),
        "010100010007010a0102030050"
    );
    let v6 = Target::Ip("[::1]:443".parse().expect("addr"));
    assert_eq!(
        encoded(
            &RelayMsg::Begin {
                stream: s,
                target: v6
            },
            25
        ),
        "010100010013040000000000000000000000000000000101bb"
    );
    assert_eq!(
        encoded(&RelayMsg::Connected { stream: s }, 8),
        "0102000100000000"
    );
    let data = RelayMsg::Data {
        stream: StreamId(2),
        data: b"hi".to_vec().into(),
    };
    assert_eq!(encoded(&data, 10), "01030002000268690000");
    assert_eq!(
        encoded(
            &RelayMsg::Eof {
                stream: StreamId(2)
            },
            6
        ),
        "010400020000"
    );
    let end = RelayMsg::End {
        stream: StreamId(5),
        reason: EndReason::Refused,
    };
    assert_eq!(encoded(&end, 8), "0105000500010300");
}

#[test]
fn braid_messages() {
    let s = StreamId(3);
    round_trip(RelayMsg::BeginBraid {
        stream: s,
        secret: [7; 32],
        target: Target::Domain("localhost".into(), 80),
    });
    for quiet in [false, true] {
        round_trip(RelayMsg::Link {
            stream: s,
            link: [9; 32],
            quiet,
        });
    }
    round_trip(RelayMsg::Linked { stream: s });
    let begin = RelayMsg::BeginBraid {
        stream: StreamId(1),
        secret: [0xab; 32],
        target: Target::Ip("10.1.2.3:80".parse().expect("addr")),
    };
    assert_eq!(
        encoded(&begin, 45),
        format!("010600010027{}010a0102030050", "ab".repeat(32))
    );
    let mut link = RelayMsg::Link {
        stream: StreamId(2),
        link: [0x11; 32],
        quiet: false,
    };
    assert_eq!(
        encoded(&link, 38),
        format!("010700020020{}", "11".repeat(32))
    );
    if let RelayMsg::Link { quiet, .. } = &mut link {
        *quiet = true;
    }
    assert_eq!(
        encoded(&link, 39),
        format!("010700020021{}01", "11".repeat(32))
    );
    assert_eq!(encoded(&RelayMsg::Linked { stream: s }, 6), "010800030000");
}

#[test]
fn braid_messages_reject_bad_lengths() {
    // A link id one byte short, two bytes long; a secret with no target; linked with data.
    for (cmd, len) in [(7u8, 31usize), (7, 34), (6, 32), (6, 10), (8, 1)] {
        let mut buf = vec![0u8; 6 + len];
        buf[0] = MSG_VERSION;
        buf[1] = cmd;
        buf[3] = 1;
        buf[4..6].copy_from_slice(&(len as u16).to_be_bytes());
        for b in &mut buf[6..] {
            *b = 1;
        }
        assert!(
            matches!(RelayMsg::decode(&buf), Err(CellError::Malformed { .. })),
            "cmd {cmd} len {len}"
        );
    }
    // A link flag byte other than 0x01 (0x00 too: one encoding per message).
    for flag in [0u8, 2, 0x81] {
        let mut buf = vec![MSG_VERSION, 7, 0, 1, 0, 33];
        buf.extend_from_slice(&[5; 32]);
        buf.push(flag);
        assert!(
            matches!(RelayMsg::decode(&buf), Err(CellError::Malformed { .. })),
            "flag {flag}"
        );
    }
    // No room for the secret.
    let begin = RelayMsg::BeginBraid {
        stream: StreamId(1),
        secret: [0; 32],
        target: Target::Domain("a".into(), 1),
    };
    let mut small = [0u8; 30];
    assert!(begin.encode_into(&mut small).is_err());
}

#[test]
fn end_reason_bytes_round_trip() {
    for b in 0..=255u8 {
        assert_eq!(EndReason::from_byte(b).to_byte(), b);
    }
    assert_eq!(EndReason::ExitPolicy.to_byte(), 2);
    assert_eq!(EndReason::Limit.to_byte(), 7);
}

#[test]
fn every_prefix_of_header_is_incomplete() {
    let mut buf = [0u8; 16];
    RelayMsg::Connected {
        stream: StreamId(3),
    }
    .encode_into(&mut buf)
    .expect("encode");
    for n in 0..MSG_HEADER_LEN {
        assert!(matches!(
            RelayMsg::decode(&buf[..n]),
            Err(CellError::Incomplete { .. })
        ));
    }
}

#[test]
fn rejects() {
    let mut buf = [0u8; 32];
    RelayMsg::Data {
        stream: StreamId(3),
        data: vec![1, 2, 3].into(),
    }
    .encode_into(&mut buf)
    .expect("encode");
    let mut bad = buf;
    bad[0] = 9;
    assert_eq!(RelayMsg::decode(&bad), Err(CellError::BadVersion(9)));
    let mut bad = buf;
    bad[20] = 1;
    assert_eq!(
        RelayMsg::decode(&bad),
        Err(CellError::Malformed {
            what: "message padding"
        })
    );
    let mut bad = buf;
    bad[5] = 200;
    assert_eq!(
        RelayMsg::decode(&bad),
        Err(CellError::Malformed {
            what: "message length"
        })
    );
    let mut bad = buf;
    bad[3] = 0;
    assert_eq!(
        RelayMsg::decode(&bad),
        Err(CellError::Malformed {
            what: "stream id 0"
        })
    );
    assert!(matches!(
        decode_target(&[3, 2, b'a', b' ', 0, 80]),
        Err(CellError::Malformed { .. })
    ));
    assert!(matches!(
        decode_target(&[9, 1, 2]),
        Err(CellError::Malformed { .. })
    ));
    assert!(validate_domain(&[b'a'; 256]).is_err());
    assert!(validate_domain(b"").is_err());
}

#[test]
fn empty_data_rejected_both_ways() {
    let mut buf = [0u8; 32];
    assert!(
        RelayMsg::Data {
            stream: StreamId(1),
            data: vec![].into()
        }
        .encode_into(&mut buf)
        .is_err()
    );
}

#[test]
fn encode_rejects_what_decode_would_reject() {
    let end = RelayMsg::End {
        stream: StreamId(1),
        reason: EndReason::Done,
    };
    assert!(end.encode_into(&mut [0u8; MSG_HEADER_LEN]).is_err());
    let zero = RelayMsg::Eof {
        stream: StreamId(0),
    };
    assert!(zero.encode_into(&mut [0u8; 16]).is_err());
    let huge = RelayMsg::Data {
        stream: StreamId(1),
        data: vec![1; 65_600].into(),
    };
    assert!(huge.encode_into(&mut vec![0u8; 70_000]).is_err());
}

#[test]
fn redaction_hides_host() {
    let t = Target::Domain("secret.example".into(), 443);
    assert_eq!(t.redacted(), "[redacted]:443");
}

#[test]
fn truncated_fields_name_themselves() {
    let malformed = |what| Err(CellError::Malformed { what });
    assert_eq!(decode_target(&[]), malformed("empty target"));
    assert_eq!(decode_target(&[1, 10, 1]), malformed("target length"));
    assert_eq!(
        decode_target(&[1, 10, 1, 2, 3, 0, 80, 9]),
        malformed("target length")
    );
    assert_eq!(decode_target(&[3]), malformed("domain length"));
    assert_eq!(decode_target(&[3, 5, b'a']), malformed("domain"));
    assert_eq!(decode_target(&[3, 1, b'a', 0]), malformed("target length"));
    // An End message with no reason byte, and one with two.
    let end = |len: u8| {
        let mut buf = vec![MSG_VERSION, 5, 0, 1, 0, len];
        buf.extend(std::iter::repeat_n(1, usize::from(len)));
        RelayMsg::decode(&buf)
    };
    assert_eq!(end(0), Err(CellError::Malformed { what: "end" }));
    assert_eq!(end(2), Err(CellError::Malformed { what: "end" }));
    // A header cut short is incomplete by exactly what the header lacks.
    assert_eq!(
        RelayMsg::decode(&[MSG_VERSION, 3]),
        Err(CellError::Incomplete {
            needed: MSG_HEADER_LEN - 2
        })
    );
}

#[test]
fn begin_measure_vector_and_rejects() {
    let m = RelayMsg::BeginMeasure {
        stream: StreamId(1),
    };
    assert_eq!(encoded(&m, 6), "010900010000");
    assert_eq!(encoded(&m, 8), "0109000100000000");
    round_trip(m);
    // Every strict prefix of the header is incomplete.
    let whole = hex::decode("010900010000").expect("hex");
    for n in 0..whole.len() {
        assert!(matches!(
            RelayMsg::decode(&whole[..n]),
            Err(CellError::Incomplete { .. })
        ));
    }
    // BeginMeasure carries no data; stream 0 is reserved.
    let with_data = hex::decode("01090001000100").expect("hex");
    assert!(matches!(
        RelayMsg::decode(&with_data),
        Err(CellError::Malformed { .. })
    ));
    let stream_zero = hex::decode("010900000000").expect("hex");
    assert_eq!(
        RelayMsg::decode(&stream_zero),
        Err(CellError::Malformed {
            what: "stream id 0"
        })
    );
}
