//! Measurement circuits (PROTOCOL.md §6.2) on real relays over loopback QUIC: the echo comes
//! back intact, bytes past the bound end the stream with `End{Limit}`, the concurrency bound
//! holds, and an ordinary circuit neither accepts `BeginMeasure` nor changes.

use std::time::Duration;

use braid_directory::ExitPolicy;
use braid_relay::cell::{Cell, CellKind, DestroyReason};
use braid_relay::handshake::{CircuitRequest, HopSpec};
use braid_relay::measure::MEASURE_MAX_BYTES;
use braid_relay::service::{Faults, RelayLimits, RelayService, RelayServiceConfig};
use braid_relay::shared::CIRCUIT_PROTOCOL;
use braid_relay::shared::io::{CellReader, CellWriter};
use braid_relay::shared::measure::{MeasureRequest, measure};
use braid_relay::{ClientCircuit, EndReason, RelayError, RelayMsg, StreamId};
use braid_transport::{Identity, Stream, Transport, TransportConfig, compat};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::time::timeout;
use tokio_util::compat::Compat;
use x25519_dalek::{PublicKey, StaticSecret};

const STEP: Duration = Duration::from_secs(60);
const S: StreamId = StreamId(1);

type Reader = CellReader<ReadHalf<Compat<Stream>>>;
type Writer = CellWriter<WriteHalf<Compat<Stream>>>;

async fn transport(listen: bool) -> Transport {
    let listen = if listen {
        vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()]
    } else {
        Vec::new()
    };
    let config = TransportConfig {
        listen,
        ..TransportConfig::default()
    };
    Transport::start(Identity::generate(), config)
        .await
        .unwrap()
}

struct Relay {
    transport: Transport,
    service: RelayService,
    hop: HopSpec,
}

async fn relay(exit: bool, limits: RelayLimits) -> Relay {
    let transport = transport(true).await;
    let secret = [0x5a; 32];
    let service = RelayService::start(
        transport.clone(),
        RelayServiceConfig {
            onion_secret: secret,
            exit_policy: if exit {
                ExitPolicy::accept_all()
            } else {
                ExitPolicy::reject_all()
            },
            limits,
            faults: Faults::default(),
            bandwidth: None,
            accounting: None,
        },
    )
    .unwrap();
    let hop = HopSpec {
        peer_id: transport.peer_id().to_bytes(),
        addresses: transport
            .listen_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect(),
        onion_key: PublicKey::from(&StaticSecret::from(secret)).to_bytes(),
    };
    Relay {
        transport,
        service,
        hop,
    }
}

/// Builds a one-hop circuit (a measurement one if `measurement`) from `client` to `relay`;
/// `Err` carries the `Destroy` reason the relay answered.
async fn circuit(
    client: &Transport,
    relay: &Relay,
    measurement: bool,
) -> Result<(ClientCircuit, Reader, Writer), DestroyReason> {
    let path = std::slice::from_ref(&relay.hop);
    let (pending, create) = if measurement {
        CircuitRequest::new_measurement(path).unwrap()
    } else {
        CircuitRequest::new(path).unwrap()
    };
    client
        .add_addresses(relay.transport.peer_id(), relay.transport.listen_addrs())
        .await
        .unwrap();
    let stream = client
        .open_stream(relay.transport.peer_id(), CIRCUIT_PROTOCOL)
        .await
        .unwrap();
    let (r, w) = tokio::io::split(compat(stream));
    let mut reader = CellReader::new(r);
    let mut writer = CellWriter::new(w);
    writer
        .send(&Cell::with_content(CellKind::Create, &create).unwrap())
        .await
        .unwrap();
    let reply = reader.read().await.unwrap().unwrap();
    match reply.kind {
        CellKind::Created => Ok((pending.finish(&reply.body[..]).unwrap(), reader, writer)),
        CellKind::Destroy => Err(reply.destroy_reason()),
        other => panic!("unexpected {other:?}"),
    }
}

/// Reads the next relay message, or the `Destroy` reason that ended the circuit.
async fn next(c: &mut ClientCircuit, r: &mut Reader) -> Result<RelayMsg, DestroyReason> {
    let mut cell = timeout(STEP, r.read()).await.unwrap().unwrap().unwrap();
    match cell.kind {
        CellKind::Relay => Ok(c.decrypt_backward(&mut cell).unwrap()),
        CellKind::Destroy => Err(cell.destroy_reason()),
        other => panic!("unexpected {other:?}"),
    }
}

fn request(relay: &Relay, bytes: u64) -> MeasureRequest {
    MeasureRequest {
        peer: relay.transport.peer_id(),
        hop: relay.hop.clone(),
        bytes,
        key: rand_key(),
        timeout: STEP,
    }
}

