//! Test vectors for the HTTP CONNECT handshake: the requests curl and browsers send, every
//! strict prefix, every reject path with its status, and the responses.

use super::*;

/// What curl sends with `-x http://proxy --proxytunnel http://localhost:8080/`.
const CURL_CONNECT: &str = "CONNECT localhost:8080 HTTP/1.1\r\nHost: localhost:8080\r\n\
User-Agent: curl/8.5.0\r\nProxy-Connection: Keep-Alive\r\n\r\n";

fn handle(input: &[u8]) -> (usize, Action) {
    Handshake::new().handle(input)
}

fn done(request: &str) -> SocksRequest {
    match handle(request.as_bytes()) {
        (consumed, Action::Done(r)) => {
            assert_eq!(consumed, request.len(), "{request:?} consumed whole");
            r
        }
        other => panic!("{request:?}: expected Done, got {other:?}"),
    }
}

/// The failure's status line and error.
fn fail(request: &[u8]) -> (String, SocksError) {
    match handle(request) {
        (0, Action::Fail { reply, error }) => {
            let reply = String::from_utf8(reply.unwrap()).unwrap();
            let status = reply.lines().next().unwrap().to_string();
            assert!(reply.contains("Connection: close\r\n"), "{reply}");
            let body = reply.split("\r\n\r\n").nth(1).unwrap();
            assert!(
                reply.contains(&format!("Content-Length: {}\r\n", body.len())),
                "{reply}"
            );
            (status, error)
        }
        other => panic!("expected Fail, got {other:?}"),
    }
}

#[test]
fn curl_connect_to_a_name_is_passed_on_unresolved() {
    let request = done(CURL_CONNECT);
    assert_eq!(request.protocol, Protocol::HttpConnect);
    assert_eq!(request.command, Command::Connect);
    assert_eq!(request.target, TargetAddr::Domain("localhost".into(), 8080));
    assert_eq!(request.isolation, IsolationKey(b"\0\0H".to_vec()));
}

#[test]
fn ip_literal_targets() {
    let v4 = done("CONNECT 127.0.0.1:443 HTTP/1.0\r\n\r\n");
    assert_eq!(v4.target, TargetAddr::Ip("127.0.0.1:443".parse().unwrap()));
    let v6 = done("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n");
    assert_eq!(
        v6.target,
        TargetAddr::Ip("[2001:db8::1]:8443".parse().unwrap())
    );
    // Bare line feeds, as httparse allows.
    let lf = done("CONNECT example.org:443 HTTP/1.1\nHost: example.org:443\n\n");
    assert_eq!(lf.target, TargetAddr::Domain("example.org".into(), 443));
}

#[test]
fn proxy_authorization_selects_the_isolation_key() {
    let with = |auth: &str| {
        done(&format!(
            "CONNECT example.org:443 HTTP/1.1\r\nproxy-authorization: {auth}\r\n\r\n"
        ))
        .isolation
    };
    let alice = with("Basic YWxpY2U6eA==");
    let bob = with("Basic Ym9iOng=");
    assert_eq!(alice, IsolationKey(b"\0\0HBasic YWxpY2U6eA==".to_vec()));
    assert_ne!(alice, bob);
    assert_eq!(alice, with("Basic YWxpY2U6eA=="));
    let none = done("CONNECT example.org:443 HTTP/1.1\r\n\r\n").isolation;
    assert_ne!(alice, none);
    assert_ne!(none, IsolationKey::default(), "never the SOCKS NO AUTH key");
}

#[test]
fn every_strict_prefix_needs_more_and_hint_never_overshoots() {
    for request in [
        CURL_CONNECT,
        "CONNECT a:1 HTTP/1.0\n\n",
        "CONNECT a:1 HTTP/1.1\r\n\n",
        "GET / HTTP/1.1\r\n\r\n",
    ] {
        let bytes = request.as_bytes();
        for cut in 0..bytes.len() {
            match handle(&bytes[..cut]) {
                (0, Action::NeedMore { at_least }) => {
                    assert!(at_least >= 1, "{request:?} cut at {cut}");
                    assert!(cut + at_least <= bytes.len(), "{request:?} cut at {cut}");
                }
                other => panic!("{request:?} cut at {cut}: {other:?}"),
            }
        }
    }
}

