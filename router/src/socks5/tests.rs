//! Hex test vectors for every message and every reject path of the handshake.

use std::net::SocketAddr;

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

const GREETING_NO_AUTH: &str = "05 01 00";
const GREETING_BOTH: &str = "05 02 00 02";
/// RFC 1929 request for user "user", password "pass".
const CREDENTIALS: &str = "01 04 75736572 04 70617373";
/// CONNECT 127.0.0.1:443.
const REQUEST_V4: &str = "05 01 00 01 7f000001 01bb";
/// CONNECT [2001:db8::1]:8080.
const REQUEST_V6: &str = "05 01 00 04 20010db8000000000000000000000001 1f90";
/// CONNECT example.com:80.
const REQUEST_DOMAIN: &str = "05 01 00 03 0b 6578616d706c652e636f6d 0050";

/// Feeds `messages` one by one and returns every action (the `Send`s and the final one).
fn run(messages: &[&str]) -> Vec<Action> {
    let mut hs = Handshake::new();
    let mut actions = Vec::new();
    for m in messages {
        let bytes = h(m);
        let (consumed, action) = hs.handle(&bytes);
        if matches!(action, Action::Send(_) | Action::Done(_)) {
            assert_eq!(consumed, bytes.len(), "message {m} consumed whole");
        } else {
            assert_eq!(consumed, 0);
        }
        actions.push(action);
    }
    actions
}

fn done(action: Action) -> SocksRequest {
    match action {
        Action::Done(request) => request,
        other => panic!("expected Done, got {other:?}"),
    }
}

fn sent(action: &Action) -> &[u8] {
    match action {
        Action::Send(bytes) => bytes,
        other => panic!("expected Send, got {other:?}"),
    }
}

/// Runs the messages and returns the failure's reply and error.
fn fail(messages: &[&str]) -> (Option<Vec<u8>>, SocksError) {
    match run(messages).pop() {
        Some(Action::Fail { reply, error }) => (reply, error),
        other => panic!("expected Fail, got {other:?}"),
    }
}

#[test]
fn no_auth_connect_ipv4() {
    let mut actions = run(&[GREETING_NO_AUTH, REQUEST_V4]);
    let request = done(actions.pop().unwrap());
    assert_eq!(sent(&actions[0]), h("05 00"));
    assert_eq!(request.command, Command::Connect);
    assert_eq!(
        request.target,
        TargetAddr::Ip("127.0.0.1:443".parse().unwrap())
    );
    assert_eq!(request.isolation, IsolationKey(Vec::new()));
}

#[test]
fn username_password_preferred_and_connect_ipv6() {
    let mut actions = run(&[GREETING_BOTH, CREDENTIALS, REQUEST_V6]);
    let request = done(actions.pop().unwrap());
    assert_eq!(sent(&actions[0]), h("05 02"), "0x02 chosen over 0x00");
    assert_eq!(sent(&actions[1]), h("01 00"));
    assert_eq!(
        request.target,
        TargetAddr::Ip("[2001:db8::1]:8080".parse().unwrap())
    );
    assert_eq!(
        request.isolation,
        IsolationKey(h("04 75736572 04 70617373"))
    );
}

#[test]
fn username_password_only_and_connect_domain() {
    let request = done(
        run(&["05 01 02", CREDENTIALS, REQUEST_DOMAIN])
            .pop()
            .unwrap(),
    );
    assert_eq!(request.target, TargetAddr::Domain("example.com".into(), 80));
}

#[test]
fn isolation_keys_are_length_prefixed() {
    // ("ab", "c") and ("a", "bc") must not share circuits.
    let a = done(
        run(&[GREETING_BOTH, "01 02 6162 01 63", REQUEST_V4])
            .pop()
            .unwrap(),
    );
    let b = done(
        run(&[GREETING_BOTH, "01 01 61 02 6263", REQUEST_V4])
            .pop()
            .unwrap(),
    );
    assert_eq!(a.isolation, IsolationKey(h("02 6162 01 63")));
    assert_eq!(b.isolation, IsolationKey(h("01 61 02 6263")));
    // Empty credentials are accepted and still differ from no authentication.
    let empty = done(run(&[GREETING_BOTH, "01 00 00", REQUEST_V4]).pop().unwrap());
    assert_eq!(empty.isolation, IsolationKey(h("00 00")));
    assert_eq!(format!("{:?}", a.isolation), "IsolationKey(<5 bytes>)");
}

