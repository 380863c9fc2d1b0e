//! The directory feed and relay caches end to end: real QUIC on 127.0.0.1, real SQLite stores,
//! a relay cache serving what it fetched, hostile sources whose snapshots must be refused, and a
//! feed that falls back to relays when the registries are cut off.
//! `cargo test -p braid-registry --features server --test it service_feed::`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::service::*;
use braid_directory::snapshot::SNAPSHOT_SIGNING_DOMAIN;
use braid_directory::{RegistrySet, SnapshotError};
use braid_registry::protocol::{RefuseCode, Request, Response};
use braid_registry::service::{
    DirectoryFeed, FeedSettings, FetchOutcome, PROTOCOL, RelayCache, ServerSettings, ServiceError,
    publish,
};
use braid_transport::Transport;
use ed25519_dalek::{Signer as _, SigningKey};
use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};

/// A hand-made snapshot for `set`: the README's wire format, signed by `signers`.
fn hand_snapshot(
    set: &RegistrySet,
    signers: &[&SigningKey],
    issued_at: u64,
    valid_until: u64,
    descriptors: &[Vec<u8>],
) -> Vec<u8> {
    // Snapshot format 2 (the directory README's table): each relay unflagged and unmeasured.
    let mut body = vec![2u8];
    body.extend_from_slice(&issued_at.to_be_bytes());
    body.extend_from_slice(&valid_until.to_be_bytes());
    body.extend_from_slice(&set.digest());
    body.extend_from_slice(&20_000u64.to_be_bytes());
    body.extend_from_slice(&(descriptors.len() as u32).to_be_bytes());
    for d in descriptors {
        body.extend_from_slice(&(d.len() as u16).to_be_bytes());
        body.extend_from_slice(d);
        body.push(0);
        body.extend_from_slice(&0u64.to_be_bytes());
    }
    let digest = blake3::hash(&body);
    let mut out = body.clone();
    out.push(signers.len() as u8);
    for key in signers {
        out.push(set.index_of(&key.verifying_key()).unwrap());
        out.extend_from_slice(
            &key.sign(&[SNAPSHOT_SIGNING_DOMAIN, digest.as_bytes()].concat())
                .to_bytes(),
        );
    }
    out
}

/// A hostile directory source: answers every request with `Response::Snapshot` carrying the
/// bytes in `serving` (`Unavailable` while empty), unchecked.
async fn hostile_source(serving: Arc<Mutex<Option<Vec<u8>>>>) -> Transport {
    let (transport, _) = node(true).await;
    let mut incoming = transport.accept(PROTOCOL).unwrap();
    tokio::spawn(async move {
        while let Some((_, mut stream)) = incoming.next().await {
            let mut request = [0u8; 14];
            if stream.read_exact(&mut request).await.is_err() {
                continue;
            }
            let bytes = serving.lock().unwrap().clone();
            let frame = match bytes {
                None => Response::Unavailable.encode(),
                Some(bytes) => {
                    let mut frame = vec![1, 0x83];
                    frame.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
                    frame.extend_from_slice(&bytes);
                    frame
                }
            };
            let _ = stream.write_all(&frame).await;
            let _ = stream.close().await;
        }
    });
    transport
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cache_serves_its_snapshot_and_bad_ones_are_refused() {
    let (regs, list) = registries(1, 0, registry_settings(Duration::from_secs(3600))).await;
    let reg = &regs[0];
    let (relay, relay_key) = node(true).await;
    let t = now();
    let d = descriptor(&relay_key, addresses_of(&relay), t, t + 3600)
        .sign(&relay_key)
        .unwrap();
    assert_eq!(
        bounded(publish(&relay, &list, &d, Duration::from_secs(20)))
            .await
            .unwrap(),
        reg.transport.peer_id()
    );
    wait_listed(&reg.replica, 1).await;
    let s1 = build_now(&reg.role, 1).await;
    assert_eq!(s1.descriptors().len(), 1);

    // The relay fetches it and serves it from its cache.
    let relay_feed = DirectoryFeed::start(&relay, list.clone(), Vec::new(), feed_settings())
        .await
        .unwrap();
    let mut relay_snapshots = relay_feed.subscribe();
    bounded(
        relay_snapshots.wait_for(|s| s.as_ref().is_some_and(|s| s.issued_at() == s1.issued_at())),
    )
    .await
    .unwrap();
    let _cache =
        RelayCache::start(&relay, relay_feed.subscribe(), ServerSettings::default()).unwrap();
    let (proxy, _) = node(false).await;
    proxy
        .add_addresses(relay.peer_id(), relay.listen_addrs())
        .await
        .unwrap();
    let answer = raw(
        &proxy,
        relay.peer_id(),
        &Request::GetSnapshot { newer_than: 0 }.encode(),
    )
    .await;
    assert_eq!(answer, Response::Snapshot(s1.signed().clone()));
    let answer = raw(
        &proxy,
        relay.peer_id(),
        &Request::GetSnapshot {
            newer_than: s1.issued_at(),
        }
        .encode(),
    )
    .await;
    assert_eq!(answer, Response::NotModified);
    // A relay takes no descriptors.
    let answer = raw(
        &proxy,
        relay.peer_id(),
        &Request::Publish(d.clone()).encode(),
    )
    .await;
    assert_eq!(refusal(&answer).0, RefuseCode::NotServed);

    // A proxy whose sources are the relay and a hostile node.
    let serving = Arc::new(Mutex::new(None));
    let hostile = hostile_source(Arc::clone(&serving)).await;
    let extras = vec![peer_of(&relay), peer_of(&hostile)];
    let feed = DirectoryFeed::start(&proxy, list.clone(), extras, feed_settings())
        .await
        .unwrap();
    feed.stop();
    match bounded(feed.fetch_from(relay.peer_id())).await.unwrap() {
        FetchOutcome::Accepted { issued_at, relays } => {
            assert_eq!((issued_at, relays), (s1.issued_at(), 1));
        }
        FetchOutcome::NotModified => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(feed.current().unwrap().issued_at(), s1.issued_at());

    let set = list.set();
    let key = &reg.key;
    let newer = s1.issued_at() + 1;
    let mut forged = d.encode();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "too few signatures",
            hand_snapshot(set, &[], newer, newer + 600, &[d.encode()]),
        ),
        (
            "forged descriptor",
            hand_snapshot(set, &[key], newer, newer + 600, &[forged]),
        ),
        (
            "older than current",
            hand_snapshot(set, &[key], s1.issued_at() - 10, newer + 600, &[d.encode()]),
        ),
        ("stale", hand_snapshot(set, &[key], newer, newer + 1, &[])),
    ];
    // The stale one must be past its end.
    eventually("the clock passed the stale snapshot's end", || {
        now() > newer
    })
    .await;
    for (what, bytes) in cases {
        *serving.lock().unwrap() = Some(bytes);
        let error = bounded(feed.fetch_from(hostile.peer_id()))
            .await
            .unwrap_err();
        let ServiceError::Snapshot { source, .. } = &error else {
            panic!("{what}: {error}");
        };
        let expected = match source {
            SnapshotError::TooFewSignatures {
                valid: 0,
                needed: 1,
            } => "too few signatures",
            SnapshotError::BadDescriptor { index: 0, .. } => "forged descriptor",
            SnapshotError::NotNewer { .. } => "older than current",
            SnapshotError::Expired { .. } => "stale",
            other => panic!("{what}: unexpected {other}"),
        };
        assert_eq!(expected, what, "{error}");
        assert_eq!(
            feed.current().unwrap().issued_at(),
            s1.issued_at(),
            "{what}"
        );
    }
}

