//! Shared setup of the registry service tests (`service.rs`, `service_feed.rs`): nodes on
//! real QUIC, one-registry groups on real SQLite, descriptors, raw frames.

#![allow(dead_code)] // each test module uses a subset

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use braid_directory::{Descriptor, ExitPolicy, SignedDescriptor};
use braid_registry::protocol::{RefuseCode, Response};
use braid_registry::service::{
    FeedSettings, PROTOCOL, PeerAddresses, Registries, RegistryRole, RegistrySettings, Replica,
    RoleOptions, SoloReplica,
};
use braid_registry::state::{Attestation, AttestedRelay, Command, descriptor_digest};
use braid_registry::store::Applied;
use braid_registry::store::StoreLimits;
use braid_transport::{Identity, Multiaddr, PeerId, Transport, TransportConfig};
use ed25519_dalek::SigningKey;
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use tempfile::TempDir;
use tokio::time::{sleep, timeout};

/// Upper bound on any single test step.
pub(crate) const STEP: Duration = Duration::from_secs(60);

pub(crate) async fn bounded<T>(future: impl Future<Output = T>) -> T {
    timeout(STEP, future).await.expect("test step timed out")
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Polls `check` every 100 ms until it holds (bounded by `STEP`).
pub(crate) async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + STEP;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        sleep(Duration::from_millis(100)).await;
    }
}

/// A transport listening on QUIC at 127.0.0.1 (or not listening), and its signing key.
pub(crate) async fn node(listen: bool) -> (Transport, SigningKey) {
    let identity = Identity::generate();
    let key = SigningKey::from_bytes(&identity.secret_bytes());
    let listen = if listen {
        vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()]
    } else {
        Vec::new()
    };
    let config = TransportConfig {
        listen,
        ..TransportConfig::default()
    };
    (
        bounded(Transport::start(identity, config)).await.unwrap(),
        key,
    )
}

pub(crate) fn peer_of(t: &Transport) -> PeerAddresses {
    PeerAddresses {
        peer_id: t.peer_id(),
        addresses: t.listen_addrs(),
    }
}

pub(crate) fn registry_settings(snapshot_interval: Duration) -> RegistrySettings {
    RegistrySettings {
        probe_timeout: Duration::from_secs(2),
        expire_interval: Duration::from_secs(1),
        snapshot_interval,
        snapshot_validity: Duration::from_secs(600),
        replication_wait: Duration::from_secs(2),
        peer_timeout: Duration::from_secs(20),
        // The relays of these tests run on loopback.
        allow_private_addresses: true,
        // Every relay of these tests publishes from 127.0.0.1.
        publish_burst: 1000,
        ..RegistrySettings::default()
    }
}

pub(crate) fn feed_settings() -> FeedSettings {
    FeedSettings {
        refresh_interval: Duration::from_secs(3600),
        retry_interval: Duration::from_secs(1),
        request_timeout: Duration::from_secs(20),
        max_sources_per_round: 4,
        relay_sources: 0,
        bootstrap_relays: 0,
    }
}

/// A snapshot listing `relays` relays that `role` serves: built now, or built by its leader
/// loop first (it builds at once while a forming network lists new relays). Bounded by `STEP`.
pub(crate) async fn build_now(
    role: &RegistryRole,
    relays: usize,
) -> braid_directory::snapshot::VerifiedSnapshot {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let error = match bounded(role.build_snapshot_now()).await {
            Ok(built) if built.descriptors().len() == relays => return built,
            Ok(built) => format!("built with {} relays", built.descriptors().len()),
            Err(e) => e.to_string(),
        };
        if let Some(served) = role.snapshot()
            && served.descriptors().len() == relays
        {
            return served;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot with {relays} relays: {error}"
        );
        sleep(Duration::from_millis(200)).await;
    }
}

/// One registry node: transport, key, store, role.
pub(crate) struct Reg {
    pub transport: Transport,
    pub key: SigningKey,
    pub replica: Arc<SoloReplica>,
    pub role: RegistryRole,
    pub dir: TempDir,
}

/// `n` registries (one group); only `leader` is flagged as the leader. Each attests what it
/// verifies to its own store.
pub(crate) async fn registries(
    n: usize,
    leader: usize,
    settings: RegistrySettings,
) -> (Vec<Reg>, Registries) {
    registries_with(n, leader, settings, true).await
}

