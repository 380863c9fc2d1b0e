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
