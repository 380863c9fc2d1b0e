//! One incoming circuit hop: the handshake, extending to the next hop, and forwarding.
//!
//! A middle hop forwards in both directions at once (one future per direction); whichever ends
//! first decides the outcome, and the hop then sends `Destroy` to whichever side did not cause
//! the end. The exit hands its half to [`super::exit::run_exit`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use braid_transport::{Multiaddr, PeerId, Stream, compat};
use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio_util::compat::Compat;
use tracing::debug;

use super::{Faults, Outcome, Shared, next_relay_cell};
use crate::cell::{Cell, CellKind, DestroyReason};
use crate::circuit::{HopBackward, HopForward};
use crate::handshake::{AcceptedHop, NextHop, accept_create, trim_created};
use crate::shared::CIRCUIT_PROTOCOL;
use crate::shared::io::{CellReader, CellWriter};
use crate::stats::RefusalReason;

/// Handles one stream opened to us by a previous hop.
pub(crate) async fn handle(shared: Arc<Shared>, peer: PeerId, stream: Stream) {
    let (r, w) = tokio::io::split(compat(stream));
    let mut up_r = CellReader::new(r);
    let mut up_w = CellWriter::new(w);
    let limits = &shared.config.limits;

    let Ok(_circuit) = shared.circuits.clone().try_acquire_owned() else {
        shared.stats.refuse(RefusalReason::CircuitLimit);
        let _ = up_w
            .send(&Cell::destroy(DestroyReason::ResourceLimit))
            .await;
        return;
    };
    if !shared.limiter.admits_new_circuit() {
        // Hibernating: the accounting budget of this period is spent.
        shared.stats.refuse(RefusalReason::Hibernating);
        let _ = up_w
            .send(&Cell::destroy(DestroyReason::ResourceLimit))
            .await;
        return;
    }
    let Some(_slot) = shared.peer_slot(peer) else {
        shared.stats.refuse(RefusalReason::PeerLimit);
        let _ = up_w
            .send(&Cell::destroy(DestroyReason::ResourceLimit))
            .await;
        return;
    };

    let first = match tokio::time::timeout(limits.handshake_timeout, up_r.read()).await {
        Ok(Ok(Some(c))) if c.kind == CellKind::Create => c,
        Ok(Ok(Some(_))) | Ok(Err(_)) => {
            let _ = up_w.send(&Cell::destroy(DestroyReason::Protocol)).await;
            return;
        }
        Ok(Ok(None)) => return,
        Err(_) => {
            let _ = up_w.send(&Cell::destroy(DestroyReason::Timeout)).await;
            return;
        }
    };
    let started = Instant::now();
    if shared.config.faults.stall.load(Ordering::Relaxed) {
        // Fault: hold the circuit, answer nothing, until the client gives up.
        while let Ok(Some(_)) = up_r.read().await {}
        return;
    }
    let accepted = match accept_create(&shared.config.onion_secret, &first.body[..]) {
        Ok(a) => a,
        Err(e) => {
            debug!(error = %e, "bad create cell");
            let _ = up_w.send(&Cell::destroy(DestroyReason::Protocol)).await;
            return;
        }
    };
    if accepted.is_measurement() {
        return run_as_measure(&shared, accepted, up_r, up_w, started).await;
    }
    match accepted.next().cloned() {
        None => run_as_exit(&shared, accepted, up_r, up_w, started).await,
        Some(next) => run_as_middle(&shared, accepted, next, up_r, up_w, started).await,
    }
}

async fn run_as_exit<R, W>(
    shared: &Arc<Shared>,
    accepted: AcceptedHop,
    mut up_r: CellReader<R>,
    mut up_w: CellWriter<W>,
    started: Instant,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if !shared.config.exit_policy.is_exit() {
        // Not an exit: refuse rather than silently act as one.
        let _ = up_w.send(&Cell::destroy(DestroyReason::Protocol)).await;
        return;
    }
    let Ok((hop, created)) = accepted.reply(None) else {
        let _ = up_w.send(&Cell::destroy(DestroyReason::Protocol)).await;
        return;
    };
    let Ok(cell) = Cell::with_content(CellKind::Created, &created) else {
        return;
    };
    if up_w.send(&cell).await.is_err() {
        return;
    }
    shared.stats.handshake_latency.observe(started.elapsed());
    let (fwd, back) = hop.split();
    let outcome = super::exit::run_exit(
        &mut up_r,
        &mut up_w,
        fwd,
        back,
        shared.exit.clone(),
        &shared.stats,
        &shared.limiter,
    )
    .await;
    debug!(?outcome, "exit circuit ended");
    if let Some(reason) = reason_for_up(outcome) {
        let _ = up_w.send(&Cell::destroy(reason)).await;
    }
    up_w.close().await;
}

