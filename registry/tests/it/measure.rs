//! Bandwidth measurement against real relays in-process (real QUIC on 127.0.0.1, a real
//! SQLite store): a rate-limited relay that claims 2^62 bytes/s is measured at about its
//! limit, an unlimited one is measured, and a peer that does not answer gets no measurement.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use braid_directory::{Descriptor, ExitPolicy};
use braid_registry::service::{MeasureSettings, RegistrySettings, Replica};
use braid_registry::state::Command;
use braid_registry::store::Applied;
use braid_relay::ratelimit::BandwidthLimit;
use braid_relay::service::{Faults, RelayLimits, RelayService, RelayServiceConfig};
use braid_transport::{PeerId, Transport};
use ed25519_dalek::SigningKey;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::support::service::{
    addresses_of, bounded, eventually, node, now, registries, registry_settings,
};

const CLAIMED: u64 = 1 << 62;
const LIMIT: u64 = 1_000_000;

/// A relay service on a fresh loopback transport, with an optional rate limit.
async fn relay(bandwidth: Option<u64>) -> (Transport, SigningKey, RelayService, [u8; 32]) {
    let (transport, key) = node(true).await;
    let secret = [0x42; 32];
    let service = RelayService::start(
        transport.clone(),
        RelayServiceConfig {
            onion_secret: secret,
            exit_policy: ExitPolicy::reject_all(),
            limits: RelayLimits::default(),
            faults: Faults::default(),
            bandwidth: bandwidth.map(|rate| {
                let rate = NonZeroU64::new(rate).unwrap();
                // The node's default: a burst of one second's worth.
                BandwidthLimit { rate, burst: rate }
            }),
            accounting: None,
        },
    )
    .unwrap();
    let onion = PublicKey::from(&StaticSecret::from(secret)).to_bytes();
    (transport, key, service, onion)
}

/// Lists the relay in the replica as claiming `CLAIMED` bytes/s.
async fn list(
    replica: &Arc<impl Replica>,
    transport: &Transport,
    key: &SigningKey,
    onion: [u8; 32],
) {
    let t = now();
    let signed = Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: onion,
        addresses: addresses_of(transport),
        nickname: "measured".into(),
        bandwidth: CLAIMED,
        exit_policy: ExitPolicy::reject_all(),
        published: t,
        expires: t + 3600,
        family: Vec::new(),
    }
    .sign(key)
    .unwrap();
    let applied = bounded(replica.submit(Command::Publish(signed)))
        .await
        .unwrap();
    assert!(matches!(applied, Applied::Stored { .. }), "{applied:?}");
}

fn settings() -> RegistrySettings {
    RegistrySettings {
        measure: MeasureSettings {
            first_delay: Duration::from_millis(100),
            refresh_interval: Duration::from_millis(200),
            timeout: Duration::from_secs(30),
            ..MeasureSettings::default()
        },
        ..registry_settings(Duration::from_secs(3600))
    }
}

#[tokio::test]
async fn a_relay_claiming_2_62_gets_its_measured_rate_only() {
    let (regs, _) = registries(1, 0, settings()).await;
    let reg = &regs[0];
    let (limited, limited_key, _limited_service, onion) = relay(Some(LIMIT)).await;
    let (fast, fast_key, _fast_service, fast_onion) = relay(None).await;
    // A peer that is listed but runs no relay service: it cannot answer a measurement.
    let (silent, silent_key) = node(true).await;
    list(&reg.replica, &limited, &limited_key, onion).await;
    list(&reg.replica, &silent, &silent_key, [7; 32]).await;

    let peer: PeerId = limited.peer_id();
    eventually("the limited relay is measured", || {
        reg.role.measured(&peer).is_some()
    })
    .await;
    let measured = reg.role.measured(&peer).unwrap();
    // The measurement, not the claim: about the relay's limit. The band is generous: the
    // relay's limiter, the loopback link and the (debug-build, shared) CPU are real, and a
    // loaded machine can relay less than the limit, never more.
    assert!(
        (LIMIT / 4..=LIMIT * 2).contains(&measured),
        "measured {measured} bytes/s for a {LIMIT} bytes/s relay claiming {CLAIMED}"
    );
    // Listed only now, so its measurement does not share the CPU with the limited one's.
    list(&reg.replica, &fast, &fast_key, fast_onion).await;
    let fast_peer = fast.peer_id();
    eventually("the unlimited relay is measured", || {
        reg.role.measured(&fast_peer).is_some()
    })
    .await;
    eprintln!(
        "measured: limited {measured} B/s, unlimited {} B/s",
        reg.role.measured(&fast_peer).unwrap_or(0)
    );
    // The silent peer was due as early as the others and its attempt has ended by now (a
    // refused stream fails at once); it has no measurement.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(reg.role.measured(&silent.peer_id()), None);
}

#[tokio::test]
async fn measuring_can_be_switched_off() {
    let mut s = settings();
    s.measure.enabled = false;
    let (regs, _) = registries(1, 0, s).await;
    let (limited, key, _service, onion) = relay(None).await;
    list(&regs[0].replica, &limited, &key, onion).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(regs[0].role.measured(&limited.peer_id()), None);
}
