//! Throughput of the splitter's hot paths for 64 KiB writes: split+hash (Sender::write and the
//! transmits) and verify+reassemble (Receiver::on_fragment, in order, acks included).

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup: a panic is the report
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use braid_splitter::wire::Ack;
use braid_splitter::{
    AckVerdict, Config, DirectionKeys, Receiver, SendAction, Sender, StrandId, StreamId,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const WRITE: usize = 64 << 10;
const STREAM: StreamId = StreamId(1);
const STRANDS: u32 = 3;

fn sender(config: &Config) -> Sender {
    let key = DirectionKeys::derive(b"bench").initiator_to_responder;
    let mut sender = Sender::new(config, STREAM, key, 42).expect("valid config");
    for i in 0..STRANDS {
        sender
            .add_strand(StrandId(i))
            .expect("under the strand limit");
    }
    sender
}

/// Writes one 64 KiB buffer and drains the transmits; returns the highest seq sent + 1.
fn write_and_drain(
    sender: &mut Sender,
    data: &[u8],
    mut next: u64,
    sink: &mut impl FnMut(StrandId, &[u8]),
) -> u64 {
    assert_eq!(sender.write(data).expect("open stream"), data.len());
    while let SendAction::Transmit {
        strand,
        seq,
        fragment,
    } = sender.poll(0).expect("no resend limit")
    {
        sink(strand, fragment);
        next = seq + 1;
    }
    next
}

fn ack_all(sender: &mut Sender, next: u64) {
    let key = DirectionKeys::derive(b"bench").initiator_to_responder;
    let ack = Ack {
        stream: STREAM,
        cumulative: next,
        echo: next - 1,
        sack: 0,
    }
    .encode(&key);
    let verdict = sender.on_ack(StrandId(0), &ack, 1).expect("valid ack");
    assert!(matches!(verdict, AckVerdict::Accepted { .. }));
}

fn bench(c: &mut Criterion, name: &str, config: &Config) {
    let data: Vec<u8> = (0..WRITE).map(|i| (i * 31 + 7) as u8).collect();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(WRITE as u64));

    group.bench_function("split_hash_64k", |b| {
        let mut sender = sender(config);
        let mut next = 0;
        b.iter(|| {
            next = write_and_drain(&mut sender, &data, next, &mut |strand, f| {
                black_box((strand, f));
            });
            ack_all(&mut sender, next);
        });
    });

    // Fragments of 64 consecutive writes, fed in order to a fresh receiver per cycle.
    const CYCLE: usize = 64;
    let mut frames: Vec<Vec<(StrandId, Vec<u8>)>> = Vec::with_capacity(CYCLE);
    let mut s = sender(config);
    let mut next = 0;
    for _ in 0..CYCLE {
        let mut write = Vec::new();
        next = write_and_drain(&mut s, &data, next, &mut |strand, f| {
            write.push((strand, f.to_vec()))
        });
        ack_all(&mut s, next);
        frames.push(write);
    }
    group.bench_function("verify_reassemble_64k", |b| {
        let key = DirectionKeys::derive(b"bench").initiator_to_responder;
        let mut out = Vec::with_capacity(WRITE);
        b.iter_custom(|iters| {
            let mut elapsed = Duration::ZERO;
            let mut receiver = Receiver::new(config, STREAM, key.clone()).expect("valid config");
            for i in 0..iters as usize {
                if i % CYCLE == 0 {
                    receiver = Receiver::new(config, STREAM, key.clone()).expect("valid config");
                }
                let start = Instant::now();
                for (strand, f) in &frames[i % CYCLE] {
                    let r = receiver
                        .on_fragment(*strand, f, &mut out)
                        .expect("honest peer");
                    let _ = black_box(r);
                }
                elapsed += start.elapsed();
                assert_eq!(out.len(), WRITE);
                out.clear();
            }
            elapsed
        });
    });
    group.finish();
}

fn raw_blake3(c: &mut Criterion) {
    let mut group = c.benchmark_group("blake3_keyed");
    for len in [3088usize, 3856] {
        let data = vec![7u8; len];
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(format!("{len}"), |b| {
            b.iter(|| blake3::keyed_hash(&[1; 32], black_box(&data)))
        });
        group.bench_function(format!("{len}_padded"), |b| {
            b.iter(|| braid_splitter::key::padded_hash(&[1; 32], black_box(&data)))
        });
    }
    group.finish();
}

fn splitter(c: &mut Criterion) {
    bench(c, "splitter", &Config::default());
    let small = Config {
        max_payload: braid_splitter::config::PayloadLimit::try_from(3072).expect("in range"),
        ..Config::default()
    };
    bench(c, "splitter_payload_3072", &small);
}

criterion_group!(benches, raw_blake3, splitter);
criterion_main!(benches);