/// The last hop of a measurement circuit: any relay, exit or not, within
/// `max_measure_circuits` at once.
async fn run_as_measure<R, W>(
    shared: &Arc<Shared>,
    accepted: AcceptedHop,
    mut up_r: CellReader<R>,
    mut up_w: CellWriter<W>,
    started: Instant,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Ok(_measure) = shared.measures.clone().try_acquire_owned() else {
        shared.stats.refuse(RefusalReason::MeasureLimit);
        let _ = up_w
            .send(&Cell::destroy(DestroyReason::ResourceLimit))
            .await;
        return;
    };
    let Ok((hop, created)) = accepted.reply(None) else {
        let _ = up_w.send(&Cell::destroy(DestroyReason::Protocol)).await;
        return;
    };
    let Ok(cell) = Cell::with_content(CellKind::Created, &created) else {
        return;
    };
    if up_w.send(&cell).await.is_err() {
        return;
    }
    shared.stats.handshake_latency.observe(started.elapsed());
    let (fwd, back) = hop.split();
    let outcome = super::measure::run_measure(
        &mut up_r,
        &mut up_w,
        fwd,
        back,
        &shared.stats,
        &shared.limiter,
        super::MEASURE_CIRCUIT_LIFETIME,
    )
    .await;
    debug!(?outcome, "measurement circuit ended");
    let reason = match outcome {
        Some(o) => reason_for_up(o),
        None => Some(DestroyReason::Timeout),
    };
    if let Some(reason) = reason {
        let _ = up_w.send(&Cell::destroy(reason)).await;
    }
    up_w.close().await;
}

async fn run_as_middle<R, W>(
    shared: &Arc<Shared>,
    accepted: AcceptedHop,
    next: NextHop,
    mut up_r: CellReader<R>,
    mut up_w: CellWriter<W>,
    started: Instant,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let limits = &shared.config.limits;
    let extend = tokio::time::timeout(limits.handshake_timeout, extend(shared, &next)).await;
    let (mut down_r, mut down_w, created) = match extend {
        Ok(Ok(x)) => x,
        Ok(Err(reason)) => {
            let _ = up_w.send(&Cell::destroy(reason)).await;
            return;
        }
        Err(_) => {
            let _ = up_w.send(&Cell::destroy(DestroyReason::Timeout)).await;
            return;
        }
    };
    let reply = trim_created(&created.body[..])
        .ok()
        .and_then(|inner| accepted.reply(Some(inner)).ok());
    let Some((hop, content)) = reply else {
        let _ = up_w.send(&Cell::destroy(DestroyReason::Protocol)).await;
        let _ = down_w.send(&Cell::destroy(DestroyReason::Protocol)).await;
        return;
    };
    let Ok(cell) = Cell::with_content(CellKind::Created, &content) else {
        return;
    };
    if up_w.send(&cell).await.is_err() {
        let _ = down_w.send(&Cell::destroy(DestroyReason::Finished)).await;
        return;
    }
    shared.stats.handshake_latency.observe(started.elapsed());
    let (mut fwd, mut back) = hop.split();
    let faults = take_faults(&shared.config.faults);
    let outcome = tokio::select! {
        o = forward(&mut up_r, &mut down_w, &mut fwd, faults, shared) => o,
        o = backward(&mut down_r, &mut up_w, &mut back, shared) => o,
    };
    debug!(?outcome, "middle circuit ended");
    if let Some(reason) = reason_for_up(outcome) {
        let _ = up_w.send(&Cell::destroy(reason)).await;
    }
    if let Some(reason) = reason_for_down(outcome) {
        let _ = down_w.send(&Cell::destroy(reason)).await;
    }
    up_w.close().await;
    down_w.close().await;
}

type DownReader = CellReader<ReadHalf<Compat<Stream>>>;
type DownWriter = CellWriter<WriteHalf<Compat<Stream>>>;

