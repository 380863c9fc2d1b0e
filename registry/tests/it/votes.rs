//! The registries' votes: the apply rules with real signed attestations on a real SQLite store
//! (majority, replay, unknown signer, forged and oversized bytes, the clock median, bandwidth,
//! `listed_since`), co-signers whose states differ refusing to sign, and a hostile registry in
//! a real 3-member Raft group over real QUIC trying each attack of issue 14.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::support::service::*;
use braid_directory::snapshot::Snapshot;
use braid_directory::{Error, ListingInput, ListingParams, SignedDescriptor, build_listing};
use braid_registry::protocol::{RefuseCode, Request, Response};
use braid_registry::raft::{RaftConfig, RaftMember, RegistryRaft};
use braid_registry::service::{RegistryRole, Replica, publish};
use braid_registry::state::{
    Attestation, AttestedRelay, Command, LogId, MAX_ATTESTATION_LEN, Rejection, descriptor_digest,
};
use braid_registry::store::{Applied, Store, StoreLimits};
use ed25519_dalek::SigningKey;

const T0: u64 = 1_700_000_000;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn relay_at(seed: u8, addr: &str, published: u64) -> SignedDescriptor {
    let k = key(seed);
    descriptor(&k, vec![addr.into()], published, published + 86_400)
        .sign(&k)
        .unwrap()
}

fn attest(
    k: &SigningKey,
    now: u64,
    seq: u64,
    relays: &[(&SignedDescriptor, Option<u64>)],
) -> Command {
    Command::Attest(
        Attestation {
            signer: k.verifying_key().to_bytes(),
            now,
            seq,
            relays: relays
                .iter()
                .map(|(d, bw)| AttestedRelay {
                    relay: *d.identity(),
                    digest: descriptor_digest(d),
                    measured_bw: *bw,
                })
                .collect(),
        }
        .sign(k)
        .unwrap(),
    )
}

struct Log {
    store: Store,
    index: u64,
}

impl Log {
    fn open(path: &Path, registries: &[&SigningKey]) -> Self {
        let mut store = Store::open(path, StoreLimits::default()).unwrap();
        let keys: Vec<[u8; 32]> = registries
            .iter()
            .map(|k| k.verifying_key().to_bytes())
            .collect();
        store.set_registries(&keys).unwrap();
        Self { store, index: 0 }
    }

    fn apply(&mut self, c: &Command) -> Applied {
        self.index += 1;
        self.store
            .apply(
                LogId {
                    term: 1,
                    index: self.index,
                },
                c,
            )
            .unwrap()
    }

    /// Applies an attestation that must be taken.
    fn vote(&mut self, c: &Command) {
        let applied = self.apply(c);
        assert!(matches!(applied, Applied::Attested { .. }), "{applied:?}");
    }

    fn apply_bytes(&mut self, bytes: &[u8]) -> Applied {
        self.index += 1;
        self.store
            .apply_encoded(
                LogId {
                    term: 1,
                    index: self.index,
                },
                bytes,
            )
            .unwrap()
    }

    fn listed(&self) -> Vec<([u8; 32], u64, Option<u64>)> {
        let view = self.store.view().unwrap();
        view.listed()
            .map(|r| {
                (
                    *r.descriptor.identity(),
                    r.listed_since.unwrap(),
                    r.measured_bw,
                )
            })
            .collect()
    }
}

