//! The registry's dial-back cannot be abused (issue 14 (a)): with the default settings it
//! never dials a private or loopback address, it dials only the IP a publish came from, it
//! limits publishes per source address, and the publisher hears only a generic refusal. Real
//! registry, real publishes over loopback QUIC, real trap listeners that count connections.
//! `cargo test -p braid-registry --features server --test it service_dialback::`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::service::*;
use braid_registry::protocol::{RefuseCode, Request, Response};
use braid_registry::service::RegistrySettings;
use braid_transport::Transport;
use ed25519_dalek::SigningKey;
use tokio::net::{TcpListener, UdpSocket};
use tokio::time::sleep;

/// A TCP listener and a UDP socket on `ip` that count whoever reaches them.
struct Trap {
    tcp: String,
    quic: String,
    tcp_hits: Arc<AtomicUsize>,
    udp: Arc<UdpSocket>,
}

impl Trap {
    async fn on(ip: &str) -> Trap {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let tcp_port = listener.local_addr().unwrap().port();
        let udp = Arc::new(UdpSocket::bind((ip, 0)).await.unwrap());
        let udp_port = udp.local_addr().unwrap().port();
        let tcp_hits = Arc::new(AtomicUsize::new(0));
        let hits = Arc::clone(&tcp_hits);
        tokio::spawn(async move {
            while listener.accept().await.is_ok() {
                hits.fetch_add(1, Ordering::SeqCst);
            }
        });
        Trap {
            tcp: format!("/ip4/{ip}/tcp/{tcp_port}"),
            quic: format!("/ip4/{ip}/udp/{udp_port}/quic-v1"),
            tcp_hits,
            udp,
        }
    }

    /// Whether anything reached the trap (a TCP connection or any UDP datagram).
    fn hit(&self) -> bool {
        let mut buf = [0u8; 2048];
        self.tcp_hits.load(Ordering::SeqCst) > 0 || self.udp.try_recv(&mut buf).is_ok()
    }
}

/// Publishes a descriptor of `key` claiming `addresses` from `relay` and returns the answer.
async fn publish_claiming(
    relay: &Transport,
    key: &SigningKey,
    registry: &Reg,
    addresses: Vec<String>,
    published: u64,
) -> Response {
    let registry_peer = registry.transport.peer_id();
    relay
        .add_addresses(registry_peer, registry.transport.listen_addrs())
        .await
        .unwrap();
    let signed = descriptor(key, addresses, published, published + 3600)
        .sign(key)
        .unwrap();
    raw(relay, registry_peer, &Request::Publish(signed).encode()).await
}

fn assert_generic_refusal(response: &Response) {
    let (code, text) = refusal(response);
    assert_eq!(code, RefuseCode::Unreachable, "{text}");
    assert!(
        text.ends_with("is not reachable from this registry"),
        "not the generic text: {text}"
    );
    for leak in ["dial", "127.", "10.0", "public", "came from", "refused"] {
        assert!(
            !text.contains(leak),
            "the refusal says more than it should: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_registry_never_dials_private_or_loopback_addresses() {
    let settings = RegistrySettings {
        allow_private_addresses: false,
        ..registry_settings(Duration::from_secs(3600))
    };
    let (regs, _list) = registries(1, 0, settings).await;
    let reg = &regs[0];
    let (relay, key) = node(true).await;
    let trap = Trap::on("127.0.0.1").await;
    let t = now();
    // Each claim alone (a publish stops at its first unconfirmed address): the relay's own
    // real loopback address, the trap's TCP and QUIC ports, and 10.0.0.5:22.
    let claims = [
        addresses_of(&relay),
        vec![trap.tcp.clone()],
        vec![trap.quic.clone()],
        vec!["/ip4/10.0.0.5/tcp/22".to_owned()],
        vec!["/ip4/10.0.0.5/udp/443/quic-v1".to_owned()],
    ];
    for (i, claim) in claims.into_iter().enumerate() {
        let answer = publish_claiming(&relay, &key, reg, claim, t + i as u64).await;
        assert_generic_refusal(&answer);
    }
    sleep(Duration::from_millis(500)).await;
    assert!(!trap.hit(), "a default registry dialed a loopback address");
    assert!(listed(&reg.replica).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_private_lists_the_loopback_relay_but_only_on_the_publishers_ip() {
    let (regs, _list) = registries(1, 0, registry_settings(Duration::from_secs(3600))).await;
    let reg = &regs[0];
    let (relay, key) = node(true).await;
    let t = now();
    // The relay publishes from 127.0.0.1; a claim on 127.0.0.2 is another host's.
    let trap = Trap::on("127.0.0.2").await;
    for (i, claim) in [vec![trap.tcp.clone()], vec![trap.quic.clone()]]
        .into_iter()
        .enumerate()
    {
        let answer = publish_claiming(&relay, &key, reg, claim, t + i as u64).await;
        assert_generic_refusal(&answer);
    }
    sleep(Duration::from_millis(500)).await;
    assert!(
        !trap.hit(),
        "the registry dialed an IP the publish did not come from"
    );
    assert!(listed(&reg.replica).is_empty());

    let answer = publish_claiming(&relay, &key, reg, addresses_of(&relay), t + 5).await;
    assert!(matches!(answer, Response::Published), "{answer:?}");
    assert_eq!(listed(&reg.replica), vec![key.verifying_key().to_bytes()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_per_source_address_are_rate_limited() {
    let settings = RegistrySettings {
        publish_burst: 2,
        publish_refill: Duration::from_secs(3600),
        ..registry_settings(Duration::from_secs(3600))
    };
    let (regs, _list) = registries(1, 0, settings).await;
    let reg = &regs[0];
    let (relay, key) = node(true).await;
    let t = now();
    for i in 0..2 {
        let answer = publish_claiming(&relay, &key, reg, addresses_of(&relay), t + i).await;
        assert!(matches!(answer, Response::Published), "{answer:?}");
    }
    let answer = publish_claiming(&relay, &key, reg, addresses_of(&relay), t + 2).await;
    let (code, text) = refusal(&answer);
    assert_eq!(code, RefuseCode::Busy, "{text}");
    assert!(
        text.contains("too many publishes from this address"),
        "{text}"
    );
    // Another relay on the same address is limited too: the limit is per source address.
    let (other, other_key) = node(true).await;
    let answer = publish_claiming(&other, &other_key, reg, addresses_of(&other), t).await;
    assert_eq!(refusal(&answer).0, RefuseCode::Busy);
}