/// Opens the stream to the next hop and performs its part of the build. Returns the stream's
/// cell reader and writer and the next hop's `Created` cell.
async fn extend(
    shared: &Arc<Shared>,
    next: &NextHop,
) -> Result<(DownReader, DownWriter, Cell), DestroyReason> {
    let peer = PeerId::from_bytes(&next.peer_id).map_err(|_| DestroyReason::Protocol)?;
    if peer == shared.transport.peer_id() {
        return Err(DestroyReason::Protocol);
    }
    let addrs: Vec<Multiaddr> = next
        .addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if addrs.is_empty() {
        return Err(DestroyReason::Protocol);
    }
    shared
        .transport
        .add_addresses(peer, addrs)
        .await
        .map_err(|_| DestroyReason::NextHopUnreachable)?;
    let stream = shared
        .transport
        .open_stream(peer, CIRCUIT_PROTOCOL)
        .await
        .map_err(|e| {
            debug!(error = %e, "extend failed");
            DestroyReason::NextHopUnreachable
        })?;
    let (r, w) = tokio::io::split(compat(stream));
    let mut down_r = CellReader::new(r);
    let mut down_w = CellWriter::new(w);
    let create =
        Cell::with_content(CellKind::Create, &next.create).map_err(|_| DestroyReason::Protocol)?;
    down_w
        .send(&create)
        .await
        .map_err(|_| DestroyReason::NextHopUnreachable)?;
    let reply = down_r
        .read()
        .await
        .map_err(|_| DestroyReason::NextHopUnreachable)?
        .ok_or(DestroyReason::NextHopUnreachable)?;
    match reply.kind {
        CellKind::Created => Ok((down_r, down_w, reply)),
        CellKind::Destroy => Err(reply.destroy_reason()),
        _ => Err(DestroyReason::Protocol),
    }
}

/// Faults for this circuit, if any are still armed.
fn take_faults(f: &Faults) -> Option<Faults> {
    if f.flip_bit_at_cell.is_none() && f.replay_at_cell.is_none() {
        return None;
    }
    let took = f
        .remaining
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    took.then(|| f.clone())
}

/// Client-to-exit direction at a middle hop.
async fn forward<R, W>(
    up_r: &mut CellReader<R>,
    down_w: &mut CellWriter<W>,
    fwd: &mut HopForward,
    faults: Option<Faults>,
    shared: &Arc<Shared>,
) -> Outcome
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut n: u64 = 0;
    loop {
        let mut cell = match next_relay_cell(up_r, true).await {
            Ok(c) => c,
            Err(outcome) => return outcome,
        };
        if fwd.peel(&mut cell.body).is_err() {
            shared.stats.inc_integrity();
            return Outcome::Integrity;
        }
        shared.stats.inc_cells();
        n += 1;
        let mut copies = 1;
        if let Some(f) = &faults {
            if f.flip_bit_at_cell == Some(n) {
                cell.body[0] ^= 0x01;
            }
            if f.replay_at_cell == Some(n) {
                copies = 2;
            }
        }
        for _ in 0..copies {
            if shared.limiter.pace(down_w).await.is_err() || down_w.write(&cell).await.is_err() {
                return Outcome::Closed;
            }
            shared.stats.inc_cells_out();
        }
        if !up_r.has_buffered_cell() && down_w.flush().await.is_err() {
            return Outcome::Closed;
        }
    }
}

/// Exit-to-client direction at a middle hop.
async fn backward<R, W>(
    down_r: &mut CellReader<R>,
    up_w: &mut CellWriter<W>,
    back: &mut HopBackward,
    shared: &Arc<Shared>,
) -> Outcome
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    loop {
        let mut cell = match next_relay_cell(down_r, false).await {
            Ok(c) => c,
            Err(outcome) => return outcome,
        };
        if back.wrap(&mut cell.body).is_err() {
            return Outcome::Protocol;
        }
        shared.stats.inc_cells();
        if shared.limiter.pace(up_w).await.is_err() || up_w.write(&cell).await.is_err() {
            return Outcome::Closed;
        }
        shared.stats.inc_cells_out();
        if !down_r.has_buffered_cell() && up_w.flush().await.is_err() {
            return Outcome::Closed;
        }
    }
}

/// The `Destroy` to send towards the client, if any.
fn reason_for_up(o: Outcome) -> Option<DestroyReason> {
    match o {
        Outcome::DestroyedFromUp(_) => None,
        Outcome::DestroyedFromDown(r) => Some(r),
        Outcome::Integrity => Some(DestroyReason::Integrity),
        Outcome::Protocol => Some(DestroyReason::Protocol),
        Outcome::Closed => Some(DestroyReason::Finished),
    }
}

/// The `Destroy` to send towards the exit, if any.
fn reason_for_down(o: Outcome) -> Option<DestroyReason> {
    match o {
        Outcome::DestroyedFromUp(r) => Some(r),
        Outcome::DestroyedFromDown(_) => None,
        Outcome::Integrity => Some(DestroyReason::Integrity),
        Outcome::Protocol => Some(DestroyReason::Protocol),
        Outcome::Closed => Some(DestroyReason::Finished),
    }
}