/// A proxy's feed with `relay_sources` also asks relays listed in its snapshot: with the only
/// registry gone, it still gets the newer snapshot a relay cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_falls_back_to_relay_caches_when_the_registries_are_down() {
    let (regs, list) = registries(1, 0, registry_settings(Duration::from_secs(1))).await;
    let reg = &regs[0];
    let (relay, relay_key) = node(true).await;
    let n = now();
    let signed = descriptor(&relay_key, addresses_of(&relay), n, n + 3600)
        .sign(&relay_key)
        .unwrap();
    bounded(braid_registry::service::publish(
        &relay,
        &list,
        &signed,
        Duration::from_secs(20),
    ))
    .await
    .unwrap();
    // The relay follows the directory every second and serves what it holds.
    let relay_feed = DirectoryFeed::start(
        &relay,
        list.clone(),
        Vec::new(),
        FeedSettings {
            refresh_interval: Duration::from_secs(1),
            ..feed_settings()
        },
    )
    .await
    .unwrap();
    let _cache =
        RelayCache::start(&relay, relay_feed.subscribe(), ServerSettings::default()).unwrap();
    let (proxy, _) = node(false).await;
    let feed = DirectoryFeed::start(
        &proxy,
        list.clone(),
        Vec::new(),
        FeedSettings {
            relay_sources: 4,
            refresh_interval: Duration::from_secs(1),
            ..feed_settings()
        },
    )
    .await
    .unwrap();
    let identity = relay_key.verifying_key().to_bytes();
    let mut snapshots = feed.subscribe();
    let first = bounded(snapshots.wait_for(|s| {
        s.as_ref()
            .is_some_and(|s| s.descriptors().iter().any(|d| *d.identity() == identity))
    }))
    .await
    .unwrap()
    .clone()
    .unwrap();
    // The proxy loses the registry (a severed link); the registry goes on issuing snapshots
    // and the relay goes on caching them, so a newer one can only come through the relay.
    proxy.block(reg.transport.peer_id()).await.unwrap();
    let held = feed.current().map_or(first.issued_at(), |s| s.issued_at());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let _ = feed.refresh().await;
        if feed.current().is_some_and(|s| s.issued_at() > held) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the feed never fetched from the relay"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
