//! The exit's side of a circuit: reads relay messages, opens TCP connections, pumps streams.
//!
//! Hostnames are resolved here (hickory-resolver), never at the client. The exit policy is
//! checked against every resolved address before connecting; streams per circuit are limited.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use braid_registry::ExitPolicy;
use hickory_resolver::TokioResolver;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::debug;

use super::exit_braid::{BeginRefused, BraidStart, BraidTable, run_braid};
use super::limit::Limiter;
use super::{Outcome, RelayStats, next_relay_cell};
use crate::braid::{BraidSettings, link_id};
use crate::circuit::{HopBackward, HopForward};
use crate::msg::{EndReason, RelayMsg, StreamId, Target};
use crate::shared::braid::{StrandEvent, StrandLink, notify_down};
use crate::shared::io::{CellReader, CellWriter};
use crate::shared::pump::{StreamCmd, pump};
use braid_splitter::StrandId;

/// What every exit circuit shares.
pub(crate) struct ExitContext {
    pub policy: ExitPolicy,
    pub resolver: Option<TokioResolver>,
    pub connect_timeout: Duration,
    pub max_streams: usize,
    pub stream_queue: usize,
    pub circuit_queue: usize,
    pub braids: BraidTable,
    pub braid: BraidSettings,
    pub stats: Arc<RelayStats>,
}

/// A stream of this circuit: a plain one with its own task, or one strand of a braided stream.
enum StreamEntry {
    Plain {
        tx: mpsc::Sender<StreamCmd>,
        task: JoinHandle<()>,
    },
    Strand {
        strand: StrandId,
        events: mpsc::Sender<StrandEvent>,
    },
}

impl StreamEntry {
    /// A strand whose stream has ended holds no resources: it no longer counts.
    fn is_live(&self) -> bool {
        match self {
            StreamEntry::Plain { .. } => true,
            StreamEntry::Strand { events, .. } => !events.is_closed(),
        }
    }

    fn end(self, ended: Option<EndReason>) {
        match self {
            StreamEntry::Plain { task, .. } => task.abort(),
            StreamEntry::Strand { strand, events } => notify_down(events, strand, ended),
        }
    }
}

