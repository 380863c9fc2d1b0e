#![allow(clippy::unwrap_used)] // tests: a panic is the failure report

//! Connect failures and their end reasons, the localhost rule, and a plain stream's task;
//! loopback only, no DNS.

use std::io::{Error, ErrorKind};

use braid_directory::ExitPolicy;
use tokio::net::TcpListener;

use super::*;
use crate::service::exit::tests::context;

#[test]
fn io_errors_map_to_end_reasons() {
    let cases = [
        (ErrorKind::ConnectionRefused, EndReason::Refused),
        (ErrorKind::TimedOut, EndReason::Timeout),
        (ErrorKind::HostUnreachable, EndReason::Unreachable),
        (ErrorKind::NetworkUnreachable, EndReason::Unreachable),
        (ErrorKind::AddrNotAvailable, EndReason::Unreachable),
        (ErrorKind::PermissionDenied, EndReason::Misc),
        (ErrorKind::Other, EndReason::Misc),
    ];
    for (kind, reason) in cases {
        assert_eq!(map_io_error(&Error::from(kind)), reason, "{kind:?}");
    }
}

#[tokio::test]
async fn localhost_names_are_loopback_without_asking_dns() {
    // No resolver: any name that needed DNS would fail.
    let ctx = context(ExitPolicy::accept_all(), 1);
    let loopback = vec![
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    for host in ["localhost", "LocalHost", "app.localhost", "a.b.LOCALHOST"] {
        assert_eq!(resolve(host, &ctx).await, Ok(loopback.clone()), "{host}");
    }
    let literal = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(resolve("192.0.2.1", &ctx).await, Ok(vec![literal]));
    assert_eq!(resolve("::1", &ctx).await, Ok(vec![loopback[1]]));
    for host in ["example.com", "localhost.example.com", "notlocalhost"] {
        assert_eq!(
            resolve(host, &ctx).await,
            Err(EndReason::ResolveFailed),
            "{host}"
        );
    }
}

#[tokio::test]
async fn the_exit_policy_is_checked_before_connecting() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let ctx = context(ExitPolicy::reject_all(), 1);
    let result = connect(&Target::Ip(addr), &ctx).await;
    assert_eq!(result.err(), Some(EndReason::ExitPolicy));
    let ctx = context(ExitPolicy::accept_all(), 1);
    assert!(connect(&Target::Ip(addr), &ctx).await.is_ok());
    let by_name = Target::Domain("localhost".into(), addr.port());
    assert!(connect(&by_name, &ctx).await.is_ok());
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ctx = context(ExitPolicy::accept_all(), 1);
    let result = connect(&Target::Ip(addr), &ctx).await;
    assert_eq!(result.err(), Some(EndReason::Refused));
}

#[tokio::test]
async fn a_stream_that_cannot_connect_is_ended_then_reported_done() {
    let ctx = context(ExitPolicy::reject_all(), 1);
    let (to_circuit, mut at_circuit) = mpsc::channel(4);
    let (done, mut finished) = mpsc::channel(1);
    let (_tx, rx) = mpsc::channel(1);
    let target = Target::Ip(SocketAddr::from((Ipv4Addr::LOCALHOST, 9)));
    let stream = StreamId(3);
    run_stream(stream, target, ctx, 400, rx, to_circuit, done).await;
    let reason = EndReason::ExitPolicy;
    assert_eq!(
        at_circuit.try_recv().unwrap(),
        RelayMsg::End { stream, reason }
    );
    assert_eq!(finished.try_recv().unwrap(), stream);
}
