//! Criterion benches of the onion core: per-hop cell layers, whole-circuit cell processing and
//! circuit handshakes.
//!
//! Layer benches process one full cell body ([`BODY_LEN`] bytes) and report bytes/s; they compare
//! the crate's ring-based [`LayerKey`] with the RustCrypto `chacha20poly1305` crate on the same
//! nonce, AAD and buffer layout. Handshake benches report builds (or hop handshakes) per second.
//! Results are recorded in `relay/PROTOCOL.md` ("Performance").

use std::hint::black_box;

use braid_relay::cell::{BODY_LEN, CELL_VERSION};
use braid_relay::handshake::{AcceptedHop, CircuitRequest, HopSpec, accept_create};
use braid_relay::layer::{Direction, LayerKey, TAG_LEN, layer_len};
use braid_relay::{ClientCircuit, HopCircuit, RelayMsg, StreamId};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Tag};
use criterion::{BatchSize, Criterion, Throughput, criterion_main};
use x25519_dalek::{PublicKey, StaticSecret};

const KEY: [u8; 32] = [0x5a; 32];
/// AAD of a forward layer: `[cell version, direction 0]`.
const AAD_FORWARD: [u8; 2] = [CELL_VERSION, 0];

/// The nonce `LayerKey` uses for `counter`: 4 zero bytes, then the counter little-endian.
fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    n
}

fn body() -> Box<[u8; BODY_LEN]> {
    let mut b = Box::new([0u8; BODY_LEN]);
    for (i, x) in b.iter_mut().enumerate() {
        *x = i as u8;
    }
    b
}

