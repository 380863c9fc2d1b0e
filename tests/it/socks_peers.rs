//! Other SOCKS5 peers against `braid proxy`: the fast-socks5 client library as a second,
//! independent client, and hand-written bad input over raw TCP (each followed by a normal curl
//! fetch, to show the proxy keeps serving).

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{
    self, Ending, HttpServer, Network, assert_curl_fetch, close_write, connect_request_domain,
    connect_request_ip, expected_sha256, greet, read_to_end, reply_bytes, sha256_hex,
    socks_request, socks_tcp,
};
use fast_socks5::client::{Config, Socks5Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Fetches `/bytes/size` with fast-socks5 and returns the body.
async fn fast_socks5_fetch(
    socks: SocketAddr,
    host: &str,
    port: u16,
    size: u64,
    credentials: Option<(&str, &str)>,
) -> Vec<u8> {
    let mut config = Config::default();
    config.set_connect_timeout(Duration::from_secs(10));
    let connect = async {
        match credentials {
            None => Socks5Stream::connect(socks, host.to_string(), port, config).await,
            Some((user, pass)) => {
                Socks5Stream::connect_with_password(
                    socks,
                    host.to_string(),
                    port,
                    user.to_string(),
                    pass.to_string(),
                    config,
                )
                .await
            }
        }
    };
    let mut stream = tokio::time::timeout(Duration::from_secs(30), connect)
        .await
        .expect("fast-socks5 connect timed out")
        .unwrap_or_else(|e| panic!("fast-socks5 connect to {host}:{port}: {e}"));
    let req = format!("GET /bytes/{size} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response))
        .await
        .expect("response timed out")
        .unwrap();
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no HTTP head")
        + 4;
    let head = String::from_utf8_lossy(&response[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "status: {head}");
    response.split_off(head_end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_socks5_client_fetches_through_the_proxy() {
    let http = HttpServer::loopback();
    let (port4, port6) = (http.addrs[0].port(), http.addrs[1].port());
    let net = tokio::task::spawn_blocking(|| Network::three_hop(30))
        .await
        .unwrap();
    let want = expected_sha256(65_536);

    // A name (fast-socks5 sends it as ATYP 3), an IPv4 and an IPv6 literal.
    let body = fast_socks5_fetch(net.socks, "localhost", port4, 65_536, None).await;
    assert_eq!(sha256_hex(&body), want, "via name");
    let body = fast_socks5_fetch(net.socks, "127.0.0.1", port4, 65_536, None).await;
    assert_eq!(sha256_hex(&body), want, "via IPv4");
    let body = fast_socks5_fetch(net.socks, "::1", port6, 65_536, None).await;
    assert_eq!(sha256_hex(&body), want, "via IPv6");
    // Username/password (an isolation key for the proxy, not a secret it checks).
    let body = fast_socks5_fetch(net.socks, "localhost", port4, 65_536, Some(("u", "p"))).await;
    assert_eq!(sha256_hex(&body), want, "with credentials");
}

/// Checks that the proxy has neither answered nor closed `tcp` yet.
fn assert_still_open(tcp: &mut TcpStream) {
    tcp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 16];
    let result = tcp.read(&mut buf);
    tcp.set_nonblocking(false).unwrap();
    match result {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the slow client's connection is no longer waiting: {other:?}"),
    }
}

/// Sends `bytes`, half-closes, and returns how the proxy ended the connection.
fn send_and_close(socks: SocketAddr, bytes: &[u8]) -> Ending {
    let mut tcp = socks_tcp(socks);
    tcp.write_all(bytes).unwrap();
    close_write(&tcp);
    read_to_end(&mut tcp, 64)
}

/// Greets, sends `request`, and returns how the proxy ended the connection.
fn request_and_end(socks: SocketAddr, request: &[u8]) -> Ending {
    let mut tcp = socks_tcp(socks);
    greet(&mut tcp);
    tcp.write_all(request).unwrap();
    read_to_end(&mut tcp, 64)
}

/// A request that the handshake refuses gets exactly `reply` and then a clean close.
fn assert_refused(socks: SocketAddr, request: &[u8], code: u8) {
    let ending = request_and_end(socks, request);
    assert_eq!(
        ending,
        Ending::Closed(reply_bytes(code)),
        "request {request:02x?}"
    );
}

#[test]
fn bad_socks_input_is_refused_and_the_proxy_keeps_serving() {
    let http = HttpServer::loopback();
    let port = http.port();
    let net = Network::three_hop(34);
    let socks = net.socks;
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let check_still_serving = || assert_curl_fetch(&net, "localhost", port, 1024);

    // A slow client holds half a greeting for the whole test: others are served meanwhile.
    let mut slow = socks_tcp(socks);
    slow.write_all(&[0x05]).unwrap();
    let slow_since = Instant::now();

    // A version byte that is neither SOCKS4, SOCKS5 nor the start of an HTTP method: no reply
    // at all, just the end of the connection. (SOCKS4 is served: tests/it/app_ports.rs.)
    let ending = send_and_close(socks, &[0x06, 0x01, 0x00, 0x50, 127, 0, 0, 1, 0x00]);
    assert!(
        ending.bytes().is_empty(),
        "version 6 got a reply: {ending:?}"
    );
    check_still_serving();
    // That fetch completed while the slow client still held its connection.
    assert_still_open(&mut slow);

    // A greeting announcing two methods but carrying one, then EOF.
    let ending = send_and_close(socks, &[0x05, 0x02, 0x00]);
    assert_eq!(ending, Ending::Closed(Vec::new()), "truncated greeting");
    // A request cut inside the IPv4 address, then EOF.
    let mut tcp = socks_tcp(socks);
    greet(&mut tcp);
    tcp.write_all(&[0x05, 0x01, 0x00, 0x01, 127, 0]).unwrap();
    close_write(&tcp);
    assert_eq!(
        read_to_end(&mut tcp, 64),
        Ending::Closed(Vec::new()),
        "truncated request"
    );
    check_still_serving();

    // No acceptable method (GSSAPI only): `05 FF`.
    let ending = send_and_close(socks, &[0x05, 0x01, 0x01]);
    assert_eq!(
        ending,
        Ending::Closed(vec![0x05, 0xFF]),
        "no acceptable method"
    );

    // BIND, UDP ASSOCIATE and an unknown command: 0x07.
    for cmd in [0x02, 0x03, 0x7F] {
        let mut req = connect_request_ip(target);
        req[1] = cmd;
        assert_refused(socks, &req, 0x07);
    }
    // Unknown address type: 0x08, decided on the fourth byte.
    assert_refused(socks, &[0x05, 0x01, 0x00, 0x09], 0x08);
    // An empty domain name, and one with a byte outside hostname characters: 0x01.
    assert_refused(socks, &connect_request_domain("", port), 0x01);
    assert_refused(socks, &connect_request_domain("local host", port), 0x01);
    // A non-zero reserved byte: 0x01.
    let mut req = connect_request_ip(target);
    req[2] = 0x01;
    assert_refused(socks, &req, 0x01);
    // A wrong version byte in the request (after a good greeting): no reply.
    let mut req = connect_request_ip(target);
    req[0] = 0x04;
    let ending = request_and_end(socks, &req);
    assert!(
        ending.bytes().is_empty(),
        "bad request version got {ending:?}"
    );
    check_still_serving();

    // A flood: 64 KiB of 0x05 parses as a greeting offering method 5 only, so at most `05 FF`
    // comes back and the connection ends; the proxy reads no more than the handshake needs.
    let mut tcp = socks_tcp(socks);
    let _ = tcp.write_all(&vec![0x05; 64 * 1024]);
    close_write(&tcp);
    let ending = read_to_end(&mut tcp, 64);
    assert!(
        [0x05, 0xFF].starts_with(ending.bytes()),
        "flood got {ending:?}"
    );
    check_still_serving();

    // The longest valid handshake, exactly MAX_HANDSHAKE_LEN (1032) bytes, is accepted: 255
    // methods (257 bytes), 255-byte username and password (513), a 255-byte name (262).
    // The name ends in `.localhost`, which the exit resolves to loopback.
    let mut tcp = socks_tcp(socks);
    let mut greeting = vec![0x05, 0xFF];
    greeting.extend(0u8..=254);
    let mut credentials = vec![0x01, 0xFF];
    credentials.extend_from_slice(&[b'u'; 255]);
    credentials.push(0xFF);
    credentials.extend_from_slice(&[b'p'; 255]);
    let mut name = String::new();
    let mut left = 255 - "localhost".len();
    while left > 0 {
        let label = (left - 1).min(63);
        name.push_str(&"a".repeat(label));
        name.push('.');
        left -= label + 1;
    }
    name.push_str("localhost");
    assert_eq!(name.len(), 255, "{name}");
    let request = connect_request_domain(&name, port);
    assert_eq!(greeting.len() + credentials.len() + request.len(), 1032);
    tcp.write_all(&greeting).unwrap();
    let mut choice = [0u8; 2];
    tcp.read_exact(&mut choice).unwrap();
    assert_eq!(
        choice,
        [0x05, 0x02],
        "username/password is chosen when offered"
    );
    tcp.write_all(&credentials).unwrap();
    let mut status = [0u8; 2];
    tcp.read_exact(&mut status).unwrap();
    assert_eq!(status, [0x01, 0x00], "any credentials are accepted");
    tcp.write_all(&request).unwrap();
    let mut reply = [0u8; 10];
    tcp.read_exact(&mut reply).unwrap();
    assert_eq!(reply.as_slice(), reply_bytes(0x00), "{}", net.logs());
    support::http_get_verify(tcp, &name, 2048);

    // The slow client was never answered and the proxy served everyone else meanwhile; the
    // handshake timeout (10 s) then closes it without a reply.
    let ending = read_to_end(&mut slow, 0);
    let waited = slow_since.elapsed();
    assert_eq!(ending, Ending::Closed(Vec::new()), "slow client");
    assert!(
        waited >= Duration::from_secs(8),
        "slow client closed after only {waited:?}"
    );
    eprintln!("slow client closed after {waited:?}");
    check_still_serving();
}

#[test]
fn pipelined_request_and_data_are_served() {
    // A client that sends greeting, request and HTTP request in one write (no round trips):
    // the proxy must not lose the bytes behind the handshake.
    let http = HttpServer::loopback();
    let net = Network::three_hop(38);
    let mut tcp = socks_tcp(net.socks);
    let mut all = vec![0x05, 0x01, 0x00];
    all.extend(connect_request_domain("localhost", http.port()));
    all.extend_from_slice(
        b"GET /bytes/100000 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    tcp.write_all(&all).unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).unwrap();
    assert_eq!(&head[..2], &[0x05, 0x00], "method choice");
    assert_eq!(&head[2..], reply_bytes(0x00).as_slice(), "reply");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).unwrap();
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(
        sha256_hex(&response[head_end..]),
        expected_sha256(100_000),
        "{}",
        net.logs()
    );
    // And a second stream on the same circuit works the normal way.
    let (tcp, reply) = socks_request(net.socks, &connect_request_domain("localhost", http.port()));
    assert_eq!(reply.as_slice(), reply_bytes(0x00).as_slice());
    support::http_get_verify(tcp, "localhost", 1024);
}
