//! The front doors: accepts app connections on the SOCKS port (SOCKS5, SOCKS4/4a) and on the
//! HTTP CONNECT port, opens braid streams for them, pumps bytes.
//!
//! Never resolves a hostname locally: domain targets go to the exit as names. Never logs the
//! app's address or the target above debug level. Bounded: at most `max_clients` connections
//! are served at once on each port; others wait in the kernel's accept queue.

use std::sync::Arc;
use std::time::Duration;

use braid_relay::shared::braid;
use braid_relay::shared::pump::pump_answered;
use braid_relay::{EndReason, Target};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info};

use crate::manager::{CircuitManager, Refill, StreamRecord};
use crate::socks5::{self, Command, ReplyCode, SocksRequest, TargetAddr};
use crate::{http_connect, strands};

/// SOCKS and HTTP CONNECT server settings.
#[derive(Debug, Clone)]
pub struct ProxySettings {
    /// Time allowed for an app to finish the SOCKS handshake or send its HTTP CONNECT head.
    pub handshake_timeout: Duration,
    /// App connections served at once, per port.
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

/// Which front door a listener is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// SOCKS5 and SOCKS4/4a (and the "not an HTTP proxy" page).
    Socks,
    /// HTTP CONNECT.
    HttpConnect,
}

/// Serves SOCKS5 and SOCKS4/4a on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, manager: Arc<CircuitManager>, settings: ProxySettings) {
    accept_loop(listener, manager, settings, Port::Socks).await;
}

/// Serves HTTP CONNECT on `listener` until the task is dropped: the same streams, circuits and
/// isolation as the SOCKS port, but HTTP CONNECT clients never share a circuit with SOCKS ones.
pub async fn serve_http_connect(
    listener: TcpListener,
    manager: Arc<CircuitManager>,
    settings: ProxySettings,
) {
    accept_loop(listener, manager, settings, Port::HttpConnect).await;
}

async fn accept_loop(
    listener: TcpListener,
    manager: Arc<CircuitManager>,
    settings: ProxySettings,
    port: Port,
) {
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
            serve_one(tcp, manager, &settings, port).await;
            drop(permit);
        });
    }
}

async fn serve_one(
    mut tcp: TcpStream,
    manager: Arc<CircuitManager>,
    settings: &ProxySettings,
    port: Port,
) {
    let _ = tcp.set_nodelay(true);
    let handshake = async {
        match port {
            Port::Socks => socks5::driver::accept(&mut tcp, socks5::MAX_HANDSHAKE_LEN).await,
            Port::HttpConnect => http_connect::accept(&mut tcp).await,
        }
    };
    let request = match tokio::time::timeout(settings.handshake_timeout, handshake).await {
        Ok(Ok(r)) => r,
        Ok(Err(socks5::SocksError::HttpOnSocksPort)) => {
            info!(
                "an app sent plain HTTP to the SOCKS port; answered that it is not an HTTP proxy"
            );
            return;
        }
        Ok(Err(e)) => {
            debug!(error = %e, "app handshake failed");
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
    if manager.settings().strands > 1 {
        serve_braided(tcp, manager, target, &request).await;
        return;
    }
    let (circuit, stream, refill) = match manager.connect(&target, &request.isolation).await {
        Ok(x) => x,
        Err(e) => {
            info!(target = %target.redacted(), error = %e, "stream failed");
            let _ = socks5::driver::answer(&mut tcp, &request, e.reply_code()).await;
            return;
        }
    };
    if socks5::driver::answer(&mut tcp, &request, ReplyCode::Succeeded)
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
    request: &SocksRequest,
) {
    let opened = match strands::open(&manager, &target, &request.isolation).await {
        Ok(o) => o,
        Err(e) => {
            info!(target = %target.redacted(), error = %e, "stream failed");
            let _ = socks5::driver::answer(&mut tcp, request, e.reply_code()).await;
            return;
        }
    };
    let strands::BraidedStream {
        events,
        state,
        mut supply,
    } = opened;
    if socks5::driver::answer(&mut tcp, request, ReplyCode::Succeeded)
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
