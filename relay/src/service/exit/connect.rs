//! How the exit reaches a stream's target: resolving hostnames, checking the exit policy,
//! connecting with a timeout, and running a plain stream's task over the connection.
//!
//! Hostnames are resolved here (hickory-resolver), never at the client; `localhost` names are
//! loopback whatever DNS says. The exit policy is checked against every resolved address
//! before connecting. Failures become the [`EndReason`] the client is told. This module knows
//! nothing of the circuit's stream table: [`run_stream`] tells the circuit only through its
//! queues.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::debug;

use super::ExitContext;
use crate::msg::{EndReason, RelayMsg, StreamId, Target};
use crate::shared::pump::{StreamCmd, pump};

#[cfg(test)]
mod tests;

/// Runs one plain stream: connects to `target`, answers `Connected` or `End` on `to_circuit`,
/// then pumps bytes between the socket and the circuit. Reports `stream` on `done` when it has
/// finished, so the circuit forgets it.
pub(super) async fn run_stream(
    stream: StreamId,
    target: Target,
    ctx: Arc<ExitContext>,
    max_data: usize,
    rx: mpsc::Receiver<StreamCmd>,
    to_circuit: mpsc::Sender<RelayMsg>,
    done: mpsc::Sender<StreamId>,
) {
    let result = match connect(&target, &ctx).await {
        Ok(tcp) => {
            let _ = tcp.set_nodelay(true);
            if to_circuit
                .send(RelayMsg::Connected { stream })
                .await
                .is_err()
            {
                let _ = done.send(stream).await;
                return;
            }
            pump(tcp, stream, max_data, rx, to_circuit.clone()).await
        }
        Err(reason) => {
            debug!(target = ?target, ?reason, "exit connect failed");
            Err(reason)
        }
    };
    if let Err(reason) = result {
        let _ = to_circuit.send(RelayMsg::End { stream, reason }).await;
    }
    let _ = done.send(stream).await;
}

/// Resolves (if needed), checks the exit policy and connects, mapping failures to end reasons.
pub(crate) async fn connect(target: &Target, ctx: &ExitContext) -> Result<TcpStream, EndReason> {
    let port = target.port();
    let candidates: Vec<IpAddr> = match target {
        Target::Ip(sa) => vec![sa.ip()],
        Target::Domain(host, _) => resolve(host, ctx).await?,
    };
    let allowed: Vec<IpAddr> = {
        // The policy can be replaced by a reload; the guard is not held across an await.
        let policy = ctx
            .policy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        candidates
            .into_iter()
            .filter(|ip| policy.allows(*ip, port))
            .collect()
    };
    if allowed.is_empty() {
        return Err(EndReason::ExitPolicy);
    }
    let mut last = EndReason::Unreachable;
    for ip in allowed {
        let addr = SocketAddr::new(ip, port);
        match tokio::time::timeout(ctx.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = map_io_error(&e),
            Err(_) => last = EndReason::Timeout,
        }
    }
    Err(last)
}

/// The addresses of `host`: itself if it is an address literal, loopback for `localhost`
/// names (RFC 6761), else at most 16 from the resolver.
async fn resolve(host: &str, ctx: &ExitContext) -> Result<Vec<IpAddr>, EndReason> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let lower = host.to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        // RFC 6761 §6.3: localhost names are loopback, whatever DNS says.
        return Ok(vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);
    }
    let resolver = ctx.resolver.as_ref().ok_or(EndReason::ResolveFailed)?;
    match tokio::time::timeout(ctx.connect_timeout, resolver.lookup_ip(host)).await {
        Ok(Ok(lookup)) => {
            let ips: Vec<IpAddr> = lookup.iter().take(16).collect();
            if ips.is_empty() {
                Err(EndReason::ResolveFailed)
            } else {
                Ok(ips)
            }
        }
        Ok(Err(_)) => Err(EndReason::ResolveFailed),
        Err(_) => Err(EndReason::Timeout),
    }
}

/// The end reason a failed connect reports.
fn map_io_error(e: &std::io::Error) -> EndReason {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => EndReason::Refused,
        ErrorKind::TimedOut => EndReason::Timeout,
        ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::AddrNotAvailable => EndReason::Unreachable,
        _ => EndReason::Misc,
    }
}
