//! Hex test vectors for SOCKS4 and SOCKS4a requests through the SOCKS port's [`Handshake`]:
//! every accepted form, every strict prefix, every reject path with its reply.

use std::net::SocketAddr;

use super::*;
use crate::socks5::{Action, Handshake};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// SOCKS4 CONNECT 127.0.0.1:80, empty user id.
const CONNECT_V4: &str = "04 01 0050 7f000001 00";
/// SOCKS4a CONNECT example.com:443, user id "alice".
const CONNECT_4A: &str = "04 01 01bb 00000001 616c696365 00 6578616d706c652e636f6d 00";
/// SOCKS4a CONNECT with an IPv4 literal as the host name: 10.1.2.3:8080.
const CONNECT_4A_LITERAL: &str = "04 01 1f90 000000ff 00 31302e312e322e33 00";
/// The reply for every refusal: `00 5B`, port and address zero.
const REJECTED_REPLY: &str = "00 5b 0000 00000000";

/// Feeds `bytes` whole to a fresh handshake.
fn handle(bytes: &[u8]) -> (usize, Action) {
    Handshake::new().handle(bytes)
}

fn done(hex: &str) -> SocksRequest {
    let bytes = h(hex);
    match handle(&bytes) {
        (consumed, Action::Done(request)) => {
            assert_eq!(consumed, bytes.len(), "{hex} consumed whole");
            request
        }
        other => panic!("{hex}: expected Done, got {other:?}"),
    }
}

fn fail(bytes: &[u8]) -> (Option<Vec<u8>>, SocksError) {
    match handle(bytes) {
        (0, Action::Fail { reply, error }) => (reply, error),
        other => panic!("expected Fail, got {other:?}"),
    }
}

#[test]
fn socks4_connect_to_an_ipv4_address() {
    let request = done(CONNECT_V4);
    assert_eq!(request.protocol, Protocol::Socks4);
    assert_eq!(request.command, Command::Connect);
    assert_eq!(
        request.target,
        TargetAddr::Ip("127.0.0.1:80".parse().unwrap())
    );
    assert_eq!(request.isolation, IsolationKey::default(), "no user id");
}

#[test]
fn socks4a_connect_passes_the_name_on() {
    let request = done(CONNECT_4A);
    assert_eq!(request.protocol, Protocol::Socks4);
    assert_eq!(
        request.target,
        TargetAddr::Domain("example.com".into(), 443),
        "the name is passed on, not resolved"
    );
    assert_eq!(
        request.isolation,
        IsolationKey(b"\x05alice\x00".to_vec()),
        "the user id isolates like a SOCKS5 username with an empty password"
    );
    let literal = done(CONNECT_4A_LITERAL);
    assert_eq!(
        literal.target,
        TargetAddr::Ip("10.1.2.3:8080".parse().unwrap())
    );
}