#[test]
fn domain_edge_cases() {
    let max = format!("05 01 00 03 ff {} 01bb", "61".repeat(255));
    let request = done(run(&[GREETING_NO_AUTH, &max]).pop().unwrap());
    assert_eq!(request.target, TargetAddr::Domain("a".repeat(255), 443));
    // Underscores, digits, hyphens and a trailing dot are allowed.
    let name = b"_a-1.b.c.";
    let req = format!("05 01 00 03 {:02x} {} 0016", name.len(), hex::encode(name));
    let request = done(run(&[GREETING_NO_AUTH, &req]).pop().unwrap());
    assert_eq!(request.target, TargetAddr::Domain("_a-1.b.c.".into(), 22));
    // An IPv4 literal sent as a name becomes an IP target.
    let name = b"10.1.2.3";
    let req = format!("05 01 00 03 {:02x} {} 0050", name.len(), hex::encode(name));
    let request = done(run(&[GREETING_NO_AUTH, &req]).pop().unwrap());
    assert_eq!(
        request.target,
        TargetAddr::Ip("10.1.2.3:80".parse().unwrap())
    );
}

#[test]
fn every_strict_prefix_needs_more_and_hint_never_overshoots() {
    let transcripts: [&[&str]; 4] = [
        &[GREETING_NO_AUTH, REQUEST_V4],
        &[GREETING_BOTH, CREDENTIALS, REQUEST_V6],
        &["05 01 02", "01 00 00", REQUEST_DOMAIN],
        &[GREETING_NO_AUTH, "05 01 00 03 00 0050"], // rejected only once complete
    ];
    for transcript in transcripts {
        let mut hs = Handshake::new();
        for m in transcript {
            let full = h(m);
            for cut in 0..full.len() {
                match hs.handle(&full[..cut]) {
                    (0, Action::NeedMore { at_least }) => {
                        assert!(at_least >= 1, "{m} cut at {cut}");
                        assert!(cut + at_least <= full.len(), "{m} cut at {cut} overshoots");
                    }
                    other => panic!("{m} cut at {cut}: {other:?}"),
                }
            }
            match hs.handle(&full) {
                (0, Action::Fail { error, .. }) => {
                    assert!(
                        matches!(error, SocksError::BadDomain { .. }),
                        "{m}: {error}"
                    );
                }
                (consumed, _) => assert_eq!(consumed, full.len(), "{m}"),
            }
        }
    }
}

#[test]
fn reading_exactly_the_hint_reaches_each_message_end() {
    // Simulates the driver: starting from nothing, read exactly `at_least` bytes each time.
    let stream = h(&[GREETING_BOTH, CREDENTIALS, REQUEST_DOMAIN, "deadbeef"].join(""));
    let mut hs = Handshake::new();
    let (mut read, mut start) = (0, 0);
    loop {
        let (consumed, action) = hs.handle(&stream[start..read]);
        start += consumed;
        match action {
            Action::NeedMore { at_least } => read += at_least,
            Action::Send(_) => {}
            Action::Done(request) => {
                assert_eq!(request.target, TargetAddr::Domain("example.com".into(), 80));
                break;
            }
            Action::Fail { error, .. } => panic!("{error}"),
        }
    }
    assert_eq!(&stream[read..], h("deadbeef"), "early data left unread");
}

#[test]
fn pipelined_greeting_and_request_in_one_buffer() {
    let mut input = h(GREETING_NO_AUTH);
    input.extend(h(REQUEST_V4));
    input.extend(h("474554")); // early application data after the request
    let mut hs = Handshake::new();
    let (consumed, action) = hs.handle(&input);
    assert_eq!((consumed, sent(&action)), (3, &h("05 00")[..]));
    let (consumed2, action) = hs.handle(&input[consumed..]);
    assert_eq!(consumed2, h(REQUEST_V4).len(), "trailing data not consumed");
    assert!(matches!(action, Action::Done(_)));
}

#[test]
fn greeting_rejects() {
    // Neither SOCKS4 (0x04), SOCKS5 (0x05) nor an HTTP method letter: no reply.
    for first in ["06 01 00", "00", "ff 01 00", "41"] {
        let (reply, error) = fail(&[first]);
        assert!(
            matches!(error, SocksError::BadVersion(_)),
            "{first}: {error}"
        );
        assert_eq!(reply, None, "{first}");
    }
    // GSSAPI only.
    let (reply, error) = fail(&["05 01 01"]);
    assert!(matches!(error, SocksError::NoAcceptableMethod));
    assert_eq!(reply, Some(h("05 ff")));
    // No methods at all.
    let (reply, error) = fail(&["05 00"]);
    assert!(matches!(error, SocksError::NoAcceptableMethod));
    assert_eq!(reply, Some(h("05 ff")));
}

