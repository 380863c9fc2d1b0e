//! Apps that do not speak SOCKS5, through a real network of `braid relay` processes and a
//! `braid proxy` process with the real curl binary: SOCKS4a (`--socks4a`, the name goes to the
//! exit) and SOCKS4 (`--socks4`, an IPv4 address) on the SOCKS port, the "not an HTTP proxy"
//! page for a plain HTTP request sent to the SOCKS port, and the HTTP CONNECT port
//! (`http_listen`): curl `-x http:// --proxytunnel`, a GET refused with 405, and a raw CONNECT
//! to a loopback TCP echo server.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use crate::support::{
    Ending, HttpServer, IO_TIMEOUT, Network, ProxyExtras, ProxyOptions, RelaySpec, expected_sha256,
    read_to_end, sha256_hex,
};

/// Runs curl with `args` (plus `-sS` and a time limit) and returns its output.
fn curl(args: &[&str]) -> Output {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "60"])
        .args(args)
        .output()
        .expect("the `curl` binary is required by the end-to-end tests");
    eprintln!("curl {args:?}: {} in {:?}", out.status, started.elapsed());
    out
}

/// Fetches `url` with curl's `proxy_args` into a file and checks the body of `/bytes/size`.
fn fetch_and_check(net: &Network, proxy_args: &[&str], url: &str, size: u64) {
    let out_path = net
        .dir()
        .join(format!("body-{}", sha256_hex(url.as_bytes())));
    let out_str = out_path.display().to_string();
    let mut args = proxy_args.to_vec();
    args.extend(["-o", &out_str, url]);
    let out = curl(&args);
    assert!(
        out.status.success(),
        "curl {args:?}: {}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        net.logs()
    );
    let body = std::fs::read(Path::new(&out_path)).unwrap();
    assert_eq!(sha256_hex(&body), expected_sha256(size), "body of {url}");
}

/// A TCP echo server on 127.0.0.1 for at most `connections` connections, each on its own
/// thread.
fn echo_server(connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// Sends `head` to the HTTP CONNECT port and returns the stream and the response head.
fn http_connect(proxy: SocketAddr, head: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect_timeout(&proxy, IO_TIMEOUT).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.write_all(head.as_bytes()).unwrap();
    // Read the response head byte by byte, so nothing after it is taken.
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        assert!(
            response.len() < 4096,
            "response head too long: {response:02x?}"
        );
        match tcp.read(&mut byte) {
            Ok(1) => response.push(byte[0]),
            other => panic!("after {:?}: {other:?}", String::from_utf8_lossy(&response)),
        }
    }
    (tcp, String::from_utf8(response).unwrap())
}

#[test]
fn socks4a_socks4_and_http_connect_fetch_through_circuits() {
    let http = HttpServer::loopback();
    let port = http.port();
    let echo = echo_server(2);
    let extras = ProxyExtras {
        http_connect: true,
        ..ProxyExtras::default()
    };
    let specs = [
        RelaySpec::middle(),
        RelaySpec::middle(),
        RelaySpec::exit(&["accept *:*"]),
    ];
    let net = Network::start_extra(216, &specs, &ProxyOptions::default(), &extras);
    let socks = net.socks.to_string();
    let connect_port = net.http_connect.expect("http_listen is set").to_string();

    // SOCKS4a: curl sends the name; only the exit resolves it (`*.localhost` is loopback there,
    // RFC 6761, while this host's resolver does not know it: see e2e_curl).
    fetch_and_check(
        &net,
        &["--socks4a", &socks],
        &format!(
            "http://braid-access-check.localhost:{port}/bytes/{}",
            1 << 20
        ),
        1 << 20,
    );
    // SOCKS4: an IPv4 address.
    fetch_and_check(
        &net,
        &["--socks4", &socks],
        &format!("http://127.0.0.1:{port}/bytes/4096"),
        4096,
    );

    // HTTP CONNECT: curl tunnels through the port, the name travels to the exit.
    let proxy_url = format!("http://{connect_port}");
    fetch_and_check(
        &net,
        &["-x", &proxy_url, "--proxytunnel"],
        &format!(
            "http://braid-access-check.localhost:{port}/bytes/{}",
            1 << 20
        ),
        1 << 20,
    );
    // Without --proxytunnel curl asks the proxy for a GET: refused with 405.
    let out = curl(&[
        "-x",
        &proxy_url,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("http://localhost:{port}/bytes/16"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "405", "{out:?}");

    // A raw CONNECT to a TCP echo server, by IPv4 literal and by name.
    let addr = net.http_connect.unwrap();
    for target in [echo.to_string(), format!("localhost:{}", echo.port())] {
        let head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        let (mut tcp, response) = http_connect(addr, &head);
        assert_eq!(
            response,
            "HTTP/1.1 200 Connection established\r\n\r\n",
            "{target}\n{}",
            net.logs()
        );
        let message = format!("echo through braid to {target}");
        tcp.write_all(message.as_bytes()).unwrap();
        let mut back = vec![0u8; message.len()];
        tcp.read_exact(&mut back).unwrap();
        assert_eq!(back, message.as_bytes());
    }

    // A target no exit allows (port 0 is refused before any circuit): 400.
    let (_, response) = http_connect(addr, "CONNECT localhost:0 HTTP/1.1\r\n\r\n");
    assert!(
        response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
        "{response}"
    );
}

#[test]
fn the_socks_port_refuses_http_and_socks4_bind_politely() {
    let specs = [
        RelaySpec::middle(),
        RelaySpec::middle(),
        RelaySpec::exit(&["accept *:*"]),
    ];
    let net = Network::start(220, &specs);

    // curl talking HTTP straight to the SOCKS port, as a browser set to use it as an HTTP
    // proxy would: a 501 page saying what the port is.
    let page = curl(&["-i", &format!("http://{}/", net.socks)]);
    assert!(page.status.success(), "{page:?}");
    let text = String::from_utf8_lossy(&page.stdout);
    assert!(
        text.starts_with("HTTP/1.0 501 This is a SOCKS proxy, not an HTTP proxy\r\n"),
        "{text}"
    );
    assert!(text.contains("http_listen"), "{text}");
    // And as a proxy (`-x`): the same page.
    let as_proxy = curl(&[
        "-x",
        &format!("http://{}", net.socks),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "http://example.org/",
    ]);
    assert_eq!(String::from_utf8_lossy(&as_proxy.stdout), "501");

    // SOCKS4 BIND: the whole request is read, then `00 5B` and close.
    let mut tcp = TcpStream::connect_timeout(&net.socks, IO_TIMEOUT).unwrap();
    tcp.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    tcp.write_all(&[4, 2, 0, 80, 127, 0, 0, 1, b'u', 0])
        .unwrap();
    assert_eq!(
        read_to_end(&mut tcp, 8),
        Ending::Closed(vec![0, 0x5b, 0, 0, 0, 0, 0, 0])
    );
}
