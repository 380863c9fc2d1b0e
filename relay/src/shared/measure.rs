//! The measurer's side of a measurement circuit (PROTOCOL.md §6.2): a registry measures one
//! relay's bandwidth with a timed echo through it.
//!
//! [`measure`] builds a one-hop measurement circuit to the relay (the one-round-trip Noise NK
//! build, next flag 2), sends `BeginMeasure`, the `Data` cells of
//! [`payload`] under a fresh key and `Eof`, while it reads the echoes
//! back, checks each against what it sent, and times them with a
//! [`Meter`]. Sending and reading run at once, so the transfer is as
//! fast as the relay relays (and the link carries). The circuit is then destroyed.
//!
//! Not here: which relay to measure when (the registry's scheduler), the echo rules
//! (`crate::measure::Echo`), the relay's side (`service`).

use std::time::{Duration, Instant};

use braid_transport::{Multiaddr, PeerId, Transport, compat};

use crate::cell::{Cell, CellKind, DestroyReason};
use crate::error::{CellError, RelayError};
use crate::handshake::{CircuitRequest, HopSpec};
use crate::measure::{MEASURE_MAX_BYTES, Meter, cells_for, payload};
use crate::msg::{EndReason, RelayMsg, StreamId};
use crate::shared::CIRCUIT_PROTOCOL;
use crate::shared::io::{CellReader, CellWriter};

/// The stream id a measurement uses (a measurement circuit carries one stream).
const STREAM: StreamId = StreamId(1);

/// One measurement to run.
#[derive(Debug, Clone)]
pub struct MeasureRequest {
    /// The relay's peer id.
    pub peer: PeerId,
    /// The relay as a circuit hop: peer id bytes, addresses (multiaddr text) and onion key, from
    /// its descriptor.
    pub hop: HopSpec,
    /// `Data` bytes to send and have echoed, 1..=[`MEASURE_MAX_BYTES`].
    pub bytes: u64,
    /// Key of the payload stream: 32 fresh random bytes per measurement, so the relay cannot
    /// send an echo before it received the cell.
    pub key: [u8; 32],
    /// Bound on the whole measurement, the circuit build included.
    pub timeout: Duration,
}

/// What one measurement found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measurement {
    /// The measured rate ([`Meter::rate`]), bytes per second.
    pub bytes_per_sec: u64,
    /// `Data` bytes echoed intact.
    pub echoed: u64,
    /// From the first cell sent to the last echo received.
    pub elapsed: Duration,
}

/// Measures the relay `req` names through `transport`. Fails if the circuit cannot be built,
/// the relay refuses or ends the measurement, an echo differs from what was sent, or
/// `req.timeout` passes.
pub async fn measure(
    transport: &Transport,
    req: MeasureRequest,
) -> Result<Measurement, RelayError> {
    if !(1..=MEASURE_MAX_BYTES).contains(&req.bytes) {
        return Err(RelayError::Config(format!(
            "measurement bytes must be 1..={MEASURE_MAX_BYTES}"
        )));
    }
    let timeout = req.timeout;
    tokio::time::timeout(timeout, run(transport, req))
        .await
        .map_err(|_| RelayError::Timeout("measuring a relay"))?
}

async fn run(transport: &Transport, req: MeasureRequest) -> Result<Measurement, RelayError> {
    let addrs: Vec<Multiaddr> = req
        .hop
        .addresses
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect();
    if !addrs.is_empty() {
        transport.add_addresses(req.peer, addrs).await?;
    }
    let (pending, create) = CircuitRequest::new_measurement(std::slice::from_ref(&req.hop))?;
    let stream = transport.open_stream(req.peer, CIRCUIT_PROTOCOL).await?;
    let (r, w) = tokio::io::split(compat(stream));
    let mut reader = CellReader::new(r);
    let mut writer = CellWriter::new(w);
    writer
        .send(&Cell::with_content(CellKind::Create, &create)?)
        .await?;
    let reply = reader
        .read()
        .await?
        .ok_or(RelayError::Destroyed(DestroyReason::Finished))?;
    let created = match reply.kind {
        CellKind::Created => reply,
        CellKind::Destroy => return Err(RelayError::Destroyed(reply.destroy_reason())),
        _ => return Err(CellError::Unexpected("cell kind during a measurement build").into()),
    };
    let (mut fwd, mut back) = pending.finish(&created.body[..])?.split();
    let max = fwd.max_data();
    let cells = cells_for(req.bytes, max);
    let key = req.key;
    let started = Instant::now();

    let send = async {
        writer
            .write(&fwd.encrypt(&RelayMsg::BeginMeasure { stream: STREAM })?)
            .await?;
        for i in 0..cells {
            let data = payload(&key, i, chunk_len(req.bytes, max, i));
            let msg = RelayMsg::Data {
                stream: STREAM,
                data: data.into(),
            };
            writer.write(&fwd.encrypt(&msg)?).await?;
        }
        writer
            .write(&fwd.encrypt(&RelayMsg::Eof { stream: STREAM })?)
            .await?;
        writer.flush().await?;
        Ok::<_, RelayError>(())
    };
    let recv = async {
        let mut meter = Meter::new(cells);
        loop {
            let mut cell = reader
                .read()
                .await?
                .ok_or(RelayError::Destroyed(DestroyReason::Finished))?;
            match cell.kind {
                CellKind::Relay => {}
                CellKind::Destroy => return Err(RelayError::Destroyed(cell.destroy_reason())),
                _ => return Err(CellError::Unexpected("cell kind during a measurement").into()),
            }
            match back.decrypt(&mut cell)? {
                RelayMsg::Data { stream, data } if stream == STREAM => {
                    let k = meter.echoes();
                    if k >= cells || data[..] != payload(&key, k, chunk_len(req.bytes, max, k))[..]
                    {
                        return Err(CellError::Unexpected("an altered or extra echo").into());
                    }
                    meter.on_echo(started.elapsed());
                }
                RelayMsg::Eof { stream } if stream == STREAM && meter.complete() => {
                    return Ok(meter);
                }
                RelayMsg::End {
                    reason: EndReason::Limit,
                    ..
                } => {
                    return Err(RelayError::Limit(
                        "the relay's measurement bound (End Limit)",
                    ));
                }
                RelayMsg::Unknown { .. } => {}
                _ => return Err(CellError::Unexpected("message during a measurement").into()),
            }
        }
    };
    let result = tokio::try_join!(send, recv);
    let elapsed = started.elapsed();
    let _ = writer.send(&Cell::destroy(DestroyReason::Finished)).await;
    writer.close().await;
    let ((), meter) = result?;
    let rate = meter
        .rate()
        .ok_or(CellError::Unexpected("an incomplete measurement"))?;
    Ok(Measurement {
        bytes_per_sec: rate,
        echoed: req.bytes,
        elapsed,
    })
}

/// Bytes of the `i`-th `Data` cell: full cells of `max`, the last one what is left.
fn chunk_len(total: u64, max: usize, i: u64) -> usize {
    let left = total.saturating_sub(i.saturating_mul(max as u64));
    usize::try_from(left.min(max as u64)).unwrap_or(max)
}
