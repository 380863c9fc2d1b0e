//! The SOCKS5 front door: accepts app connections, opens braid streams for them, pumps bytes.
//!
//! Never resolves a hostname locally: domain targets go to the exit as names. Never logs the
//! app's address or the target above debug level. Bounded: at most `max_clients` connections
//! are served at once; others wait in the kernel's accept queue.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use braid_relay::shared::braid;
use braid_relay::shared::pump::pump_answered;
use braid_relay::{EndReason, Target};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info};

use crate::manager::{CircuitManager, Refill, StreamRecord};
use crate::socks5::IsolationKey;
use crate::socks5::{self, Command, ReplyCode, TargetAddr};
use crate::strands;

/// SOCKS5 server settings.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Time allowed for an app to finish the SOCKS handshake.
    pub handshake_timeout: Duration,
    /// App connections served at once.
    pub max_clients: usize,
}

impl Default for ProxySettings {
    fn default() -> Self {
        ProxySettings {
            handshake_timeout: Duration::from_secs(10),
            max_clients: 512,
        }
    }
}

/// Serves SOCKS5 on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, manager: Arc<CircuitManager>, settings: ProxySettings) {
    let permits = Arc::new(Semaphore::new(settings.max_clients));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (tcp, _peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let manager = manager.clone();
        let settings = settings.clone();
        tokio::spawn(async move {
            serve_one(tcp, manager, &settings).await;
            drop(permit);
        });
    }
}

async fn serve_one(mut tcp: TcpStream, manager: Arc<CircuitManager>, settings: &ProxySettings) {
    let _ = tcp.set_nodelay(true);
    let request = match tokio::time::timeout(
        settings.handshake_timeout,
        socks5::driver::accept(&mut tcp, socks5::MAX_HANDSHAKE_LEN),
    )
    .await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            debug!(error = %e, "socks handshake failed");
            return;
        }
        Err(_) => {
            debug!("socks handshake timed out");
            return;
        }
    };
    if request.command != Command::Connect {
        // The handshake already answered 0x07 for BIND / UDP ASSOCIATE.
        return;
    }
    let target = match &request.target {
        TargetAddr::Ip(sa) => Target::Ip(*sa),
        TargetAddr::Domain(h, p) => Target::Domain(h.clone(), *p),
    };
    let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    if manager.settings().strands > 1 {
        serve_braided(tcp, manager, target, &request.isolation).await;
        return;
    }
    let (circuit, stream, refill) = match manager.connect(&target, &request.isolation).await {
        Ok(x) => x,
        Err(e) => {
            info!(target = %target.redacted(), error = %e, "stream failed");
            let _ = socks5::driver::send_reply(&mut tcp, e.reply_code(), unspecified).await;
            return;
        }
    };
    if socks5::driver::send_reply(&mut tcp, ReplyCode::Succeeded, unspecified)
        .await
        .is_err()
    {
        circuit.end_stream(stream.id, EndReason::Done).await;
        return;
    }
    debug!(target = ?target, "stream open");
    let _open = manager.stats().stream_opened();
    let id = stream.id;
    let answered = move || refill.iter().for_each(Refill::answered);
    let result = pump_answered(tcp, id, stream.max_data, stream.rx, stream.tx, answered).await;
    match result {
        Ok(()) => circuit.forget(id),
        Err(reason) => circuit.end_stream(id, reason).await,
    }
}

/// Carries one app connection as a braided stream over a strand set.
async fn serve_braided(
    mut tcp: TcpStream,
    manager: Arc<CircuitManager>,
    target: Target,
    isolation: &IsolationKey,
) {
    let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let opened = match strands::open(&manager, &target, isolation).await {
        Ok(o) => o,
        Err(e) => {
            info!(target = %target.redacted(), error = %e, "stream failed");
            let _ = socks5::driver::send_reply(&mut tcp, e.reply_code(), unspecified).await;
            return;
        }
    };
    let strands::BraidedStream {
        events,
        state,
        mut supply,
    } = opened;
    if socks5::driver::send_reply(&mut tcp, ReplyCode::Succeeded, unspecified)
        .await
        .is_err()
    {
        // Dropping the events ends the stream; the strands see End when the engine is gone.
        return;
    }
    debug!(target = ?target, "braided stream open");
    let _open = manager.stats().stream_opened();
    let settings = manager.settings().braid.clone();
    let report = braid::run(tcp, state, events, &mut supply, &settings).await;
    debug!(
        sent = report.sent.fragments_sent,
        resent = report.sent.fragments_resent,
        timeouts = report.sent.timeouts,
        received = report.received.fragments_accepted,
        duplicates = report.received.dropped.duplicate,
        rejected = report.rejected(),
        strands = report.strands.len(),
        "braided stream ended"
    );
    if let Some(reason) = report.failure {
        info!(target = %target.redacted(), ?reason, "braided stream failed");
    }
    let paths = supply.paths();
    manager.record(StreamRecord { report, paths });
}
