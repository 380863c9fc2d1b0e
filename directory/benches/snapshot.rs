//! Directory snapshot costs: building + signing, encoding, decoding, and decode + full
//! verification, for 1,000 and 10,000 generated relays; and the size in bytes per relay.
//!
//! `cargo bench -p braid-directory --bench snapshot -- --warm-up-time 1 --measurement-time 3`
//! (batch descriptor signature checks, the default; add `--no-default-features` for one
//! `verify_strict` each). Set `BRAID_SNAPSHOT_DUMP` to a directory to also write the encoded
//! snapshots there (to try compressors on them). Figures: docs/performance.md.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup: a panic is the report
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;

use braid_directory::{
    Descriptor, ExitPolicy, ListedRelay, RegistrySet, SignedDescriptor, SignedSnapshot, Snapshot,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;

const T0: u64 = 1_700_000_000;
const HOUR: u64 = 3600;

/// Relay `i`: a deterministic key, one QUIC and one TCP IPv4 multiaddr (a third, IPv6, address
/// for every fourth relay), a nickname, and one relay in five an exit with a three-rule policy.
fn relay(i: u32) -> SignedDescriptor {
    let seed = *blake3::hash(&i.to_be_bytes()).as_bytes();
    let key = SigningKey::from_bytes(&seed);
    let [a, b, c, d] = seed[..4].try_into().unwrap();
    let port = 1024 + u16::from_be_bytes([seed[4], seed[5]]) % 60_000;
    let mut addresses = vec![
        format!("/ip4/{a}.{b}.{c}.{d}/udp/{port}/quic-v1"),
        format!("/ip4/{a}.{b}.{c}.{d}/tcp/{port}"),
    ];
    if i.is_multiple_of(4) {
        addresses.push(format!(
            "/ip6/2001:db8:{a:x}{b:02x}::{c:x}{d:02x}/udp/{port}/quic-v1"
        ));
    }
    let exit_policy = if i.is_multiple_of(5) {
        ExitPolicy::parse_rules(&["reject private:*", "reject *:25", "accept *:*"]).unwrap()
    } else {
        ExitPolicy::reject_all()
    };
    let published = T0 - u64::from(i % 3600);
    Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: *blake3::hash(&seed).as_bytes(),
        addresses,
        nickname: format!("relay{i}"),
        bandwidth: 1_000_000 + u64::from(i) * 977,
        exit_policy,
        published,
        expires: published + 3 * 24 * HOUR,
        family: Vec::new(),
    }
    .sign(&key)
    .unwrap()
}

fn registries() -> (RegistrySet, Vec<SigningKey>) {
    let keys: Vec<SigningKey> = (0..3u8)
        .map(|i| SigningKey::from_bytes(&[0xA0 + i; 32]))
        .collect();
    let public: Vec<[u8; 32]> = keys.iter().map(|k| k.verifying_key().to_bytes()).collect();
    (RegistrySet::new(&public).unwrap(), keys)
}

/// Builds a snapshot of `descriptors` signed by all three registries.
fn build(
    set: &RegistrySet,
    keys: &[SigningKey],
    descriptors: Vec<SignedDescriptor>,
) -> SignedSnapshot {
    // Each entry measured at its claim (as an operator-vouched one), with flags: the widest
    // entries a snapshot carries.
    let listed = descriptors.into_iter().map(ListedRelay::vouched).collect();
    let unmeasured = braid_directory::listing::default_unmeasured_weight();
    let mut signed = Snapshot::new(set, T0, T0 + 3 * HOUR, unmeasured, listed)
        .unwrap()
        .into_unsigned();
    for k in keys {
        signed.sign_with(set, k).unwrap();
    }
    signed
}

fn report_sizes(set: &RegistrySet, keys: &[SigningKey], relays: &[SignedDescriptor]) {
    let dump = std::env::var_os("BRAID_SNAPSHOT_DUMP");
    for n in [1_000usize, 7_000, 10_000] {
        let bytes = build(set, keys, relays[..n].to_vec()).encode();
        let descriptor_bytes: usize = relays[..n].iter().map(|d| d.encode().len()).sum();
        println!(
            "snapshot size: {n} relays, {} bytes, {:.1} bytes/relay (descriptors alone {:.1})",
            bytes.len(),
            bytes.len() as f64 / n as f64,
            descriptor_bytes as f64 / n as f64
        );
        if let Some(dir) = &dump {
            let path = std::path::Path::new(dir).join(format!("snapshot-{n}.bin"));
            std::fs::write(&path, &bytes).unwrap();
        }
    }
}

fn snapshot(c: &mut Criterion) {
    let (set, keys) = registries();
    let relays: Vec<SignedDescriptor> = (0..10_000).map(relay).collect();
    report_sizes(&set, &keys, &relays);
    let mode = if cfg!(feature = "batch") {
        "batch"
    } else {
        "strict"
    };

    // The unit cost: one descriptor parsed, field-checked and its signature checked.
    let one = relays[0].encode();
    c.bench_function("descriptor/decode_verify_one", |b| {
        b.iter(|| SignedDescriptor::decode(black_box(&one)).unwrap())
    });

    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    for n in [1_000usize, 10_000] {
        let descriptors = relays[..n].to_vec();
        let signed = build(&set, &keys, descriptors.clone());
        let bytes = signed.encode();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("build_and_sign", n), &n, |b, _| {
            b.iter(|| build(&set, &keys, black_box(descriptors.clone())))
        });
        group.bench_with_input(BenchmarkId::new("encode", n), &n, |b, _| {
            b.iter(|| black_box(&signed).encode())
        });
        group.bench_with_input(BenchmarkId::new("decode", n), &n, |b, _| {
            b.iter(|| SignedSnapshot::decode(black_box(&bytes)).unwrap())
        });
        group.bench_with_input(
            BenchmarkId::new(format!("decode_verify_{mode}"), n),
            &n,
            |b, _| {
                b.iter(|| {
                    SignedSnapshot::decode(black_box(&bytes))
                        .unwrap()
                        .verify(&set, T0 + 60)
                        .unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