#[test]
fn http_on_the_socks_port_gets_the_page_once_the_head_is_read() {
    let page = Some(crate::http_connect::NOT_AN_HTTP_PROXY.to_vec());
    for request in [
        "GET / HTTP/1.1\r\nHost: example.org\r\n\r\n",
        "GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\nUser-Agent: x\r\n\r\n",
        "POST /form HTTP/1.0\n\n",
        "PUT / HTTP/1.1\r\n\r\n",
        "HEAD / HTTP/1.1\r\n\r\n",
        "CONNECT example.org:443 HTTP/1.1\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        "DELETE /x HTTP/1.1\r\n\r\n",
    ] {
        let bytes = request.as_bytes();
        // Every strict prefix reads on, never past the end of the head.
        for cut in 0..bytes.len() {
            let mut hs = Handshake::new();
            match hs.handle(&bytes[..cut]) {
                (0, Action::NeedMore { at_least }) => {
                    assert!(at_least >= 1);
                    assert!(cut + at_least <= bytes.len(), "{request:?} cut at {cut}");
                }
                other => panic!("{request:?} cut at {cut}: {other:?}"),
            }
        }
        let (reply, error) = fail_bytes(bytes);
        assert!(matches!(error, SocksError::HttpOnSocksPort), "{error}");
        assert_eq!(reply, page, "{request:?}");
    }
    // A head longer than the read limit gets the page once the limit is read.
    let mut long = b"GET /".to_vec();
    long.extend(std::iter::repeat_n(b'a', HTTP_HEAD_READ_LIMIT));
    let (reply, error) = fail_bytes(&long[..HTTP_HEAD_READ_LIMIT]);
    assert!(matches!(error, SocksError::HttpOnSocksPort));
    assert_eq!(reply, page);
    let text = String::from_utf8(crate::http_connect::NOT_AN_HTTP_PROXY.to_vec()).unwrap();
    assert!(text.starts_with("HTTP/1.0 501 This is a SOCKS proxy, not an HTTP proxy\r\n"));
    let body = text.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(body.lines().count(), 3, "{body}");
    assert!(body.contains("http_listen"), "{body}");
}

/// Feeds `bytes` whole to a fresh handshake and returns the failure.
fn fail_bytes(bytes: &[u8]) -> (Option<Vec<u8>>, SocksError) {
    match Handshake::new().handle(bytes) {
        (0, Action::Fail { reply, error }) => (reply, error),
        other => panic!("expected Fail, got {other:?}"),
    }
}

#[test]
fn credentials_reject_bad_version() {
    let (reply, error) = fail(&[GREETING_BOTH, "05 04 75736572 04 70617373"]);
    assert!(matches!(error, SocksError::BadAuthVersion(5)), "{error}");
    assert_eq!(reply, Some(h("01 01")));
}

/// The reply every request-stage refusal carries: `05 REP 00 01 0.0.0.0 :0`.
fn refusal(code: u8) -> Option<Vec<u8>> {
    Some(h(&format!("05 {code:02x} 00 01 00000000 0000")))
}

#[test]
fn request_rejects() {
    let cases: [(&str, u8); 9] = [
        ("05 02 00 01 7f000001 01bb", 0x07),                   // BIND
        ("05 03 00 01 00000000 0000", 0x07),                   // UDP ASSOCIATE
        ("05 09 00 01 7f000001 01bb", 0x07),                   // unknown command
        ("05 01 01 01 7f000001 01bb", 0x01),                   // RSV not zero
        ("05 01 00 02 7f000001 01bb", 0x08),                   // unknown ATYP
        ("05 01 00 03 00 0050", 0x01),                         // empty name
        ("05 01 00 03 03 612062 0050", 0x01),                  // space in name
        ("05 01 00 03 04 c3a9 6161 0050", 0x01),               // non-ASCII (UTF-8 "é")
        ("05 01 00 03 0b 6578616d706c653a3830 00 0050", 0x01), // ':' and NUL
    ];
    for (request, code) in cases {
        let (reply, error) = fail(&[GREETING_NO_AUTH, request]);
        assert_eq!(reply, refusal(code), "{request}: {error}");
        let kind_ok = match code {
            0x07 => matches!(error, SocksError::UnsupportedCommand(c) if c == h(request)[1]),
            0x08 => matches!(error, SocksError::UnsupportedAddressType(2)),
            _ if h(request)[2] != 0 => matches!(error, SocksError::BadReserved(1)),
            _ => matches!(error, SocksError::BadDomain { .. }),
        };
        assert!(kind_ok, "{request}: {error:?}");
    }
    // A SOCKS4 request after a SOCKS5 greeting is a bad SOCKS5 request: no reply.
    let (reply, error) = fail(&[GREETING_NO_AUTH, "04 01 00 01 7f000001 01bb"]);
    assert!(matches!(error, SocksError::BadVersion(4)));
    assert_eq!(reply, None);
}

