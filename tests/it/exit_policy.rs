//! Exit policies and unreachable targets, seen by a SOCKS5 client as reply codes: 0x02 when no
//! exit allows the target (decided at the proxy from descriptors, or at the exit after it
//! resolved a name), 0x05 for a closed port, 0x04 for a name that does not resolve.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::net::{SocketAddr, TcpListener};

use crate::support::{
    self, HttpServer, Network, RelaySpec, connect_request_domain, connect_request_ip, reply_bytes,
    socks_reply_code, socks_request,
};

/// A port on `ip` that nothing listens on (bound, read, released).
fn closed_port(ip: [u8; 4]) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from((ip, 0))).unwrap();
    listener.local_addr().unwrap()
}

/// A CONNECT that must succeed, followed by a real fetch (the control for the refusals).
fn assert_connects(net: &Network, request: &[u8], host: &str) {
    let (tcp, reply) = socks_request(net.socks, request);
    assert_eq!(
        reply.as_slice(),
        reply_bytes(0x00).as_slice(),
        "request {request:02x?}\n{}",
        net.logs()
    );
    support::http_get_verify(tcp, host, 4096);
}

#[test]
fn refusals_and_failures_get_their_reply_codes() {
    // The exit refuses port 22 everywhere and the loopback addresses `localhost` resolves to;
    // the HTTP server on 127.0.0.59 is reachable.
    let base = 50;
    let served_ip = [127, 0, 0, base + 9];
    let http = HttpServer::start(&[SocketAddr::from((served_ip, 0))]);
    let served = http.addrs[0];
    let net = Network::start(
        base,
        &[
            RelaySpec::middle(),
            RelaySpec::middle(),
            RelaySpec::exit(&[
                "reject *:22",
                "reject 127.0.0.1:*",
                "reject [::1]:*",
                "accept *:*",
            ]),
        ],
    );
    let code = |request: &[u8]| socks_reply_code(net.socks, request);

    // Control: an allowed address and port works end to end.
    assert_connects(&net, &connect_request_ip(served), "served");
    // No relay's policy allows port 22: the proxy refuses, by address and by name.
    let ssh = SocketAddr::from((served_ip, 22));
    assert_eq!(
        code(&connect_request_ip(ssh)),
        0x02,
        "IP on a rejected port"
    );
    assert_eq!(
        code(&connect_request_domain("example.invalid", 22)),
        0x02,
        "name on a rejected port"
    );
    // No relay allows 127.0.0.1 or ::1: refused at the proxy.
    let local = SocketAddr::from(([127, 0, 0, 1], served.port()));
    assert_eq!(
        code(&connect_request_ip(local)),
        0x02,
        "rejected IPv4 address"
    );
    let local6 = SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, served.port()));
    assert_eq!(
        code(&connect_request_ip(local6)),
        0x02,
        "rejected IPv6 address"
    );
    // `localhost` on an allowed port passes the proxy (names are judged by port only), but
    // the exit resolves it to 127.0.0.1 and ::1, both rejected: the exit refuses it.
    assert_eq!(
        code(&connect_request_domain("localhost", served.port())),
        0x02,
        "name resolving to rejected addresses\n{}",
        net.logs()
    );
    // A closed port on an allowed address: connection refused.
    let closed = closed_port(served_ip);
    assert_eq!(code(&connect_request_ip(closed)), 0x05, "closed port");
    // A name that cannot resolve (RFC 6761 `.invalid`): host unreachable.
    assert_eq!(
        code(&connect_request_domain(
            "nonexistent.invalid",
            served.port()
        )),
        0x04,
        "unresolvable name\n{}",
        net.logs()
    );
    // The refusals left the proxy and the circuit usable.
    assert_connects(&net, &connect_request_ip(served), "served");
}

#[test]
fn an_exit_for_other_ports_only_is_not_used() {
    // The only exit allows one port, the HTTP server's first one; a second server's port is
    // allowed by no relay.
    let base = 60;
    let http = HttpServer::start(&[
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    ]);
    let (allowed, other) = (http.addrs[0], http.addrs[1]);
    let rule = format!("accept *:{}", allowed.port());
    let net = Network::start(
        base,
        &[
            RelaySpec::middle(),
            RelaySpec::middle(),
            RelaySpec::exit(&[&rule, "reject *:*"]),
        ],
    );
    assert_connects(&net, &connect_request_ip(allowed), "allowed");
    assert_connects(
        &net,
        &connect_request_domain("localhost", allowed.port()),
        "localhost",
    );
    assert_eq!(
        socks_reply_code(net.socks, &connect_request_ip(other)),
        0x02,
        "IP target on a port no exit allows"
    );
    assert_eq!(
        socks_reply_code(
            net.socks,
            &connect_request_domain("localhost", other.port())
        ),
        0x02,
        "name target on a port no exit allows"
    );
}
