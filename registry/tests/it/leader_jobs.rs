//! Leader-only jobs and lost leadership, over real QUIC and real SQLite stores: a registry
//! deposed in the middle of building a snapshot stops before it asks anyone to sign, and a
//! co-signer that follows another leader refuses to sign for an ex-leader that still believes
//! it leads (the restarted ex-leader seen in issue 17). Raft is replaced by single stores whose
//! leadership the test sets; the snapshot protocol, signatures and transport are real.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use braid_directory::SignedDescriptor;
use braid_registry::service::{
    Registries, RegistryRole, Replica, ReplicaError, RoleOptions, SoloReplica,
};
use braid_registry::state::Command;
use braid_registry::store::{Applied, StateView, StoreLimits};
use braid_transport::PeerId;
use ed25519_dalek::SigningKey;
use futures::future::BoxFuture;
use tempfile::TempDir;

use braid_registry::service::RegistrySettings;

use crate::support::service::*;

/// A single store whose leadership the test scripts: `leader_term` answers `terms[i]` on its
/// i-th call (the last one for ever after), `leader` names `follows`.
struct Scripted {
    store: Arc<SoloReplica>,
    terms: Vec<Option<u64>>,
    calls: AtomicU64,
    follows: Option<PeerId>,
}

impl Replica for Scripted {
    fn submit(&self, command: Command) -> BoxFuture<'static, Result<Applied, ReplicaError>> {
        self.store.submit(command)
    }
    fn descriptors(&self) -> Result<Vec<SignedDescriptor>, ReplicaError> {
        self.store.descriptors()
    }
    fn view(&self) -> Result<StateView, ReplicaError> {
        self.store.view()
    }
    /// The leader loop asks this first: false keeps it idle, so only the test's builds
    /// consume the script.
    fn is_leader(&self) -> bool {
        false
    }
    fn leader_term(&self) -> Option<u64> {
        let i = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
        self.terms[i.min(self.terms.len() - 1)]
    }
    fn leader(&self) -> Option<PeerId> {
        self.follows
    }
}

struct Group {
    roles: Vec<RegistryRole>,
    _dirs: Vec<TempDir>,
}

/// Three registries over `list`'s transports; registry i's replica leads by `terms[i]` and
/// follows `follows[i]`. Each store holds the same relay attested by all three.
async fn group(terms: [Vec<Option<u64>>; 3], follows: [Option<usize>; 3]) -> Group {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(true).await);
    }
    let list = Registries::new(nodes.iter().map(|(t, _)| peer_of(t)).collect()).unwrap();
    let peers: Vec<PeerId> = nodes.iter().map(|(t, _)| t.peer_id()).collect();
    let keys: Vec<SigningKey> = nodes.iter().map(|(_, k)| k.clone()).collect();
    let relay_key = SigningKey::from_bytes(&[7; 32]);
    let t = now();
    let d = descriptor(
        &relay_key,
        vec!["/ip4/127.0.0.1/udp/9/quic-v1".into()],
        t,
        t + 86_400,
    )
    .sign(&relay_key)
    .unwrap();
    let (mut roles, mut dirs) = (Vec::new(), Vec::new());
    for (i, ((transport, key), terms)) in nodes.into_iter().zip(terms).enumerate() {
        let dir = TempDir::new().unwrap();
        let store = Arc::new(
            SoloReplica::open(&dir.path().join("state.db"), StoreLimits::default(), &list).unwrap(),
        );
        let _ = bounded(store.submit(Command::Publish(d.clone())))
            .await
            .unwrap();
        feed_votes(&store, &keys, &[&d], t, 1).await;
        let replica = Scripted {
            store,
            terms,
            calls: AtomicU64::new(0),
            follows: follows[i].map(|f| peers[f]),
        };
        let settings = RegistrySettings {
            data_dir: Some(dir.path().to_path_buf()),
            ..registry_settings(Duration::from_secs(3600))
        };
        let role = RegistryRole::start_with(
            &transport,
            Arc::new(replica) as Arc<dyn Replica>,
            list.clone(),
            key,
            settings,
            RoleOptions {
                attest: false,
                ..RoleOptions::default()
            },
        )
        .await
        .unwrap();
        roles.push(role);
        dirs.push(dir);
    }
    Group { roles, _dirs: dirs }
}

/// Deposed after the build started (its second look at its term finds none): nothing is
/// asked, signed, served or offered anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_deposed_mid_build_gets_nothing_co_signed() {
    let g = group(
        [vec![Some(1), None], vec![None], vec![None]],
        [None, Some(0), Some(0)],
    )
    .await;
    let err = bounded(g.roles[0].build_snapshot_now())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no longer the leader of term 1") && err.contains("asking for signatures"),
        "{err}"
    );
    // Give a stray offer time to land: none may.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(g.roles.iter().all(|r| r.snapshot().is_none()));
}

/// Re-elected in a newer term between two steps (term 1, then term 2): the job of term 1 stops
/// too, although the registry leads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_an_older_term_stops_when_the_term_changed() {
    let g = group(
        [vec![Some(1), Some(2)], vec![None], vec![None]],
        [None, Some(0), Some(0)],
    )
    .await;
    let err = bounded(g.roles[0].build_snapshot_now())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("no longer the leader of term 1"), "{err}");
    assert!(g.roles.iter().all(|r| r.snapshot().is_none()));
}

/// An ex-leader that still believes it leads (registry 0) asks registries that follow the
/// real leader (registry 1): both refuse, and no snapshot is made; the real leader gets its
/// own co-signed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_signers_sign_only_for_the_leader_they_follow() {
    let g = group(
        [vec![Some(1)], vec![Some(2)], vec![None]],
        [Some(0), Some(1), Some(1)],
    )
    .await;
    let err = bounded(g.roles[0].build_snapshot_now())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 of 3 registries signed"), "{err}");
    assert!(err.contains("not the leader"), "{err}");
    assert!(g.roles[0].snapshot().is_none());
    // Registry 1's own build: registry 2 follows it (and registry 0 does not), a majority.
    let built = bounded(g.roles[1].build_snapshot_now()).await.unwrap();
    assert_eq!(built.signers().len(), 2, "registry 1 and registry 2");
}