#[test]
fn a_relay_is_listed_only_by_a_majority_and_the_clock_is_theirs() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c, stranger) = (key(101), key(102), key(103), key(104));
    let mut log = Log::open(&dir.path().join("s.db"), &[&a, &b, &c]);
    let d = relay_at(1, "/ip4/127.0.0.1/udp/4001/quic-v1", T0);
    let id = *d.identity();
    assert_eq!(
        log.apply(&Command::Publish(d.clone())),
        Applied::Stored { replaced: false }
    );

    // One registry's vote lists nothing; its clock alone does not move the state clock.
    assert_eq!(
        log.apply(&attest(&a, T0 + 10, 1, &[(&d, Some(300))])),
        Applied::Attested {
            counted: 1,
            clock: 0
        }
    );
    assert!(log.listed().is_empty());
    // A second one does: the clock is the second largest, the bandwidth the low median.
    assert_eq!(
        log.apply(&attest(&b, T0 + 5, 1, &[(&d, Some(100))])),
        Applied::Attested {
            counted: 1,
            clock: T0 + 5
        }
    );
    assert_eq!(log.listed(), vec![(id, T0 + 5, Some(100))]);

    // Replays and stale attestations are refused.
    let again = attest(&a, T0 + 10, 1, &[(&d, None)]);
    assert_eq!(
        log.apply(&again),
        Applied::Rejected(Rejection::Replayed {
            now: T0 + 10,
            seq: 1,
            last_now: T0 + 10,
            last_seq: 1
        })
    );
    assert!(matches!(
        log.apply(&attest(&a, T0 + 9, 5, &[])),
        Applied::Rejected(Rejection::Replayed { .. })
    ));
    // Same second, higher seq: taken.
    assert!(matches!(
        log.apply(&attest(&a, T0 + 10, 2, &[])),
        Applied::Attested { .. }
    ));
    // A key that is not a configured registry.
    assert_eq!(
        log.apply(&attest(&stranger, T0 + 20, 1, &[(&d, None)])),
        Applied::Rejected(Rejection::UnknownSigner)
    );
    // Forged: signed by the stranger, in c's name.
    let mut forged = attest(&stranger, T0 + 20, 1, &[(&d, None)]).encode();
    forged[3..35].copy_from_slice(&c.verifying_key().to_bytes());
    assert_eq!(
        log.apply_bytes(&forged),
        Applied::Rejected(Rejection::BadCommand(Error::Malformed {
            what: "attestation signature does not verify against its signer"
        }))
    );
    // Oversized.
    let mut big = vec![1u8, 3];
    big.resize(2 + MAX_ATTESTATION_LEN + 1, 0);
    assert!(matches!(
        log.apply_bytes(&big),
        Applied::Rejected(Rejection::BadCommand(Error::Malformed { .. }))
    ));

    // A hostile clock (c at 2^62) and a hostile Expire move nothing past the honest ones.
    let hostile = attest(&c, 1 << 62, 1, &[]);
    assert_eq!(
        log.apply(&hostile),
        Applied::Attested {
            counted: 0,
            clock: T0 + 10
        }
    );
    assert_eq!(
        log.apply(&Command::Expire { now: 1 << 62 }),
        Applied::Expired { removed: 0 }
    );
    assert_eq!(log.store.clock().unwrap(), T0 + 10);
    assert_eq!(log.listed(), vec![(id, T0 + 5, Some(100))]);

    // An attestation of another descriptor of the relay (not the current one) is not counted.
    let newer = relay_at(1, "/ip4/127.0.0.1/udp/4001/quic-v1", T0 + 60);
    assert_eq!(
        log.apply(&attest(&a, T0 + 11, 1, &[(&newer, None)])),
        Applied::Attested {
            counted: 0,
            clock: T0 + 11
        }
    );
    // The newer descriptor with the same addresses keeps the votes and listed_since.
    assert_eq!(
        log.apply(&Command::Publish(newer.clone())),
        Applied::Stored { replaced: true }
    );
    assert_eq!(log.listed(), vec![(id, T0 + 5, Some(100))]);
    // Moved addresses need new votes.
    let moved = relay_at(1, "/ip4/127.0.0.1/udp/4002/quic-v1", T0 + 120);
    assert_eq!(
        log.apply(&Command::Publish(moved.clone())),
        Applied::Stored { replaced: true }
    );
    assert!(log.listed().is_empty());
    log.vote(&attest(&a, T0 + 200, 1, &[(&moved, None)]));
    log.vote(&attest(&b, T0 + 200, 1, &[(&moved, None)]));
    assert_eq!(log.listed(), vec![(id, T0 + 200, None)]);

    // Votes older than the window stop counting: the relay drops out, and listed_since
    // starts again when it is re-attested.
    let late = T0 + 200 + 3600;
    log.vote(&attest(&a, late, 1, &[]));
    log.vote(&attest(&b, late, 1, &[]));
    assert!(log.listed().is_empty());
    log.vote(&attest(&a, late + 1, 1, &[(&moved, None)]));
    log.vote(&attest(&b, late + 1, 1, &[(&moved, None)]));
    assert_eq!(log.listed(), vec![(id, late + 1, None)]);

    // The votes travel in the Raft snapshot image: a restored store has the same view.
    let other = tempfile::tempdir().unwrap();
    let mut copy = Log::open(&other.path().join("s.db"), &[&a, &b, &c]);
    copy.store
        .restore(&log.store.snapshot_bytes().unwrap())
        .unwrap();
    assert_eq!(copy.store.view().unwrap(), log.store.view().unwrap());
    assert_eq!(copy.store.image().unwrap(), log.store.image().unwrap());
}

