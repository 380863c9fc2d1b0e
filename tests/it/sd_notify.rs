//! `braid proxy` under a stand-in for systemd's notification socket: with `NOTIFY_SOCKET`
//! pointing at a Unix datagram socket this test binds and `WATCHDOG_USEC` set, the proxy sends
//! `READY=1` with its status once ready, `WATCHDOG=1` pings, and `STOPPING=1` on SIGTERM.

#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::support::{Network, ProxyExtras, ProxyOptions, RelaySpec, sigterm};

/// The next datagram, or `None` once `deadline` has passed.
fn recv(socket: &UnixDatagram, deadline: Instant) -> Option<String> {
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        if let Ok(n) = socket.recv(&mut buf) {
            return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
}

/// Receives datagrams until `count` of them satisfy `wanted`, within `timeout`; returns those.
fn wait_for(
    socket: &UnixDatagram,
    what: &str,
    count: usize,
    timeout: Duration,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let (mut found, mut others) = (Vec::new(), Vec::new());
    while found.len() < count {
        match recv(socket, deadline) {
            Some(m) if wanted(&m) => found.push(m),
            Some(m) => others.push(m),
            None => panic!(
                "{} of {count} {what} within {timeout:?}; others {others:?}",
                found.len()
            ),
        }
    }
    found
}

#[test]
fn proxy_notifies_ready_watchdog_and_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let extras = ProxyExtras {
        env: vec![
            ("NOTIFY_SOCKET".into(), path.display().to_string()),
            // 200 ms: a ping every 100 ms.
            ("WATCHDOG_USEC".into(), "200000".into()),
        ],
        ..ProxyExtras::default()
    };
    let specs = [
        RelaySpec::middle(),
        RelaySpec::middle(),
        RelaySpec::exit(&["accept *:*"]),
    ];
    let mut net = Network::start_extra(224, &specs, &ProxyOptions::default(), &extras);
    let ready = wait_for(&socket, "READY=1", 1, Duration::from_secs(10), |m| {
        m.contains("READY=1")
    });
    assert!(
        ready[0].contains(&format!("STATUS=ready socks5={}\n", net.socks)),
        "{ready:?}"
    );
    // Pings every 100 ms from then on: three within 5 s, each a datagram of its own.
    wait_for(&socket, "WATCHDOG=1", 3, Duration::from_secs(5), |m| {
        m == "WATCHDOG=1\n"
    });

    sigterm(net.proxy.pid());
    wait_for(&socket, "STOPPING=1", 1, Duration::from_secs(10), |m| {
        m.contains("STOPPING=1")
    });
    assert!(net.proxy.wait_exit(Duration::from_secs(30)).is_some());
}
