//! The driver against `fast_socks5`'s client, an independent implementation, and against raw
//! bytes for the paths that client cannot produce.

use std::net::SocketAddr;

use fast_socks5::client::{Config, Socks5Stream};
use fast_socks5::util::target_addr::TargetAddr as ClientTarget;
use fast_socks5::{AuthenticationMethod, Socks5Command};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

use super::*;
use crate::socks5::{IsolationKey, MAX_HANDSHAKE_LEN, TargetAddr};

const BOUND: &str = "192.0.2.7:4321";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

/// One CONNECT through the driver with fast-socks5 as the client; returns what the server
/// parsed, after checking that the client saw the reply and that data flows both ways.
async fn connect(target: ClientTarget, auth: Option<(&str, &str)>) -> SocksRequest {
    let (client_io, mut server_io) = duplex(4096);
    let server = tokio::spawn(async move {
        let request = accept(&mut server_io, MAX_HANDSHAKE_LEN).await.unwrap();
        let bound: SocketAddr = BOUND.parse().unwrap();
        send_reply(&mut server_io, ReplyCode::Succeeded, bound)
            .await
            .unwrap();
        let mut ping = [0u8; 4];
        server_io.read_exact(&mut ping).await.unwrap();
        assert_eq!(&ping, b"ping");
        server_io.write_all(b"pong").await.unwrap();
        request
    });
    let auth = auth.map(|(username, password)| AuthenticationMethod::Password {
        username: username.into(),
        password: password.into(),
    });
    let mut client = Socks5Stream::use_stream(client_io, auth, Config::default())
        .await
        .unwrap();
    let bound = client
        .request(Socks5Command::TCPConnect, target)
        .await
        .unwrap();
    assert_eq!(bound, ClientTarget::Ip(BOUND.parse().unwrap()));
    let mut io = client.get_socket();
    io.write_all(b"ping").await.unwrap();
    let mut pong = [0u8; 4];
    io.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"pong");
    server.await.unwrap()
}

#[tokio::test]
async fn fast_socks5_connect_ipv4_ipv6_domain_no_auth() {
    let v4: SocketAddr = "198.51.100.1:443".parse().unwrap();
    let request = connect(ClientTarget::Ip(v4), None).await;
    assert_eq!(request.target, TargetAddr::Ip(v4));
    assert_eq!(request.isolation, IsolationKey::default());

    let v6: SocketAddr = "[2001:db8::2]:8443".parse().unwrap();
    assert_eq!(
        connect(ClientTarget::Ip(v6), None).await.target,
        TargetAddr::Ip(v6)
    );

    let domain = ClientTarget::Domain("www.example.org".into(), 80);
    assert_eq!(
        connect(domain, None).await.target,
        TargetAddr::Domain("www.example.org".into(), 80),
        "the name is passed on, not resolved"
    );
}

#[tokio::test]
async fn fast_socks5_connect_with_password_isolates() {
    let domain = || ClientTarget::Domain("example.com".into(), 443);
    let alice = connect(domain(), Some(("alice", "x"))).await;
    let bob = connect(domain(), Some(("bob", "x"))).await;
    let alice_again = connect(domain(), Some(("alice", "x"))).await;
    let none = connect(domain(), None).await;
    assert_eq!(alice.target, TargetAddr::Domain("example.com".into(), 443));
    assert_eq!(alice.isolation, IsolationKey(b"\x05alice\x01x".to_vec()));
    assert_ne!(alice.isolation, bob.isolation);
    assert_eq!(alice.isolation, alice_again.isolation);
    assert_ne!(alice.isolation, none.isolation);

    let v4: SocketAddr = "203.0.113.9:22".parse().unwrap();
    let v6: SocketAddr = "[2001:db8::3]:22".parse().unwrap();
    assert_eq!(
        connect(ClientTarget::Ip(v4), Some(("u", "p"))).await.target,
        TargetAddr::Ip(v4)
    );
    assert_eq!(
        connect(ClientTarget::Ip(v6), Some(("u", "p"))).await.target,
        TargetAddr::Ip(v6)
    );
}

#[tokio::test]
async fn pipelined_handshake_keeps_early_data_in_the_stream() {
    let (mut client, mut server) = duplex(4096);
    // Greeting, request and application data in one write.
    let mut all = h("050100");
    all.extend(h("05010001 7f000001 01bb"));
    all.extend(b"GET / HTTP/1.0\r\n\r\n");
    client.write_all(&all).await.unwrap();
    let request = accept(&mut server, MAX_HANDSHAKE_LEN).await.unwrap();
    assert_eq!(
        request.target,
        TargetAddr::Ip("127.0.0.1:443".parse().unwrap())
    );
    let mut early = [0u8; 18];
    server.read_exact(&mut early).await.unwrap();
    assert_eq!(&early, b"GET / HTTP/1.0\r\n\r\n");
    let mut method_reply = [0u8; 2];
    client.read_exact(&mut method_reply).await.unwrap();
    assert_eq!(method_reply, [5, 0]);
}