/// One full-body layer (hop 1 of a circuit), sealed and opened, with ring and with RustCrypto.
fn layer(c: &mut Criterion) {
    let len = layer_len(1);
    let mut g = c.benchmark_group("layer");
    g.throughput(Throughput::Bytes(BODY_LEN as u64));

    g.bench_function("ring_seal_4094", |b| {
        let mut key = LayerKey::new(&KEY, Direction::Forward, 0);
        let mut buf = body();
        b.iter(|| key.seal(black_box(&mut buf[..]), len).expect("seal"));
    });
    g.bench_function("ring_open_4094", |b| {
        let mut tx = LayerKey::new(&KEY, Direction::Forward, 0);
        let mut rx = LayerKey::new(&KEY, Direction::Forward, 0);
        // Each input is sealed with the next counter; criterion runs the routine on the inputs in
        // the order they were made, so the receiving counter stays in step.
        b.iter_batched(
            || {
                let mut buf = body();
                tx.seal(&mut buf[..], len).expect("seal");
                buf
            },
            |mut buf| {
                rx.open(black_box(&mut buf[..]), len, 1).expect("open");
                buf
            },
            BatchSize::SmallInput,
        );
    });

    let aead = ChaCha20Poly1305::new((&KEY).into());
    g.bench_function("rustcrypto_seal_4094", |b| {
        let mut counter = 0u64;
        let mut buf = body();
        b.iter(|| {
            let (data, tag_out) = buf[..len].split_at_mut(len - TAG_LEN);
            let tag = aead
                .encrypt_in_place_detached((&nonce(counter)).into(), &AAD_FORWARD, black_box(data))
                .expect("encrypt");
            tag_out.copy_from_slice(&tag);
            counter += 1;
        });
    });
    g.bench_function("rustcrypto_open_4094", |b| {
        let mut sealed = body();
        let (data, tag_out) = sealed[..len].split_at_mut(len - TAG_LEN);
        let tag = aead
            .encrypt_in_place_detached((&nonce(0)).into(), &AAD_FORWARD, data)
            .expect("encrypt");
        tag_out.copy_from_slice(&tag);
        b.iter_batched(
            || sealed.clone(),
            |mut buf| {
                let (data, tag_in) = buf[..len].split_at_mut(len - TAG_LEN);
                let tag = Tag::clone_from_slice(tag_in);
                aead.decrypt_in_place_detached((&nonce(0)).into(), &AAD_FORWARD, data, &tag)
                    .expect("decrypt");
                buf
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

struct Hop {
    secret: [u8; 32],
    spec: HopSpec,
}

fn hop(seed: u8) -> Hop {
    let secret = [seed; 32];
    let public = PublicKey::from(&StaticSecret::from(secret)).to_bytes();
    Hop {
        secret,
        spec: HopSpec {
            peer_id: vec![seed; 38],
            addresses: vec![format!("/ip4/127.0.0.{seed}/udp/4000/quic-v1")],
            onion_key: public,
        },
    }
}

fn path() -> Vec<Hop> {
    vec![hop(1), hop(2), hop(3)]
}

/// The relays' part of a build, as in `tests/it/onion.rs`: accept, extend, reply innermost first.
fn relay_chain(hops: &[Hop], create: &[u8]) -> (Vec<HopCircuit>, Vec<u8>) {
    let accepted = accept_create(&hops[0].secret, create).expect("accept");
    match accepted.next().cloned() {
        Some(next) => {
            let (mut rest, inner) = relay_chain(&hops[1..], &next.create);
            let (state, created) = accepted.reply(Some(&inner)).expect("reply");
            rest.insert(0, state);
            (rest, created)
        }
        None => {
            let (state, created) = accepted.reply(None).expect("reply");
            (vec![state], created)
        }
    }
}

fn build(hops: &[Hop]) -> (ClientCircuit, Vec<HopCircuit>) {
    let specs: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let (req, create) = CircuitRequest::new(&specs).expect("request");
    let (relays, created) = relay_chain(hops, &create);
    (req.finish(&created).expect("finish"), relays)
}

/// Whole-circuit cell processing on a 3-hop circuit with full `Data` cells.
fn circuit(c: &mut Criterion) {
    let hops = path();
    let mut g = c.benchmark_group("circuit");
    g.throughput(Throughput::Bytes(BODY_LEN as u64));

    g.bench_function("client_encrypt_forward_3_hops", |b| {
        let (mut client, _relays) = build(&hops);
        let msg = RelayMsg::Data {
            stream: StreamId(1),
            data: vec![0xab; client.max_data()].into(),
        };
        b.iter(|| client.encrypt_forward(black_box(&msg)).expect("encrypt"));
    });
    g.bench_function("hop_peel_forward", |b| {
        let (mut client, mut relays) = build(&hops);
        let msg = RelayMsg::Data {
            stream: StreamId(1),
            data: vec![0xab; client.max_data()].into(),
        };
        b.iter_batched(
            || client.encrypt_forward(&msg).expect("encrypt"),
            |mut cell| {
                relays[0]
                    .peel_forward(black_box(&mut cell.body))
                    .expect("peel");
                cell
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("client_decrypt_backward_3_hops", |b| {
        let (mut client, mut relays) = build(&hops);
        let msg = RelayMsg::Data {
            stream: StreamId(1),
            data: vec![0xcd; relays[2].max_data()].into(),
        };
        b.iter_batched(
            || {
                let mut cell = relays[2].seal_message(&msg).expect("seal");
                relays[1].wrap_backward(&mut cell.body).expect("wrap");
                relays[0].wrap_backward(&mut cell.body).expect("wrap");
                cell
            },
            |mut cell| {
                client
                    .decrypt_backward(black_box(&mut cell))
                    .expect("decrypt")
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

/// Circuit builds and single-hop handshakes per second.
fn handshake(c: &mut Criterion) {
    let hops = path();
    let specs: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));

    g.bench_function("build_3_hops", |b| {
        b.iter(|| {
            let (req, create) = CircuitRequest::new(black_box(&specs)).expect("request");
            let (relays, created) = relay_chain(&hops, &create);
            (req.finish(&created).expect("finish"), relays)
        });
    });

    // An exit's handshake: a one-hop Create (the relay side keeps no replay state, so one
    // request can be accepted many times).
    let (_req, exit_create) = CircuitRequest::new(&specs[2..]).expect("request");
    g.bench_function("exit_accept_reply", |b| {
        b.iter(|| {
            let accepted: AcceptedHop =
                accept_create(&hops[2].secret, black_box(&exit_create)).expect("accept");
            accepted.reply(None).expect("reply")
        });
    });

    // A guard's handshake: parse the extend fields and wrap the rest of the path's reply.
    let (_req, guard_create) = CircuitRequest::new(&specs).expect("request");
    let next = accept_create(&hops[0].secret, &guard_create)
        .expect("accept")
        .next()
        .cloned()
        .expect("guard extends");
    let (_rest, inner_created) = relay_chain(&hops[1..], &next.create);
    g.bench_function("guard_accept_reply", |b| {
        b.iter(|| {
            let accepted =
                accept_create(&hops[0].secret, black_box(&guard_create)).expect("accept");
            accepted.reply(Some(&inner_created)).expect("reply")
        });
    });
    g.finish();
}

/// The criterion entry point, in a private module: the macro's generated function has no docs.
mod entry {
    use super::{circuit, handshake, layer};
    criterion::criterion_group!(benches, layer, circuit, handshake);
}
criterion_main!(entry::benches);
