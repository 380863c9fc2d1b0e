//! The registry service end to end: real QUIC on 127.0.0.1, real SQLite stores in temp dirs,
//! real relay transports answering real dial-back probes, and hand-made hostile bytes on real
//! streams. `cargo test -p braid-registry --features server --test it service::`.

use std::sync::Arc;
use std::time::Duration;

use crate::support::service::*;
use braid_directory::descriptor::{DESCRIPTOR_VERSION, SIGNING_DOMAIN};
use braid_directory::{SignedDescriptor, SnapshotError};
use braid_registry::protocol::{RefuseCode, Request, Response};
use braid_registry::service::{
    DirectoryFeed, FetchOutcome, PROTOCOL, PeerAddresses, PublishStatus, RegistryRole,
    RegistrySettings, Replica, RepublishSettings, ServerSettings, ServiceError, SoloReplica,
    publish, registry_key_of,
};
use braid_registry::state::Command;
use braid_registry::store::{Applied, StoreLimits};
use braid_transport::{Identity, PeerId, Transport, TransportConfig};
use ed25519_dalek::{Signer as _, SigningKey};
use futures::AsyncWriteExt as _;
use tokio::time::sleep;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_registry_lists_a_reachable_relay_and_a_feed_sees_it() {
    let (regs, list) = registries(1, 0, registry_settings(Duration::from_secs(1))).await;
    let reg = &regs[0];
    let (relay, relay_key) = node(true).await;
    let addresses = addresses_of(&relay);
    let make_key = relay_key.clone();
    let republisher = braid_registry::service::Republisher::start(
        relay.clone(),
        list.clone(),
        Arc::new(move |now| {
            descriptor(&make_key, addresses.clone(), now, now + 3600).sign(&make_key)
        }),
        RepublishSettings {
            republish_interval: Duration::from_secs(3600),
            retry_interval: Duration::from_secs(1),
            request_timeout: Duration::from_secs(20),
        },
    )
    .unwrap();
    let mut status = republisher.status();
    let published = bounded(status.wait_for(|s| !matches!(s, PublishStatus::NotYet)))
        .await
        .unwrap()
        .clone();
    assert!(
        matches!(published, PublishStatus::Published { registry, .. } if registry == reg.transport.peer_id()),
        "{published:?}"
    );
    let identity = relay_key.verifying_key().to_bytes();
    assert_eq!(listed(&reg.replica), vec![identity]);

    eventually("the registry's snapshot lists the relay", || {
        reg.role
            .snapshot()
            .is_some_and(|s| s.descriptors().iter().any(|d| *d.identity() == identity))
    })
    .await;

    let (proxy, _) = node(false).await;
    let feed = DirectoryFeed::start(&proxy, list.clone(), Vec::new(), feed_settings())
        .await
        .unwrap();
    let mut snapshots = feed.subscribe();
    let got = bounded(snapshots.wait_for(|s| {
        s.as_ref()
            .is_some_and(|s| s.descriptors().iter().any(|d| *d.identity() == identity))
    }))
    .await
    .unwrap()
    .clone()
    .unwrap();
    assert_eq!(got.signers().len(), 1);
    let directory = got.to_directory();
    assert!(
        directory
            .descriptors()
            .iter()
            .any(|d| *d.identity() == identity)
    );
    // The registry key is the one inside the registry's peer id.
    assert_eq!(
        registry_key_of(&reg.transport.peer_id()).unwrap(),
        reg.key.verifying_key()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_registries_co_sign_and_any_of_them_serves_the_snapshot() {
    // A separate one-registry group B, whose snapshot a feed configured with B's key holds.
    let (other, other_list) = registries(1, 0, registry_settings(Duration::from_secs(3600))).await;
    eventually("group B built its snapshot", || {
        other[0].role.snapshot().is_some()
    })
    .await;
    sleep(Duration::from_millis(1100)).await;

    let (regs, list) =
        registries_with(3, 0, registry_settings(Duration::from_secs(3600)), false).await;
    let (_relay, relay_key) = node(true).await;
    let t = now();
    let d = descriptor(
        &relay_key,
        vec!["/ip4/127.0.0.1/udp/9/quic-v1".into()],
        t,
        t + 3600,
    )
    .sign(&relay_key)
    .unwrap();
    // Raft is not part of this test: the same Publish and the three registries' attestations
    // of it are applied to every registry's store.
    let keys: Vec<SigningKey> = regs.iter().map(|r| r.key.clone()).collect();
    for reg in &regs {
        let applied = bounded(reg.replica.submit(Command::Publish(d.clone())))
            .await
            .unwrap();
        assert_eq!(applied, Applied::Stored { replaced: false });
        feed_votes(&reg.replica, &keys, &[&d], t, 1).await;
    }
    let built = build_now(&regs[0].role, 1).await;
    assert_eq!(built.signers().len(), 3, "the builder and 2 co-signers");
    assert_eq!(built.descriptors().len(), 1);
    // The offer reached every registry: all serve the same snapshot.
    for reg in &regs {
        let served = reg.role.snapshot().unwrap();
        assert_eq!(served.issued_at(), built.issued_at());
    }

    // A feed configured with the three keys verifies it from any one of them.
    let (proxy, _) = node(false).await;
    for reg in &regs {
        let feed = DirectoryFeed::start(&proxy, list.clone(), Vec::new(), feed_settings());
        let feed = feed.await.unwrap();
        feed.stop();
        let outcome = bounded(feed.fetch_from(reg.transport.peer_id())).await;
        match outcome {
            Ok(FetchOutcome::Accepted { issued_at, relays }) => {
                assert_eq!((issued_at, relays), (built.issued_at(), 1));
            }
            // The loop's first round got it before it was stopped.
            Ok(FetchOutcome::NotModified) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(feed.current().unwrap().issued_at(), built.issued_at());
        assert_eq!(feed.current().unwrap().signed(), built.signed());
    }

    // A feed configured with B's key refuses the snapshot of A and keeps B's.
    let extras: Vec<PeerAddresses> = regs.iter().map(|r| peer_of(&r.transport)).collect();
    let (proxy_b, _) = node(false).await;
    let feed_b = DirectoryFeed::start(&proxy_b, other_list.clone(), extras, feed_settings())
        .await
        .unwrap();
    feed_b.stop();
    let b_issued = other[0].role.snapshot().unwrap().issued_at();
    let _ = bounded(feed_b.fetch_from(other[0].transport.peer_id())).await;
    assert_eq!(feed_b.current().unwrap().issued_at(), b_issued);
    for reg in &regs {
        let refused = bounded(feed_b.fetch_from(reg.transport.peer_id())).await;
        match refused {
            Err(ServiceError::Snapshot {
                source: SnapshotError::WrongRegistrySet { .. },
                ..
            }) => {}
            other => panic!("expected a wrong-registry-set refusal, got {other:?}"),
        }
        let text = bounded(feed_b.fetch_from(reg.transport.peer_id()))
            .await
            .unwrap_err()
            .to_string();
        assert!(text.contains("made for registry set"), "{text}");
        assert_eq!(feed_b.current().unwrap().issued_at(), b_issued);
    }
}

/// `descriptor`'s encoding with its body changed by `edit` and signed again by `key` (so the
/// signature is valid but the body breaks a field rule).
fn resigned(d: &SignedDescriptor, key: &SigningKey, edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let encoded = d.encode();
    let mut body = encoded[1..encoded.len() - 64].to_vec();
    edit(&mut body);
    let signature = key.sign(&[SIGNING_DOMAIN, &body].concat()).to_bytes();
    [&[DESCRIPTOR_VERSION][..], &body, &signature].concat()
}

/// A `Publish` frame around raw descriptor bytes.
fn publish_frame(descriptor: &[u8]) -> Vec<u8> {
    let mut frame = vec![1, 0x01];
    frame.extend_from_slice(&(descriptor.len() as u32).to_be_bytes());
    frame.extend_from_slice(descriptor);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_unreachable_descriptors_are_refused_and_nothing_is_stored() {
    let (regs, list) = registries(1, 0, registry_settings(Duration::from_secs(3600))).await;
    let reg = &regs[0];
    let registry = reg.transport.peer_id();
    let (relay, relay_key) = node(true).await;
    relay
        .add_addresses(registry, reg.transport.listen_addrs())
        .await
        .unwrap();
    let t = now();

    // Addresses where nothing listens: a closed TCP port and a QUIC port with no socket.
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_port = tcp.local_addr().unwrap().port();
    drop(tcp);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    drop(udp);
    for address in [
        format!("/ip4/127.0.0.1/tcp/{tcp_port}"),
        format!("/ip4/127.0.0.1/udp/{udp_port}/quic-v1"),
    ] {
        // The relay's real address first: every claimed address must answer.
        let addresses = vec![addresses_of(&relay)[0].clone(), address];
        let d = descriptor(&relay_key, addresses, t, t + 3600)
            .sign(&relay_key)
            .unwrap();
        let answer = raw(&relay, registry, &Request::Publish(d.clone()).encode()).await;
        let (code, text) = refusal(&answer);
        assert_eq!(code, RefuseCode::Unreachable, "{text}");
        assert!(text.contains("address 1"), "{text}");
        assert!(listed(&reg.replica).is_empty());
        // The client function says why each registry refused.
        let error = bounded(publish(&relay, &list, &d, Duration::from_secs(20)))
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is not reachable from this registry"),
            "{error}"
        );
    }

    let good = descriptor(&relay_key, addresses_of(&relay), t, t + 3600)
        .sign(&relay_key)
        .unwrap();
    // Signed by another key than the identity inside.
    let other_key = SigningKey::from_bytes(&[0x42; 32]);
    let encoded = good.encode();
    let body = &encoded[1..encoded.len() - 64];
    let forged_sig = other_key.sign(&[SIGNING_DOMAIN, body].concat()).to_bytes();
    let wrong_key = [&[DESCRIPTOR_VERSION][..], body, &forged_sig].concat();
    // A malformed field (a nickname with '!'), validly signed by the relay.
    // Body offset of the nickname's first character, after its length byte (the addresses
    // before it have a compact or a text wire form, so their length varies).
    let nick_at = body
        .windows(10)
        .position(|w| w == b"\x09testrelay")
        .unwrap()
        + 1;
    let bad_field = resigned(&good, &relay_key, |body| body[nick_at] = b'!');
    // Expired, validly signed.
    let expired = descriptor(&relay_key, addresses_of(&relay), t - 7200, t - 3600)
        .sign(&relay_key)
        .unwrap()
        .encode();
    // Published from the future.
    let future = descriptor(&relay_key, addresses_of(&relay), t + 3600, t + 7200)
        .sign(&relay_key)
        .unwrap()
        .encode();
    let cases: [(&str, Vec<u8>, RefuseCode, &str); 4] = [
        (
            "wrong key",
            wrong_key,
            RefuseCode::BadDescriptor,
            "signature",
        ),
        (
            "bad field",
            bad_field,
            RefuseCode::BadDescriptor,
            "nickname",
        ),
        ("expired", expired, RefuseCode::NotFresh, "expired"),
        ("future", future, RefuseCode::NotFresh, "after now"),
    ];
    for (what, bytes, code, text) in cases {
        let answer = raw(&relay, registry, &publish_frame(&bytes)).await;
        let (got, why) = refusal(&answer);
        assert_eq!(got, code, "{what}: {why}");
        assert!(why.contains(text), "{what}: {why}");
        assert!(listed(&reg.replica).is_empty(), "{what}");
    }

    // The relay's own good descriptor, sent by another peer.
    let (other, _) = node(false).await;
    other
        .add_addresses(registry, reg.transport.listen_addrs())
        .await
        .unwrap();
    let answer = raw(&other, registry, &Request::Publish(good.clone()).encode()).await;
    assert_eq!(refusal(&answer).0, RefuseCode::WrongPeer);
    assert!(listed(&reg.replica).is_empty());

    // The same descriptor from the relay itself is listed: the refusals above were about them.
    let answer = raw(&relay, registry, &Request::Publish(good.clone()).encode()).await;
    assert_eq!(answer, Response::Published);
    assert_eq!(listed(&reg.replica), vec![*good.identity()]);

    // A relay that does not republish drops out when its descriptor expires (the leader
    // proposes Expire every second here).
    let (short_lived, short_key) = node(true).await;
    let t = now();
    let d = descriptor(&short_key, addresses_of(&short_lived), t, t + 3)
        .sign(&short_key)
        .unwrap();
    bounded(publish(&short_lived, &list, &d, Duration::from_secs(20)))
        .await
        .unwrap();
    assert!(listed(&reg.replica).contains(d.identity()));
    eventually("the expired relay is dropped", || {
        listed(&reg.replica) == vec![*good.identity()]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_registry_serves_its_kept_snapshot_at_once() {
    let (regs, list) = registries(1, 0, registry_settings(Duration::from_secs(3600))).await;
    let reg = &regs[0];
    wait_listed(&reg.replica, 0).await;
    let built = build_now(&reg.role, 0).await;
    reg.role.stop();
    // The same identity on a new transport, the same data directory, a follower this time
    // (so it builds nothing itself).
    let identity = Identity::from_secret_bytes(reg.key.to_bytes());
    let config = TransportConfig {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()],
        ..TransportConfig::default()
    };
    let transport = bounded(Transport::start(identity, config)).await.unwrap();
    let replica = Arc::new(
        SoloReplica::open(
            &reg.dir.path().join("state.db"),
            StoreLimits::default(),
            &list,
        )
        .unwrap(),
    );
    replica.set_leader(false);
    let settings = RegistrySettings {
        data_dir: Some(reg.dir.path().to_path_buf()),
        ..registry_settings(Duration::from_secs(3600))
    };
    let role = RegistryRole::start(&transport, replica, list, reg.key.clone(), settings)
        .await
        .unwrap();
    let served = role.snapshot().expect("served from disk at start");
    assert_eq!(served.signed(), built.signed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_an_error_and_the_per_peer_bound_holds() {
    let settings = RegistrySettings {
        server: ServerSettings {
            max_requests_per_peer: 2,
            read_timeout: Duration::from_secs(10),
            ..ServerSettings::default()
        },
        ..registry_settings(Duration::from_secs(3600))
    };
    let (regs, _list) = registries(1, 0, settings).await;
    let registry = regs[0].transport.peer_id();
    let (client, _) = node(false).await;
    let (other, _) = node(false).await;
    for t in [&client, &other] {
        t.add_addresses(registry, regs[0].transport.listen_addrs())
            .await
            .unwrap();
    }
    let get = Request::GetSnapshot { newer_than: 0 }.encode();
    let served = |r: &Response| matches!(r, Response::Snapshot(_) | Response::Unavailable);

    let cases: [(&str, Vec<u8>, RefuseCode, &str); 6] = [
        (
            "bad version",
            vec![9, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0],
            RefuseCode::BadRequest,
            "version 9",
        ),
        (
            "oversized publish (no body sent)",
            vec![1, 1, 0, 0x10, 0, 0],
            RefuseCode::BadRequest,
            "over its limit",
        ),
        (
            "co-sign from a non-registry (no body sent)",
            vec![1, 3, 0, 0x10, 0, 0],
            RefuseCode::NotARegistry,
            "registries only",
        ),
        (
            "unknown kind",
            vec![1, 0x7f, 0, 0, 0, 2, 1, 2],
            RefuseCode::BadRequest,
            "unknown request kind",
        ),
        (
            "a response kind",
            Response::Published.encode(),
            RefuseCode::BadRequest,
            "response kind",
        ),
        (
            "bad snapshot in an offer",
            vec![1, 4, 0, 0, 0, 1, 7],
            RefuseCode::NotARegistry,
            "registries only",
        ),
    ];
    for (what, bytes, code, text) in cases {
        let answer = raw(&client, registry, &bytes).await;
        let (got, why) = refusal(&answer);
        assert_eq!(got, code, "{what}: {why}");
        assert!(why.contains(text), "{what}: {why}");
        // The server keeps serving.
        assert!(served(&raw(&client, registry, &get).await), "{what}");
    }
    // A bad body inside a well-formed frame.
    let answer = raw(&client, registry, &[1, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]).await;
    assert!(refusal(&answer).1.contains("not 8 bytes"));

    // Two stalled requests from `client` fill its bound; a third is refused as busy, unread,
    // while another peer is served.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = bounded(client.open_stream(registry, PROTOCOL))
            .await
            .unwrap();
        stream.write_all(&[1]).await.unwrap();
        stream.flush().await.unwrap();
        held.push(stream);
    }
    sleep(Duration::from_millis(500)).await;
    let (code, text) = refusal(&raw(&client, registry, &get).await);
    assert_eq!(code, RefuseCode::Busy, "{text}");
    assert!(served(&raw(&other, registry, &get).await));
    drop(held);
    eventually_async_served(&client, registry, &get).await;
}

/// `client` is served again within `STEP` (its held streams were released).
async fn eventually_async_served(client: &Transport, registry: PeerId, get: &[u8]) {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let answer = raw(client, registry, get).await;
        if matches!(answer, Response::Snapshot(_) | Response::Unavailable) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused: {answer:?}"
        );
        sleep(Duration::from_millis(200)).await;
    }
}