/// Three registries whose stores the test feeds (no Raft, no attestation loops): when the two
/// co-signers' states differ from the builder's, nobody co-signs and no snapshot is made;
/// when one agrees, the majority signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_whose_co_signers_disagree_is_not_signed() {
    let (regs, _list) =
        registries_with(3, 0, registry_settings(Duration::from_secs(3600)), false).await;
    let keys: Vec<SigningKey> = regs.iter().map(|r| r.key.clone()).collect();
    let t = now();
    let d1 = relay_at(1, "/ip4/127.0.0.1/udp/9/quic-v1", t);
    let d2 = relay_at(2, "/ip4/127.0.0.1/udp/10/quic-v1", t);
    // A lists d1 and d2, B only d1, C only d2, all at the same state clock.
    let votes: [&[&SignedDescriptor]; 3] = [&[&d1, &d2], &[&d1], &[&d2]];
    for (reg, relays) in regs.iter().zip(votes) {
        for d in [&d1, &d2] {
            let _ = bounded(reg.replica.submit(Command::Publish(d.clone())))
                .await
                .unwrap();
        }
        feed_votes(&reg.replica, &keys, relays, t, 1).await;
    }
    let err = bounded(regs[0].role.build_snapshot_now())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 of 3 registries signed"), "{err}");
    assert!(
        err.contains("not the snapshot this registry builds") || err.contains("does not give"),
        "{err}"
    );
    assert!(regs.iter().all(|r| r.role.snapshot().is_none()));

    // B catches up (now lists d2 as well): it agrees, and the majority signs.
    feed_votes(&regs[1].replica, &keys, &[&d2], t, 2).await;
    // (The leader loop, which retries while nothing is served, may get there first.)
    let built = match bounded(regs[0].role.build_snapshot_now()).await {
        Ok(built) => built,
        Err(_) => regs[0].role.snapshot().unwrap(),
    };
    assert_eq!(built.signers().len(), 2);
    assert_eq!(built.descriptors().len(), 2);
}

/// A node of the hostile-registry test: Raft, and for the honest ones the registry role.
struct Member {
    transport: braid_transport::Transport,
    key: SigningKey,
    raft: RegistryRaft,
    role: Option<RegistryRole>,
}