#[test]
fn every_strict_prefix_needs_more_and_hint_never_overshoots() {
    for hex in [
        CONNECT_V4,
        CONNECT_4A,
        CONNECT_4A_LITERAL,
        "04 02 0050 00000001 00 6100",
    ] {
        let full = h(hex);
        for cut in 0..full.len() {
            match handle(&full[..cut]) {
                (0, Action::NeedMore { at_least }) => {
                    assert!(at_least >= 1, "{hex} cut at {cut}");
                    assert!(
                        cut + at_least <= full.len(),
                        "{hex} cut at {cut} overshoots"
                    );
                }
                other => panic!("{hex} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn reading_exactly_the_hint_leaves_early_data_unread() {
    let stream = h(&[CONNECT_4A, "474554"].join(""));
    let mut hs = Handshake::new();
    let mut read = 0;
    loop {
        match hs.handle(&stream[..read]) {
            (0, Action::NeedMore { at_least }) => read += at_least,
            (consumed, Action::Done(request)) => {
                assert_eq!(consumed, read);
                assert_eq!(
                    request.target,
                    TargetAddr::Domain("example.com".into(), 443)
                );
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(&stream[read..], b"GET", "early data left unread");
}

#[test]
fn bind_and_unknown_commands_are_refused_with_5b_after_the_whole_request() {
    for (hex, command) in [
        ("04 02 0050 7f000001 00", 2),
        ("04 02 0050 00000001 6200 6578616d706c652e636f6d 00", 2),
        ("04 09 0050 7f000001 00", 9),
    ] {
        let bytes = h(hex);
        let (reply, error) = fail(&bytes);
        assert_eq!(reply, Some(h(REJECTED_REPLY)), "{hex}");
        assert!(
            matches!(error, SocksError::UnsupportedCommand(c) if c == command),
            "{hex}: {error}"
        );
        // One byte short, the request is not refused yet: it is read to the end first.
        assert!(matches!(
            handle(&bytes[..bytes.len() - 1]).1,
            Action::NeedMore { at_least: 1 }
        ));
    }
}

#[test]
fn bad_targets_are_refused_with_5b() {
    type Kind = fn(&SocksError) -> bool;
    let cases: [(&str, Kind); 4] = [
        ("04 01 0050 00000000 00", |e| {
            matches!(e, SocksError::UnspecifiedAddress)
        }),
        ("04 01 0050 00000001 00 00", |e| {
            matches!(e, SocksError::BadDomain { .. })
        }),
        ("04 01 0050 00000001 00 612062 00", |e| {
            matches!(e, SocksError::BadDomain { .. })
        }),
        ("04 01 0050 00000001 00 c3a9 00", |e| {
            matches!(e, SocksError::BadDomain { .. })
        }),
    ];
    for (hex, kind) in cases {
        let (reply, error) = fail(&h(hex));
        assert_eq!(reply, Some(h(REJECTED_REPLY)), "{hex}");
        assert!(kind(&error), "{hex}: {error:?}");
    }
}

#[test]
fn user_id_and_host_name_are_bounded() {
    // A user id of exactly MAX_USERID_LEN bytes is accepted.
    let mut at_limit = h("04 01 0050 7f000001");
    at_limit.extend([b'u'; MAX_USERID_LEN]);
    at_limit.push(0);
    assert!(matches!(handle(&at_limit).1, Action::Done(_)));
    // One more byte without a NUL fails at once, before any NUL arrives.
    let mut over = h("04 01 0050 7f000001");
    over.extend([b'u'; MAX_USERID_LEN + 1]);
    let (reply, error) = fail(&over);
    assert_eq!(reply, Some(h(REJECTED_REPLY)));
    assert!(
        matches!(
            error,
            SocksError::FieldTooLong {
                field: "SOCKS4 user id",
                limit: MAX_USERID_LEN
            }
        ),
        "{error}"
    );
    assert!(matches!(
        handle(&over[..over.len() - 1]).1,
        Action::NeedMore { at_least: 1 }
    ));

    // The longest request there is: both fields at their limits.
    let mut longest = h("04 01 0050 00000001");
    longest.extend([b'u'; MAX_USERID_LEN]);
    longest.push(0);
    longest.extend([b'a'; MAX_HOSTNAME_LEN]);
    longest.push(0);
    assert_eq!(longest.len(), MAX_REQUEST_LEN);
    let (consumed, action) = handle(&longest);
    assert_eq!(consumed, MAX_REQUEST_LEN);
    assert!(
        matches!(action, Action::Done(r) if r.target == TargetAddr::Domain("a".repeat(255), 80))
    );
    let mut long_name = h("04 01 0050 00000001 00");
    long_name.extend([b'a'; MAX_HOSTNAME_LEN + 1]);
    let (_, error) = fail(&long_name);
    assert!(
        matches!(
            error,
            SocksError::FieldTooLong {
                field: "SOCKS4a host name",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn reply_vectors() {
    assert_eq!(encode_reply(ReplyCode::Succeeded), h("00 5a 0000 00000000"));
    for code in [
        ReplyCode::GeneralFailure,
        ReplyCode::NotAllowed,
        ReplyCode::HostUnreachable,
        ReplyCode::ConnectionRefused,
        ReplyCode::TtlExpired,
    ] {
        assert_eq!(encode_reply(code), h(REJECTED_REPLY), "{code:?}");
    }
    let request = done(CONNECT_V4);
    assert_eq!(
        request.reply(ReplyCode::Succeeded),
        h("00 5a 0000 00000000")
    );
    assert_eq!(request.reply(ReplyCode::NotAllowed), h(REJECTED_REPLY));
}

#[test]
fn a_finished_socks4_handshake_takes_nothing_more() {
    let mut hs = Handshake::new();
    assert!(matches!(hs.handle(&h(CONNECT_V4)).1, Action::Done(_)));
    assert!(matches!(
        hs.handle(&h(CONNECT_V4)),
        (
            0,
            Action::Fail {
                reply: None,
                error: SocksError::Finished
            }
        )
    ));
    let _: SocketAddr = "127.0.0.1:80".parse().unwrap();
}