#[tokio::test]
async fn refusal_is_written_before_close() {
    let (mut client, mut server) = duplex(4096);
    client
        .write_all(&h("050100 05020001 7f000001 01bb"))
        .await
        .unwrap();
    let error = accept(&mut server, MAX_HANDSHAKE_LEN).await.unwrap_err();
    assert!(
        matches!(error, SocksError::UnsupportedCommand(2)),
        "{error}"
    );
    drop(server);
    let mut replies = Vec::new();
    client.read_to_end(&mut replies).await.unwrap();
    assert_eq!(replies, h("0500 05070001000000000000"));
}

#[tokio::test]
async fn byte_limit_is_enforced() {
    // A valid greeting + credentials + request with a 255-byte name is 3 + 513 + 262 bytes.
    let mut all = h("050102");
    all.extend([1, 255]);
    all.extend([b'u'; 255]);
    all.push(255);
    all.extend([b'p'; 255]);
    all.extend([5, 1, 0, 3, 255]);
    all.extend([b'a'; 255]);
    all.extend([0, 80]);
    let exact = all.len();

    let (mut client, mut server) = duplex(4096);
    client.write_all(&all).await.unwrap();
    assert!(
        accept(&mut server, exact).await.is_ok(),
        "exactly at the limit"
    );

    let (mut client, mut server) = duplex(4096);
    client.write_all(&all).await.unwrap();
    let error = accept(&mut server, exact - 1).await.unwrap_err();
    assert!(
        matches!(error, SocksError::TooLong { limit } if limit == exact - 1),
        "{error}"
    );
}

#[tokio::test]
async fn early_close_is_reported() {
    let (mut client, mut server) = duplex(4096);
    // A greeting announcing three methods, cut after two.
    client.write_all(&[5, 3, 0, 2]).await.unwrap();
    drop(client);
    let error = accept(&mut server, MAX_HANDSHAKE_LEN).await.unwrap_err();
    assert!(
        matches!(error, SocksError::Closed { received: 4 }),
        "{error}"
    );
}

#[tokio::test]
async fn socks4a_request_is_answered_in_socks4_and_early_data_stays() {
    let (mut client, mut server) = duplex(4096);
    // CONNECT example.com:443 as user "u", then application data in the same write.
    let mut all = h("04 01 01bb 00000001 75 00 6578616d706c652e636f6d 00");
    all.extend(b"early");
    client.write_all(&all).await.unwrap();
    let request = accept(&mut server, MAX_HANDSHAKE_LEN).await.unwrap();
    assert_eq!(request.protocol, crate::socks5::Protocol::Socks4);
    assert_eq!(
        request.target,
        TargetAddr::Domain("example.com".into(), 443)
    );
    let mut early = [0u8; 5];
    server.read_exact(&mut early).await.unwrap();
    assert_eq!(&early, b"early");
    answer(&mut server, &request, ReplyCode::Succeeded)
        .await
        .unwrap();
    let mut reply = [0u8; 8];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply.to_vec(), h("00 5a 0000 00000000"));
}

#[tokio::test]
async fn http_on_the_socks_port_gets_the_page_then_eof() {
    let (mut client, mut server) = duplex(8192);
    client
        .write_all(b"GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n")
        .await
        .unwrap();
    let error = accept(&mut server, MAX_HANDSHAKE_LEN).await.unwrap_err();
    assert!(matches!(error, SocksError::HttpOnSocksPort), "{error}");
    drop(server);
    let mut page = Vec::new();
    client.read_to_end(&mut page).await.unwrap();
    assert_eq!(page, crate::http_connect::NOT_AN_HTTP_PROXY);
}

#[tokio::test]
async fn http_connect_through_the_shared_driver() {
    let (mut client, mut server) = duplex(8192);
    client
        .write_all(b"CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\nhello")
        .await
        .unwrap();
    let request = crate::http_connect::accept(&mut server).await.unwrap();
    assert_eq!(
        request.target,
        TargetAddr::Ip("[::1]:8443".parse().unwrap())
    );
    let mut early = [0u8; 5];
    server.read_exact(&mut early).await.unwrap();
    assert_eq!(&early, b"hello", "bytes after the head stay in the stream");
    answer(&mut server, &request, ReplyCode::Succeeded)
        .await
        .unwrap();
    let mut reply = vec![0u8; 39];
    client.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, b"HTTP/1.1 200 Connection established\r\n\r\n");

    // A GET on the HTTP CONNECT port: 405, then the server closes.
    let (mut client, mut server) = duplex(8192);
    client
        .write_all(b"GET http://example.org/ HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    let error = crate::http_connect::accept(&mut server).await.unwrap_err();
    assert!(matches!(error, SocksError::HttpMethodNotAllowed), "{error}");
    drop(server);
    let mut response = Vec::new();
    client.read_to_end(&mut response).await.unwrap();
    assert!(response.starts_with(b"HTTP/1.1 405 Method Not Allowed\r\n"));
}