fn rand_key() -> [u8; 32] {
    *blake3::hash(format!("{:?}", std::time::Instant::now()).as_bytes()).as_bytes()
}

#[tokio::test]
async fn a_non_exit_relay_echoes_a_measurement_intact() {
    let r = relay(false, RelayLimits::default()).await;
    let client = transport(false).await;
    let bytes = 300_000;
    let m = timeout(STEP, measure(&client, request(&r, bytes)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.echoed, bytes);
    assert!(m.bytes_per_sec > 0);
    // Every data cell crossed the relay's circuit machinery (BeginMeasure + data + Eof).
    let cells = r
        .service
        .stats()
        .cells
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(cells >= bytes.div_ceil(4072) + 2, "{cells}");
    // An ordinary circuit to the same (non-exit) relay is still refused as before.
    assert_eq!(
        circuit(&client, &r, false).await.err(),
        Some(DestroyReason::Protocol)
    );
    // Over the bound: refused before anything is sent.
    assert!(matches!(
        measure(&client, request(&r, MEASURE_MAX_BYTES + 1)).await,
        Err(RelayError::Config(_))
    ));
}

#[tokio::test]
async fn bytes_past_the_bound_get_end_limit() {
    let r = relay(false, RelayLimits::default()).await;
    let client = transport(false).await;
    let (mut c, mut reader, mut writer) = circuit(&client, &r, true).await.unwrap();
    let max = c.max_data();
    let send = async {
        let begin = c
            .encrypt_forward(&RelayMsg::BeginMeasure { stream: S })
            .unwrap();
        writer.write(&begin).await.unwrap();
        let cells = MEASURE_MAX_BYTES / max as u64 + 1;
        let mut cells_out = Vec::new();
        for i in 0..cells {
            let msg = RelayMsg::Data {
                stream: S,
                data: vec![(i % 251) as u8; max].into(),
            };
            cells_out.push(c.encrypt_forward(&msg).unwrap());
        }
        (cells, cells_out)
    };
    let (cells, out) = send.await;
    // Split: the client keeps one circuit state; send everything, then read every answer.
    let writer_task = async {
        for cell in &out {
            writer.write(cell).await.unwrap();
        }
        writer.flush().await.unwrap();
    };
    let reader_task = async {
        let mut echoed = 0u64;
        loop {
            match next(&mut c, &mut reader).await.unwrap() {
                RelayMsg::Data { stream, data } => {
                    assert_eq!(stream, S);
                    assert!(data.iter().all(|b| *b == data[0]));
                    echoed += data.len() as u64;
                }
                RelayMsg::End { stream, reason } => {
                    assert_eq!((stream, reason), (S, EndReason::Limit));
                    return echoed;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    };
    let ((), echoed) = timeout(STEP, async { tokio::join!(writer_task, reader_task) })
        .await
        .unwrap();
    assert_eq!(echoed, (cells - 1) * max as u64);
    assert!(echoed <= MEASURE_MAX_BYTES);
}

#[tokio::test]
async fn measurement_circuits_are_bounded_and_exit_circuits_refuse_them() {
    let limits = RelayLimits {
        max_measure_circuits: 1,
        ..RelayLimits::default()
    };
    let r = relay(true, limits).await;
    let client = transport(false).await;
    // One measurement circuit holds the only slot; the next is refused.
    let held = circuit(&client, &r, true).await.unwrap();
    assert_eq!(
        circuit(&client, &r, true).await.err(),
        Some(DestroyReason::ResourceLimit)
    );
    drop(held);
    // An ordinary exit circuit still works (a Begin is answered) and refuses BeginMeasure.
    let (mut c, mut reader, mut writer) = circuit(&client, &r, false).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let begin = RelayMsg::Begin {
        stream: S,
        target: braid_relay::Target::Ip(listener.local_addr().unwrap()),
    };
    writer
        .send(&c.encrypt_forward(&begin).unwrap())
        .await
        .unwrap();
    assert_eq!(
        next(&mut c, &mut reader).await,
        Ok(RelayMsg::Connected { stream: S })
    );
    let measure_msg = RelayMsg::BeginMeasure {
        stream: StreamId(2),
    };
    writer
        .send(&c.encrypt_forward(&measure_msg).unwrap())
        .await
        .unwrap();
    assert_eq!(
        next(&mut c, &mut reader).await,
        Err(DestroyReason::Protocol)
    );
    // The slot came back once the held circuit closed.
    let mut freed = false;
    for _ in 0..50 {
        if circuit(&client, &r, true).await.is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed);
}