#[test]
fn reading_exactly_the_hint_leaves_early_data_unread() {
    let mut stream = CURL_CONNECT.as_bytes().to_vec();
    stream.extend([0x16, 0x03, 0x01, 0x02, 0x00]); // a TLS ClientHello sent without waiting
    let mut hs = Handshake::new();
    let mut read = 0;
    loop {
        match hs.handle(&stream[..read]) {
            (0, Action::NeedMore { at_least }) => read += at_least,
            (consumed, Action::Done(_)) => {
                assert_eq!(consumed, read);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(&stream[read..], &[0x16, 0x03, 0x01, 0x02, 0x00]);
}

#[test]
fn other_methods_get_405() {
    for request in [
        "GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",
        "POST http://example.org/ HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        "connect example.org:443 HTTP/1.1\r\n\r\n",
    ] {
        let (status, error) = fail(request.as_bytes());
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed", "{request:?}");
        assert!(matches!(error, SocksError::HttpMethodNotAllowed), "{error}");
        let (_, Action::Fail { reply, .. }) = handle(request.as_bytes()) else {
            unreachable!()
        };
        assert!(
            String::from_utf8(reply.unwrap())
                .unwrap()
                .contains("Allow: CONNECT\r\n")
        );
    }
}

#[test]
fn bad_requests_get_400() {
    for request in [
        "CONNECT example.org HTTP/1.1\r\n\r\n",       // no port
        "CONNECT example.org:0 HTTP/1.1\r\n\r\n",     // port 0
        "CONNECT example.org:65536 HTTP/1.1\r\n\r\n", // port out of range
        "CONNECT example.org:+80 HTTP/1.1\r\n\r\n",   // not digits
        "CONNECT example.org: HTTP/1.1\r\n\r\n",      // empty port
        "CONNECT [::1:443 HTTP/1.1\r\n\r\n",          // unclosed bracket
        "CONNECT [nope]:443 HTTP/1.1\r\n\r\n",        // not an IPv6 literal
        "CONNECT user@example.org:443 HTTP/1.1\r\n\r\n",
        "CONNECT /etc/passwd:80 HTTP/1.1\r\n\r\n",
        "CONNECT :80 HTTP/1.1\r\n\r\n",             // empty host
        "CONNECT example.org:443 HTTP/2.0\r\n\r\n", // not HTTP/1.x
        "CONNECT example.org:443 HTTP/1.1\r\nBad Header: x\r\n\r\n",
        "CONNECT\r\n\r\n",
    ] {
        let (status, error) = fail(request.as_bytes());
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{request:?}: {error}");
        assert!(
            matches!(
                error,
                SocksError::HttpMalformed(_) | SocksError::BadDomain { .. }
            ),
            "{request:?}: {error}"
        );
    }
    let mut long_name = String::from("CONNECT ");
    long_name.push_str(&"a".repeat(256));
    long_name.push_str(":443 HTTP/1.1\r\n\r\n");
    assert_eq!(fail(long_name.as_bytes()).0, "HTTP/1.1 400 Bad Request");
}

#[test]
fn head_size_and_header_count_are_bounded() {
    // MAX_HEADERS headers pass; one more is 431.
    let headers = |n: usize| {
        let mut r = String::from("CONNECT example.org:443 HTTP/1.1\r\n");
        for i in 0..n {
            r.push_str(&format!("X-{i}: y\r\n"));
        }
        r.push_str("\r\n");
        r
    };
    done(&headers(MAX_HEADERS));
    let (status, error) = fail(headers(MAX_HEADERS + 1).as_bytes());
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert!(matches!(error, SocksError::HttpTooLarge(_)), "{error}");

    // A head that has not ended at MAX_HEAD_LEN bytes is 431; just below it, read on, never
    // past the limit.
    let mut long = b"CONNECT example.org:443 HTTP/1.1\r\nX-Long: ".to_vec();
    long.resize(MAX_HEAD_LEN, b'a');
    let (status, error) = fail(&long);
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    assert!(matches!(error, SocksError::HttpTooLarge(_)), "{error}");
    match handle(&long[..MAX_HEAD_LEN - 1]) {
        (0, Action::NeedMore { at_least: 1 }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn responses() {
    assert_eq!(
        response(ReplyCode::Succeeded),
        b"HTTP/1.1 200 Connection established\r\n\r\n"
    );
    for (code, status) in [
        (ReplyCode::NotAllowed, "403 Forbidden"),
        (ReplyCode::HostUnreachable, "502 Bad Gateway"),
        (ReplyCode::ConnectionRefused, "502 Bad Gateway"),
        (ReplyCode::TtlExpired, "504 Gateway Timeout"),
        (ReplyCode::GeneralFailure, "503 Service Unavailable"),
    ] {
        let text = String::from_utf8(response(code)).unwrap();
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status}\r\n")),
            "{text}"
        );
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        assert!(text.contains(&format!("Content-Length: {}\r\n", body.len())));
    }
    let request = done(CURL_CONNECT);
    assert_eq!(
        request.reply(ReplyCode::Succeeded),
        response(ReplyCode::Succeeded)
    );
}

#[test]
fn a_finished_handshake_takes_nothing_more() {
    let mut hs = Handshake::new();
    assert!(matches!(
        hs.handle(CURL_CONNECT.as_bytes()).1,
        Action::Done(_)
    ));
    assert!(matches!(
        hs.handle(CURL_CONNECT.as_bytes()),
        (
            0,
            Action::Fail {
                reply: None,
                error: SocksError::Finished
            }
        )
    ));
}

#[test]
fn head_end_and_read_lengths() {
    assert!(head_ended(b"GET / HTTP/1.1\r\n\r\n"));
    assert!(head_ended(b"GET / HTTP/1.1\n\n"));
    assert!(head_ended(b"GET / HTTP/1.1\r\n\n"));
    assert!(!head_ended(b"GET / HTTP/1.1\r\nHost: x\r\n"));
    assert_eq!(head_read_len(b""), 2);
    assert_eq!(head_read_len(b"GET"), 2);
    assert_eq!(head_read_len(b"GET\r"), 1);
    assert_eq!(head_read_len(b"GET\r\n"), 1);
    for b in 0..=u8::MAX {
        assert_eq!(is_method_start(b), b"GPHCOD".contains(&b), "{b:#04x}");
    }
}