/// [`registries`], with the attestation loops on or off (off: the test feeds the stores).
pub(crate) async fn registries_with(
    n: usize,
    leader: usize,
    settings: RegistrySettings,
    attest: bool,
) -> (Vec<Reg>, Registries) {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(true).await);
    }
    let list = Registries::new(nodes.iter().map(|(t, _)| peer_of(t)).collect()).unwrap();
    let mut regs = Vec::new();
    for (i, (transport, key)) in nodes.into_iter().enumerate() {
        let dir = TempDir::new().unwrap();
        let replica = Arc::new(
            SoloReplica::open(&dir.path().join("state.db"), StoreLimits::default(), &list).unwrap(),
        );
        replica.set_leader(i == leader);
        let settings = RegistrySettings {
            data_dir: Some(dir.path().to_path_buf()),
            ..settings.clone()
        };
        let options = RoleOptions {
            attest,
            ..RoleOptions::default()
        };
        let role = RegistryRole::start_with(
            &transport,
            Arc::clone(&replica) as Arc<dyn Replica>,
            list.clone(),
            key.clone(),
            settings,
            options,
        )
        .await
        .unwrap();
        regs.push(Reg {
            transport,
            key,
            replica,
            role,
            dir,
        });
    }
    (regs, list)
}

pub(crate) fn descriptor(
    key: &SigningKey,
    addresses: Vec<String>,
    published: u64,
    expires: u64,
) -> Descriptor {
    Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: [9; 32],
        addresses,
        nickname: "testrelay".into(),
        bandwidth: 1 << 20,
        exit_policy: ExitPolicy::reject_all(),
        family: Vec::new(),
        published,
        expires,
    }
}

pub(crate) fn addresses_of(t: &Transport) -> Vec<String> {
    t.listen_addrs().iter().map(Multiaddr::to_string).collect()
}

/// Applies to `replica` one attestation of `relays` by each of `keys`, at `now` with `seq`.
pub(crate) async fn feed_votes(
    replica: &SoloReplica,
    keys: &[SigningKey],
    relays: &[&SignedDescriptor],
    now: u64,
    seq: u64,
) {
    for key in keys {
        let signed = Attestation {
            signer: key.verifying_key().to_bytes(),
            now,
            seq,
            relays: relays
                .iter()
                .map(|d| AttestedRelay {
                    relay: *d.identity(),
                    digest: descriptor_digest(d),
                    measured_bw: None,
                })
                .collect(),
        }
        .sign(key)
        .unwrap();
        let applied = bounded(replica.submit(Command::Attest(signed)))
            .await
            .unwrap();
        assert!(matches!(applied, Applied::Attested { .. }), "{applied:?}");
    }
}

/// Waits until `replica` lists exactly `n` relays (a majority attested them) and its clock
/// moved.
pub(crate) async fn wait_listed(replica: &SoloReplica, n: usize) {
    eventually("the relays are listed", || {
        let view = replica.view().unwrap();
        view.clock > 0 && view.listed().count() == n
    })
    .await;
}

/// The published relays (listed or not).
pub(crate) fn listed(replica: &SoloReplica) -> Vec<[u8; 32]> {
    replica
        .descriptors()
        .unwrap()
        .iter()
        .map(|d| *d.identity())
        .collect()
}

/// Sends raw bytes on a new `/braid/registry/1` stream and decodes the one answer.
pub(crate) async fn raw(transport: &Transport, peer: PeerId, bytes: &[u8]) -> Response {
    bounded(async {
        let mut stream = transport.open_stream(peer, PROTOCOL).await.unwrap();
        // The server may answer from the header alone and stop our sending side.
        let _ = stream.write_all(bytes).await;
        let _ = stream.flush().await;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        Response::decode(&answer).unwrap()
    })
    .await
}

pub(crate) fn refusal(response: &Response) -> (RefuseCode, String) {
    match response {
        Response::Refused(r) => (r.code(), r.text().to_owned()),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The Raft group as the service's replica (what `braid-node` does in its registry role).
pub(crate) struct RaftReplica(pub braid_registry::raft::RegistryRaft);

impl Replica for RaftReplica {
    fn submit(
        &self,
        command: Command,
    ) -> futures::future::BoxFuture<'static, Result<Applied, braid_registry::service::ReplicaError>>
    {
        let raft = self.0.clone();
        Box::pin(async move {
            raft.submit(command).await.map_err(|e| {
                braid_registry::service::ReplicaError::Unavailable {
                    reason: e.to_string(),
                }
            })
        })
    }

    fn descriptors(&self) -> Result<Vec<SignedDescriptor>, braid_registry::service::ReplicaError> {
        self.0
            .descriptors()
            .map_err(|e| braid_registry::service::ReplicaError::Unavailable {
                reason: e.to_string(),
            })
    }

    fn view(
        &self,
    ) -> Result<braid_registry::store::StateView, braid_registry::service::ReplicaError> {
        self.0
            .view()
            .map_err(|e| braid_registry::service::ReplicaError::Unavailable {
                reason: e.to_string(),
            })
    }

    fn is_leader(&self) -> bool {
        let s = self.0.status();
        s.leader == Some(s.id)
    }
}