/// A 3-registry group over real QUIC and Raft where registry 3 is hostile: it runs Raft (so
/// it can propose anything) but no honest role, and drives the real protocol with its key.
/// Each attack of issue 14 is tried and the honest majority's checks refuse it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_registry_is_outvoted() {
    let root = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(node(true).await);
    }
    let list =
        braid_registry::service::Registries::new(nodes.iter().map(|(t, _)| peer_of(t)).collect())
            .unwrap();
    let members: Vec<RaftMember> = nodes
        .iter()
        .zip(1..)
        .map(|((t, _), id)| RaftMember {
            id,
            peer: t.peer_id(),
            addr: t.listen_addrs()[0].clone(),
        })
        .collect();
    let start = |id: u64, t: braid_transport::Transport| {
        let config = RaftConfig::new(id, members.clone(), root.path().join(format!("n{id}")));
        async move { bounded(RegistryRaft::start(t, config)).await.unwrap() }
    };
    // The honest two first, so that one of them leads (the snapshot builder); the hostile
    // one joins as a follower and attacks through the log and the registry protocol.
    let mut group = Vec::new();
    for (i, (t, k)) in nodes.into_iter().enumerate() {
        let raft = if i < 2 {
            Some(start(i as u64 + 1, t.clone()).await)
        } else {
            None
        };
        group.push((t, k, raft));
    }
    let honest_rafts: Vec<RegistryRaft> = group.iter().filter_map(|(_, _, r)| r.clone()).collect();
    eventually("an honest leader", || {
        honest_rafts
            .iter()
            .any(|r| r.status().leader == Some(r.status().id))
    })
    .await;
    let mut members_up = Vec::new();
    for (i, (t, k, raft)) in group.into_iter().enumerate() {
        let raft = match raft {
            Some(r) => r,
            None => start(i as u64 + 1, t.clone()).await,
        };
        let role = if i < 2 {
            let settings = registry_settings(Duration::from_secs(2));
            let replica = Arc::new(RaftReplica(raft.clone())) as Arc<dyn Replica>;
            Some(
                RegistryRole::start(&t, replica, list.clone(), k.clone(), settings)
                    .await
                    .unwrap(),
            )
        } else {
            None
        };
        members_up.push(Member {
            transport: t,
            key: k,
            raft,
            role,
        });
    }
    let [a, b, h] = &members_up[..] else {
        unreachable!()
    };
    let honest = [a, b];

    // Two real relays publish through the honest registries and get dialed back by both.
    let mut relays = Vec::new();
    for _ in 0..2 {
        let (t, k) = node(true).await;
        let d = descriptor(&k, addresses_of(&t), now(), now() + 86_400)
            .sign(&k)
            .unwrap();
        bounded(publish(&t, &list, &d, Duration::from_secs(20)))
            .await
            .unwrap();
        relays.push((t, d));
    }
    let honest_ids: Vec<[u8; 32]> = {
        let mut v: Vec<_> = relays.iter().map(|(_, d)| *d.identity()).collect();
        v.sort();
        v
    };
    let listed_ids = |m: &Member| -> Vec<[u8; 32]> {
        m.raft
            .view()
            .unwrap()
            .listed()
            .map(|r| *r.descriptor.identity())
            .collect()
    };
    for m in &honest {
        eventually("both relays listed", || listed_ids(m) == honest_ids).await;
    }

    // (a) Sybils: the hostile registry publishes descriptors nobody answers for and attests
    // them itself. They are stored, but one vote is not a majority and the honest
    // registries' own dial-backs fail.
    let mut sybils = Vec::new();
    for i in 0..3u8 {
        let s = relay_at(
            200 + i,
            &format!("/ip4/127.0.0.1/udp/{}/quic-v1", 9 + u16::from(i)),
            now(),
        );
        let applied = bounded(h.raft.submit(Command::Publish(s.clone())))
            .await
            .unwrap();
        assert_eq!(applied, Applied::Stored { replaced: false });
        sybils.push(s);
    }
    let sybil_votes: Vec<(&SignedDescriptor, Option<u64>)> =
        sybils.iter().map(|s| (s, Some(1 << 40))).collect();
    let applied = bounded(h.raft.submit(attest(&h.key, now(), 1, &sybil_votes)))
        .await
        .unwrap();
    assert!(
        matches!(applied, Applied::Attested { counted: 3, .. }),
        "{applied:?}"
    );

    // (c) The clock attack: an attestation at 2^62 and Expire{2^62}.
    let applied = bounded(h.raft.submit(attest(&h.key, 1 << 62, 1, &[])))
        .await
        .unwrap();
    assert!(
        matches!(applied, Applied::Attested { clock, .. } if clock < now() + 60),
        "{applied:?}"
    );
    let applied = bounded(h.raft.submit(Command::Expire { now: 1 << 62 }))
        .await
        .unwrap();
    assert_eq!(applied, Applied::Expired { removed: 0 });

    // (d) An attestation forged in an honest registry's name: the leader refuses to propose
    // it and every replica would reject it; a non-registry key is refused by the rule.
    let mut forged = attest(&h.key, now(), 2, &sybil_votes).encode();
    forged[3..35].copy_from_slice(&a.key.verifying_key().to_bytes());
    assert!(braid_registry::state::Command::decode(&forged).is_err());
    let stranger = key(77);
    let applied = bounded(h.raft.submit(attest(&stranger, now(), 1, &sybil_votes)))
        .await
        .unwrap();
    assert_eq!(applied, Applied::Rejected(Rejection::UnknownSigner));

    // The honest replicas list the two real relays, none of the sybils, at an honest clock.
    for m in &honest {
        let view = m.raft.view().unwrap();
        assert!(view.clock <= now() + 1, "clock {}", view.clock);
        assert_eq!(listed_ids(m), honest_ids);
        for s in &sybils {
            let r = view
                .relays
                .iter()
                .find(|r| r.descriptor.identity() == s.identity())
                .unwrap();
            assert!(r.listed_since.is_none());
            assert_eq!(
                r.votes.len(),
                1,
                "only the hostile registry vouches for a sybil"
            );
        }
    }

    // (b) The hostile registry asks each honest one to co-sign a snapshot of only its relays,
    // and one leaving out an honest relay (a subset of their state): both refused. The
    // honest snapshot at the same clock is signed (the refusals are about content).
    let set = list.set();
    for m in &honest {
        let view = m.raft.view().unwrap();
        let (issued_at, valid_until) = (view.clock, view.clock + 600);
        let only_sybils = snap(set, issued_at, valid_until, sorted_ds(&sybils));
        let subset = snap(set, issued_at, valid_until, vec![relays[0].1.clone()]);
        for candidate in [only_sybils, subset] {
            let request = Request::CoSign(candidate.into_unsigned()).encode();
            let answer = raw(&h.transport, m.transport.peer_id(), &request).await;
            let (code, text) = refusal(&answer);
            assert_eq!(code, RefuseCode::BadSnapshot, "{text}");
        }
        let inputs = view
            .listed()
            .map(|r| ListingInput {
                descriptor: r.descriptor.clone(),
                measured_bw: r.measured_bw,
                listed_since: r.listed_since.unwrap(),
            })
            .collect();
        let params = ListingParams::default();
        let listed = build_listing(inputs, &params, issued_at);
        let right = Snapshot::new(
            set,
            issued_at,
            valid_until,
            params.unmeasured_weight,
            listed,
        )
        .unwrap();
        let answer = raw(
            &h.transport,
            m.transport.peer_id(),
            &Request::CoSign(right.into_unsigned()).encode(),
        )
        .await;
        assert!(matches!(answer, Response::Signature(_)), "{answer:?}");
    }

    // The snapshots the honest registries sign and serve list exactly the real relays.
    let after = now();
    for m in &honest {
        let role = m.role.as_ref().unwrap();
        eventually("a snapshot after the attacks", || {
            role.snapshot().is_some_and(|s| s.issued_at() >= after)
        })
        .await;
        let served = role.snapshot().unwrap();
        let mut ids: Vec<[u8; 32]> = served.descriptors().iter().map(|d| *d.identity()).collect();
        ids.sort();
        assert_eq!(ids, honest_ids);
    }
    for m in members_up {
        if let Some(role) = m.role {
            role.stop();
        }
        m.raft.shutdown().await;
    }
}

/// A snapshot of `ds` (as new, unmeasured relays) with the default listing rule.
fn snap(
    set: &braid_directory::RegistrySet,
    issued_at: u64,
    valid_until: u64,
    ds: Vec<SignedDescriptor>,
) -> Snapshot {
    let params = ListingParams::default();
    let inputs = ds
        .into_iter()
        .map(|descriptor| ListingInput {
            descriptor,
            measured_bw: None,
            listed_since: issued_at,
        })
        .collect();
    let listed = build_listing(inputs, &params, issued_at);
    Snapshot::new(
        set,
        issued_at,
        valid_until,
        params.unmeasured_weight,
        listed,
    )
    .unwrap()
}

fn sorted_ds(ds: &[SignedDescriptor]) -> Vec<SignedDescriptor> {
    let mut v = ds.to_vec();
    v.sort_by_key(|d| *d.identity());
    v
}