/// Runs the exit end of a circuit until it is destroyed or closed.
pub(crate) async fn run_exit<R, W>(
    reader: &mut CellReader<R>,
    writer: &mut CellWriter<W>,
    mut fwd: HopForward,
    mut back: HopBackward,
    ctx: Arc<ExitContext>,
    stats: &RelayStats,
    limiter: &Limiter,
) -> Outcome
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let (msg_tx, mut msg_rx) = mpsc::channel::<RelayMsg>(ctx.circuit_queue);
    let (done_tx, mut done_rx) = mpsc::channel::<StreamId>(ctx.max_streams.max(1));
    let mut streams: HashMap<StreamId, StreamEntry> = HashMap::new();
    let max_data = back.max_data();

    let write_loop = async {
        while let Some(msg) = msg_rx.recv().await {
            let cell = match back.seal_message(&msg) {
                Ok(c) => c,
                Err(_) => return Outcome::Protocol,
            };
            if limiter.pace(writer).await.is_err() || writer.write(&cell).await.is_err() {
                return Outcome::Closed;
            }
            if msg_rx.is_empty() {
                // Let producers run once before flushing, so a burst leaves in few packets.
                tokio::task::yield_now().await;
                if msg_rx.is_empty() && writer.flush().await.is_err() {
                    return Outcome::Closed;
                }
            }
        }
        Outcome::Closed
    };
    let read_loop = async {
        loop {
            let mut cell = match next_relay_cell(reader, true).await {
                Ok(c) => c,
                Err(outcome) => return outcome,
            };
            // Forget streams that finished meanwhile, before this cell is judged against the
            // stream limit. (Not a `select!` with the read: a cell read cancelled half way
            // would lose bytes and desynchronise the stream.)
            while let Ok(id) = done_rx.try_recv() {
                if matches!(streams.get(&id), Some(StreamEntry::Plain { .. })) {
                    streams.remove(&id);
                }
            }
            streams.retain(|_, e| e.is_live());
            // Pacing here stops reading from the client while the relay is over its rate.
            limiter.pace_incoming().await;
            let msg = match fwd.open_message(&mut cell) {
                Ok(m) => m,
                Err(crate::CellError::Integrity { .. }) => {
                    stats.inc_integrity();
                    return Outcome::Integrity;
                }
                Err(_) => return Outcome::Protocol,
            };
            stats.inc_cells();
            match msg {
                RelayMsg::Begin { stream, target } => {
                    if streams.contains_key(&stream) {
                        return Outcome::Protocol;
                    }
                    if streams.len() >= ctx.max_streams {
                        let end = RelayMsg::End {
                            stream,
                            reason: EndReason::Limit,
                        };
                        if msg_tx.send(end).await.is_err() {
                            return Outcome::Closed;
                        }
                        continue;
                    }
                    let (tx, rx) = mpsc::channel(ctx.stream_queue);
                    let task = tokio::spawn(run_stream(
                        stream,
                        target,
                        ctx.clone(),
                        max_data,
                        rx,
                        msg_tx.clone(),
                        done_tx.clone(),
                    ));
                    streams.insert(stream, StreamEntry::Plain { tx, task });
                }
                RelayMsg::BeginBraid {
                    stream,
                    secret,
                    target,
                } => {
                    if streams.contains_key(&stream) {
                        return Outcome::Protocol;
                    }
                    let begun = if streams.len() < ctx.max_streams {
                        ctx.braids.begin(link_id(&secret))
                    } else {
                        Err(BeginRefused::Full)
                    };
                    let (events_tx, events) = match begun {
                        Ok(channel) => channel,
                        Err(why) => {
                            let reason = match why {
                                BeginRefused::Full => EndReason::Limit,
                                BeginRefused::Taken => EndReason::Misc,
                            };
                            if msg_tx.send(RelayMsg::End { stream, reason }).await.is_err() {
                                return Outcome::Closed;
                            }
                            continue;
                        }
                    };
                    streams.insert(
                        stream,
                        StreamEntry::Strand {
                            strand: StrandId(0),
                            events: events_tx.clone(),
                        },
                    );
                    let start = BraidStart {
                        stream,
                        secret,
                        target,
                        max_data,
                        events,
                        events_tx,
                        to_circuit: msg_tx.clone(),
                    };
                    tokio::spawn(run_braid(start, ctx.clone(), ctx.stats.clone()));
                }
                RelayMsg::Link {
                    stream,
                    link,
                    quiet,
                } => {
                    if streams.contains_key(&stream) {
                        return Outcome::Protocol;
                    }
                    let joined = if streams.len() < ctx.max_streams {
                        ctx.braids.join(&link)
                    } else {
                        None
                    };
                    let reply = match joined {
                        Some((strand, events)) => {
                            let up = StrandEvent::Up {
                                strand,
                                link: StrandLink {
                                    tx: msg_tx.clone(),
                                    stream,
                                },
                            };
                            if events.send(up).await.is_ok() {
                                streams.insert(stream, StreamEntry::Strand { strand, events });
                                if quiet {
                                    continue;
                                }
                                RelayMsg::Linked { stream }
                            } else {
                                RelayMsg::End {
                                    stream,
                                    reason: EndReason::Misc,
                                }
                            }
                        }
                        None => RelayMsg::End {
                            stream,
                            reason: EndReason::Misc,
                        },
                    };
                    if msg_tx.send(reply).await.is_err() {
                        return Outcome::Closed;
                    }
                }
                RelayMsg::Data { stream, data } => {
                    let alive = match streams.get(&stream) {
                        Some(StreamEntry::Plain { tx, .. }) => {
                            tx.send(StreamCmd::Data(data.into())).await.is_ok()
                        }
                        Some(StreamEntry::Strand { strand, events }) => {
                            let ev = StrandEvent::Fragment {
                                strand: *strand,
                                bytes: data.into(),
                            };
                            events.send(ev).await.is_ok()
                        }
                        None => true,
                    };
                    if !alive {
                        streams.remove(&stream);
                    }
                }
                RelayMsg::Eof { stream } => {
                    if let Some(StreamEntry::Plain { tx, .. }) = streams.get(&stream) {
                        let _ = tx.send(StreamCmd::Eof).await;
                    }
                }
                RelayMsg::End { stream, reason } => {
                    if let Some(s) = streams.remove(&stream) {
                        s.end(Some(reason));
                    }
                }
                RelayMsg::Connected { .. } | RelayMsg::Linked { .. } => return Outcome::Protocol,
                RelayMsg::Unknown { command, .. } => {
                    debug!(command, "ignoring unknown relay command");
                }
            }
        }
    };
    let outcome = tokio::select! {
        o = read_loop => o,
        o = write_loop => o,
    };
    for (_, s) in streams.drain() {
        s.end(None);
    }
    outcome
}

async fn run_stream(
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
    let allowed: Vec<IpAddr> = candidates
        .into_iter()
        .filter(|ip| ctx.policy.allows(*ip, port))
        .collect();
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