#[test]
fn unknown_atyp_rejected_before_the_rest_arrives() {
    // The length of an unknown address is unknowable, so the 4-byte header decides.
    let (reply, error) = fail(&[GREETING_NO_AUTH, "05 01 00 05"]);
    assert!(matches!(error, SocksError::UnsupportedAddressType(5)));
    assert_eq!(reply, refusal(0x08));
}

#[test]
fn finished_handshake_refuses_more_input() {
    let mut hs = Handshake::new();
    let _ = hs.handle(&h(GREETING_NO_AUTH));
    assert!(matches!(hs.handle(&h(REQUEST_V4)).1, Action::Done(_)));
    let (consumed, action) = hs.handle(&h(REQUEST_V4));
    assert_eq!(consumed, 0);
    assert!(matches!(
        action,
        Action::Fail {
            reply: None,
            error: SocksError::Finished
        }
    ));
    // Also after a failure.
    let mut hs = Handshake::new();
    let _ = hs.handle(&h("06"));
    assert!(matches!(
        hs.handle(&h(GREETING_NO_AUTH)).1,
        Action::Fail {
            error: SocksError::Finished,
            ..
        }
    ));
}

#[test]
fn reply_vectors() {
    let v4: SocketAddr = "10.0.0.1:1080".parse().unwrap();
    assert_eq!(
        encode_reply(ReplyCode::Succeeded, v4),
        h("05 00 00 01 0a000001 0438")
    );
    let v6: SocketAddr = "[::1]:443".parse().unwrap();
    assert_eq!(
        encode_reply(ReplyCode::HostUnreachable, v6),
        h("05 04 00 04 00000000000000000000000000000001 01bb")
    );
    let codes = [
        (ReplyCode::GeneralFailure, 1),
        (ReplyCode::NotAllowed, 2),
        (ReplyCode::NetworkUnreachable, 3),
        (ReplyCode::ConnectionRefused, 5),
        (ReplyCode::TtlExpired, 6),
        (ReplyCode::CommandNotSupported, 7),
        (ReplyCode::AddressTypeNotSupported, 8),
    ];
    for (code, byte) in codes {
        assert_eq!(encode_reply(code, v4)[1], byte);
    }
}

#[test]
fn target_display_and_redaction() {
    let domain = TargetAddr::Domain("example.com".into(), 443);
    assert_eq!(domain.to_string(), "example.com:443");
    assert_eq!(domain.redacted().to_string(), "[redacted]:443");
    let v6 = TargetAddr::Ip("[2001:db8::1]:80".parse().unwrap());
    assert_eq!(v6.to_string(), "[2001:db8::1]:80");
    assert_eq!(v6.redacted().to_string(), "[redacted]:80");
}

#[test]
fn command_byte_round_trip() {
    for byte in 0..=u8::MAX {
        assert_eq!(u8::from(Command::from(byte)), byte);
    }
    assert_eq!(Command::from(2), Command::Bind);
    assert_eq!(Command::from(3), Command::UdpAssociate);
}

#[test]
fn codec_errors_keep_their_context() {
    let incomplete = braid_codec::Reader::new(&[0x05])
        .u16("SOCKS5 request port")
        .unwrap_err();
    assert!(matches!(
        wire::ParseError::from(incomplete),
        wire::ParseError::Incomplete { at_least: 1 }
    ));
    let too_long = braid_codec::Reader::new(&[3])
        .u8_prefixed(2, "SOCKS5 domain name")
        .unwrap_err();
    let wire::ParseError::Malformed(error) = wire::ParseError::from(too_long) else {
        panic!("a malformed field is not Incomplete");
    };
    assert!(matches!(&error, SocksError::Malformed(e) if e.what() == "SOCKS5 domain name"));
    assert_eq!(
        error.reply(Protocol::Socks5),
        None,
        "the peer gets no reply, as for a bad version"
    );
}
