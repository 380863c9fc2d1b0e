//! The registry Raft group over real QUIC on 127.0.0.1 with real SQLite files in temp dirs:
//! election, submits through a follower, leader loss, restart and catch-up by a snapshot over
//! 1 MiB, and the RPC server's refusals (non-member, malformed and oversized frames).
//!
//! Timings are printed (`--nocapture`): election after leader loss, one commit through a
//! follower, catch-up of the restarted node.

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use braid_directory::{Descriptor, ExitPolicy, SignedDescriptor};
use braid_registry::raft::{
    PROTOCOL, RaftConfig, RaftMember, RegistryRaft,
    frame::Frame,
    wire::{self, ForwardResponse, RpcRequest, RpcResponse},
};
use braid_registry::state::Command;
use braid_registry::store::{Applied, Store, StoreLimits};
use braid_transport::{Identity, Multiaddr, Transport, TransportConfig};
use ed25519_dalek::SigningKey;
use futures::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Upper bound on any single test step.
const STEP: Duration = Duration::from_secs(120);
const T0: u64 = 1_700_000_000;

fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("test step timed out: {what}"))
}

/// A relay descriptor for relay `i`. `fat` ones list 8 long addresses (about 1.4 KB each), so a
/// few hundred make a state image over 1 MiB.
fn descriptor(i: u32, fat: bool) -> SignedDescriptor {
    let mut seed = [0x5a; 32];
    seed[..4].copy_from_slice(&i.to_be_bytes());
    let key = SigningKey::from_bytes(&seed);
    let addresses = if fat {
        (0..8)
            .map(|k| {
                format!(
                    "/dns/relay-{i}-{k}.{}.example/udp/4001/quic-v1",
                    "x".repeat(120)
                )
            })
            .collect()
    } else {
        vec![format!(
            "/ip4/10.{}.{}.1/udp/4001/quic-v1",
            i / 256 % 256,
            i % 256
        )]
    };
    Descriptor {
        identity: key.verifying_key().to_bytes(),
        onion_key: [7; 32],
        addresses,
        nickname: format!("relay{i}"),
        bandwidth: 1 << 20,
        exit_policy: ExitPolicy::reject_all(),
        family: Vec::new(),
        published: T0,
        expires: T0 + 6 * 86_400,
    }
    .sign(&key)
    .unwrap()
}

fn identity(id: u64) -> Identity {
    Identity::from_secret_bytes([0x40 + id as u8; 32])
}

async fn transport(id: u64, listen: Multiaddr) -> Transport {
    let config = TransportConfig {
        listen: vec![listen],
        ..TransportConfig::default()
    };
    bounded("transport start", Transport::start(identity(id), config))
        .await
        .unwrap()
}

fn config(id: u64, members: &[RaftMember], dir: &Path) -> RaftConfig {
    RaftConfig {
        snapshot_every: 100,
        logs_kept_after_snapshot: 0,
        ..RaftConfig::new(id, members.to_vec(), dir.to_path_buf())
    }
}

struct Node {
    id: u64,
    raft: RegistryRaft,
    transport: Transport,
}

impl Node {
    async fn stop(self) {
        self.raft.shutdown().await;
        self.transport.shutdown().await;
    }
}

/// Starts `n` transports on 127.0.0.1, then a Raft node on each with all of them as members.
async fn group(n: u64, root: &Path) -> (Vec<RaftMember>, Vec<Node>) {
    let mut transports = Vec::new();
    for id in 1..=n {
        transports.push(transport(id, "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()).await);
    }
    let members: Vec<RaftMember> = transports
        .iter()
        .zip(1..)
        .map(|(t, id)| RaftMember {
            id,
            peer: t.peer_id(),
            addr: t.listen_addrs()[0].clone(),
        })
        .collect();
    // All at once, as an init system starts a host's registries.
    let starts = transports.into_iter().zip(1..).map(|(t, id)| {
        let config = config(id, &members, &root.join(format!("node{id}")));
        async move {
            let raft = bounded("raft start", RegistryRaft::start(t.clone(), config))
                .await
                .unwrap();
            Node {
                id,
                raft,
                transport: t,
            }
        }
    });
    let nodes = futures::future::join_all(starts).await;
    (members, nodes)
}

/// Members started at the same instant elect a leader in the first term: each initializes
/// the group after its own random delay, so the first candidate collects the others' votes.
/// (Without the delay every member is a candidate for term 1 at once and the vote splits;
/// openraft's fixed per-node timeouts on a shared tick could then split every later term.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_started_together_elect_a_leader_in_the_first_term() {
    init();
    let root = tempfile::tempdir().unwrap();
    let (_, nodes) = group(3, root.path()).await;
    let started = Instant::now();
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = agreed_leader(&all, Duration::from_secs(30)).await;
    println!("leader {leader} agreed {:?} after start", started.elapsed());
    for n in &nodes {
        assert_eq!(n.raft.status().term, 1, "{:?}", n.raft.status());
    }
    for n in nodes {
        n.stop().await;
    }
}

/// Waits until every node in `nodes` agrees on one leader among them; returns its id.
async fn agreed_leader(nodes: &[&Node], within: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let leaders: Vec<Option<u64>> = nodes.iter().map(|n| n.raft.status().leader).collect();
        if let Some(Some(l)) = leaders.first()
            && leaders.iter().all(|x| *x == Some(*l))
            && nodes.iter().any(|n| n.id == *l)
        {
            return *l;
        }
        assert!(
            start.elapsed() < within,
            "no agreed leader within {within:?}: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Submits `descriptors` through `node`, at most 32 at a time; every one must be stored.
async fn publish_all(node: &RegistryRaft, descriptors: Vec<SignedDescriptor>) -> u64 {
    let mut tasks = JoinSet::new();
    let mut last = 0;
    for d in descriptors {
        if tasks.len() >= 32 {
            let c = tasks.join_next().await.unwrap().unwrap();
            last = last.max(c);
        }
        let node = node.clone();
        tasks.spawn(async move {
            let c = node
                .submit_committed(Command::Publish(d))
                .await
                .expect("submit");
            assert_eq!(c.applied, Applied::Stored { replaced: false });
            c.index
        });
    }
    while let Some(c) = tasks.join_next().await {
        last = last.max(c.unwrap());
    }
    last
}

fn identities(node: &Node) -> Vec<[u8; 32]> {
    node.raft
        .descriptors()
        .unwrap()
        .iter()
        .map(|d| *d.identity())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_elects_replicates_survives_leader_loss_and_catches_up_by_snapshot() {
    init();
    let root = tempfile::tempdir().unwrap();
    let (members, mut nodes) = group(3, root.path()).await;

    // 1. A leader is elected; 200 publishes through a follower apply on all three.
    let all: Vec<&Node> = nodes.iter().collect();
    let leader = agreed_leader(&all, Duration::from_secs(20)).await;
    let follower = nodes.iter().find(|n| n.id != leader).unwrap();
    assert_eq!(follower.raft.status().members, vec![1, 2, 3]);
    let first: Vec<SignedDescriptor> = (0..200).map(|i| descriptor(i, false)).collect();
    let started = Instant::now();
    let last = bounded("200 publishes", publish_all(&follower.raft, first.clone())).await;
    println!(
        "200 publishes through follower {}: {:?} ({:?} each, 32 in flight)",
        follower.id,
        started.elapsed(),
        started.elapsed() / 200
    );
    for n in &nodes {
        bounded("apply", n.raft.wait_applied(last, Duration::from_secs(30)))
            .await
            .unwrap();
    }
    let expected = identities(&nodes[0]);
    assert_eq!(expected.len(), 200);
    for n in &nodes {
        assert_eq!(identities(n), expected, "node {}", n.id);
        assert_eq!(n.raft.descriptors().unwrap().len(), 200);
    }
    // One publish at a time through a follower: the commit latency.
    let mut latencies = Vec::new();
    for i in 200..210 {
        let t = Instant::now();
        let applied = bounded(
            "one publish",
            follower.raft.submit(Command::Publish(descriptor(i, false))),
        )
        .await
        .unwrap();
        latencies.push(t.elapsed());
        assert_eq!(applied, Applied::Stored { replaced: false });
    }
    latencies.sort();
    println!(
        "one publish through a follower, loopback: median {:?}, max {:?}",
        latencies[5], latencies[9]
    );
    // Republishing the same descriptor is a deterministic no-op.
    let again = follower
        .raft
        .submit(Command::Publish(first[0].clone()))
        .await
        .unwrap();
    assert_eq!(again, Applied::Unchanged);

    // 2. The leader goes away: the two others elect a new one and keep committing.
    let index = nodes.iter().position(|n| n.id == leader).unwrap();
    let old = nodes.remove(index);
    let old_id = old.id;
    let old_dir = root.path().join(format!("node{}", old.id));
    let old_addr = members[index].addr.clone();
    old.stop().await;
    let lost = Instant::now();
    let survivors: Vec<&Node> = nodes.iter().collect();
    let new_leader = agreed_leader(&survivors, Duration::from_secs(15)).await;
    println!(
        "new leader {new_leader} elected {:?} after the leader stopped",
        lost.elapsed()
    );
    assert_ne!(new_leader, leader);
    let c = bounded(
        "publish after leader loss",
        nodes[0]
            .raft
            .submit_committed(Command::Publish(descriptor(1000, false))),
    )
    .await
    .unwrap();
    for n in &nodes {
        n.raft.wait_applied(c.index, STEP).await.unwrap();
        assert_eq!(n.raft.descriptors().unwrap().len(), 211);
    }

    // 3. While it is down, enough fat descriptors for a state image over 1 MiB; snapshots
    // (every 100 entries, no log kept) purge the log, so the restarted node needs a snapshot.
    let fat: Vec<SignedDescriptor> = (2000..2800).map(|i| descriptor(i, true)).collect();
    let started = Instant::now();
    let last = bounded("fat publishes", publish_all(&nodes[0].raft, fat)).await;
    println!(
        "800 fat publishes with one member down: {:?}",
        started.elapsed()
    );
    for n in &nodes {
        n.raft.wait_applied(last, STEP).await.unwrap();
    }
    let leader_node = nodes.iter().find(|n| n.id == new_leader).unwrap();
    let purged = leader_node.raft.status().purged_index.unwrap_or(0);
    let image_len = {
        let dir = root.path().join(format!("node{new_leader}"));
        let store = Store::open(&dir.join("store.sqlite"), StoreLimits::default()).unwrap();
        store.snapshot_bytes().unwrap().len()
    };
    println!("state image: {image_len} bytes; leader purged its log up to {purged}");
    assert!(image_len > 1024 * 1024, "image of {image_len} bytes");
    assert!(
        purged > 211,
        "the leader kept the entries the stopped node lacks"
    );

    let restarted_at = Instant::now();
    let t = transport(old_id, old_addr).await;
    let raft = bounded(
        "restart",
        RegistryRaft::start(t.clone(), config(old_id, &members, &old_dir)),
    )
    .await
    .unwrap();
    let back = Node {
        id: old_id,
        raft,
        transport: t,
    };
    // It resumes from its own files at once: everything it had applied is still there (the 210
    // relays published before it stopped).
    assert!(back.raft.descriptors().unwrap().len() >= 210);
    bounded("catch-up", back.raft.wait_applied(last, STEP))
        .await
        .unwrap();
    println!(
        "restarted node caught up (state image {image_len} bytes) {:?} after its restart",
        restarted_at.elapsed()
    );
    let status = back.raft.status();
    assert!(
        status.snapshots_installed >= 1,
        "caught up without a snapshot: {status:?}"
    );
    assert!(status.snapshot_index.unwrap() >= purged);
    let expected = identities(&nodes[0]);
    assert_eq!(expected.len(), 1011);
    assert_eq!(identities(&back), expected);
    assert_eq!(identities(&nodes[1]), expected);

    // And it takes part again: a submit through it applies everywhere.
    nodes.push(back);
    let c = bounded(
        "publish after restart",
        nodes[2]
            .raft
            .submit_committed(Command::Publish(descriptor(3000, false))),
    )
    .await
    .unwrap();
    for n in &nodes {
        n.raft.wait_applied(c.index, STEP).await.unwrap();
        assert_eq!(n.raft.descriptors().unwrap().len(), 1012);
    }
    for n in nodes {
        n.stop().await;
    }
}

/// Opens a raw `/braid/raft/1` stream from `from` to `to`, sends `bytes`, returns the answer
/// frame (or `None` if the stream ended without one).
async fn raw_exchange(from: &Transport, to: &Transport, bytes: &[u8]) -> Option<Frame> {
    let mut stream = bounded("open", from.open_stream(to.peer_id(), PROTOCOL))
        .await
        .unwrap();
    // The server may answer and stop reading before it reads everything (a refusal): a failed
    // write is fine, the answer is what counts.
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
    let mut answer = Vec::new();
    bounded("answer", stream.read_to_end(&mut answer))
        .await
        .ok()?;
    if answer.is_empty() {
        return None;
    }
    Some(Frame::decode(&answer, 1 << 20).unwrap().0)
}

fn vote_request(term: u64, candidate: u64) -> Vec<u8> {
    let request = RpcRequest::Vote(openraft::raft::VoteRequest {
        vote: openraft::Vote::new(term, candidate),
        last_log_id: None,
    });
    Frame::Request(wire::encode(&request).unwrap()).encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_refuses_non_members_and_bad_frames_and_keeps_serving() {
    init();
    let root = tempfile::tempdir().unwrap();
    let quic: Multiaddr = "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap();
    let node_t = transport(1, quic.clone()).await;
    // Member 2 is this raw transport: it never runs Raft, so node 1 cannot win an election.
    let member_t = transport(2, quic.clone()).await;
    let stranger = transport(9, quic).await;
    let members = vec![
        RaftMember {
            id: 1,
            peer: node_t.peer_id(),
            addr: node_t.listen_addrs()[0].clone(),
        },
        RaftMember {
            id: 2,
            peer: member_t.peer_id(),
            addr: member_t.listen_addrs()[0].clone(),
        },
    ];
    let node = RegistryRaft::start(node_t.clone(), config(1, &members, root.path()))
        .await
        .unwrap();
    for t in [&member_t, &stranger] {
        t.add_addresses(node_t.peer_id(), node_t.listen_addrs())
            .await
            .unwrap();
    }

    // A well-formed vote request with a huge term from a non-member: refused, nothing changes.
    let term_before = node.status().term;
    let answer = raw_exchange(&stranger, &node_t, &vote_request(1_000_000, 2)).await;
    assert_eq!(
        answer,
        Some(Frame::Error("not a member of this registry group".into()))
    );
    let status = node.status();
    assert_eq!(status.rpc_refused_non_member, 1);
    assert!(
        status.term < 1_000_000,
        "a non-member's vote request was applied"
    );
    assert!(status.term <= term_before + 5);

    // Malformed frames from a member: each gets an Error frame naming the problem.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![9, 1, 0, 0, 0, 0], "unsupported raft frame version 9"),
        (
            [1u8, 1, 0xff, 0xff, 0xff, 0xff].to_vec(),
            "over the limit of 4194304",
        ),
        (
            Frame::Request(vec![0xff, 0xff, 0xff]).encode(),
            "does not decode",
        ),
        (Frame::Response(vec![]).encode(), "expected a Request frame"),
        (
            Frame::Request(wire::encode(&RpcRequest::Forward(vec![1, 1, 0])).unwrap()).encode(),
            "",
        ),
    ];
    for (bytes, expected) in &cases[..4] {
        match raw_exchange(&member_t, &node_t, bytes).await {
            Some(Frame::Error(reason)) => assert!(
                reason.contains(expected),
                "{reason:?} does not say {expected:?}"
            ),
            other => panic!("expected an Error frame for {bytes:02x?}, got {other:?}"),
        }
    }
    assert_eq!(node.status().rpc_bad_requests, 4);
    // A forwarded command that does not decode is refused before anything is proposed.
    let answer = raw_exchange(&member_t, &node_t, &cases[4].0).await.unwrap();
    let Frame::Response(body) = answer else {
        panic!("expected a Response, got {answer:?}")
    };
    let response: RpcResponse = wire::decode(&body).unwrap();
    assert!(
        matches!(&response, RpcResponse::Forward(ForwardResponse::Failed { reason }) if reason.contains("bad command")),
        "{response:?}"
    );

    // The node keeps serving: a member's valid vote request gets openraft's answer.
    let answer = raw_exchange(&member_t, &node_t, &vote_request(500, 2)).await;
    let Some(Frame::Response(body)) = answer else {
        panic!("expected a Response, got {answer:?}")
    };
    let response: RpcResponse = wire::decode(&body).unwrap();
    assert!(matches!(response, RpcResponse::Vote(Ok(_))), "{response:?}");
    assert!(node.descriptors().unwrap().is_empty());

    node.shutdown().await;
    for t in [node_t, member_t, stranger] {
        t.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bounds_rpcs_per_member_and_times_out_silent_requests() {
    init();
    let root = tempfile::tempdir().unwrap();
    let quic: Multiaddr = "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap();
    let node_t = transport(1, quic.clone()).await;
    let member_t = transport(2, quic).await;
    let members = vec![
        RaftMember {
            id: 1,
            peer: node_t.peer_id(),
            addr: node_t.listen_addrs()[0].clone(),
        },
        RaftMember {
            id: 2,
            peer: member_t.peer_id(),
            addr: member_t.listen_addrs()[0].clone(),
        },
    ];
    let config = RaftConfig {
        rpc_timeout_ms: 6000,
        max_inbound_per_peer: 8,
        ..config(1, &members, root.path())
    };
    let node = RegistryRaft::start(node_t.clone(), config).await.unwrap();
    member_t
        .add_addresses(node_t.peer_id(), node_t.listen_addrs())
        .await
        .unwrap();

    // Eight silent streams take the member's eight slots; the ninth is dropped unread. A
    // stream counts only once the server has given it a slot: one reset on the way (CI once
    // saw `Stopped(0)` on the first write, when the transport still kept a single inbound
    // stream per protocol) is replaced, not a failure.
    let first = Instant::now();
    let mut silent = Vec::new();
    while silent.len() < 8 {
        assert!(
            first.elapsed() < Duration::from_secs(4),
            "only {} silent streams got a slot",
            silent.len()
        );
        let accepted = node.status().rpc_accepted;
        let mut s = bounded("open", member_t.open_stream(node_t.peer_id(), PROTOCOL))
            .await
            .unwrap();
        // One byte makes the stream reach the server; a whole header never comes.
        if s.write_all(&[1]).await.is_err() || s.flush().await.is_err() {
            continue;
        }
        let wait = Instant::now();
        while node.status().rpc_accepted == accepted && wait.elapsed() < Duration::from_secs(1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if node.status().rpc_accepted > accepted {
            silent.push(s);
        }
    }
    while node.status().rpc_busy == 0 {
        let mut extra = bounded("open", member_t.open_stream(node_t.peer_id(), PROTOCOL))
            .await
            .unwrap();
        let _ = extra.write_all(&[1]).await;
        let _ = extra.flush().await;
        let mut answer = Vec::new();
        let _ = bounded("dropped", extra.read_to_end(&mut answer)).await;
        assert!(answer.is_empty(), "a stream past the bound was served");
        assert!(
            first.elapsed() < Duration::from_secs(5),
            "no stream was refused as busy"
        );
    }
    // Each silent stream gets an Error frame once the request timeout passes.
    for mut s in silent {
        let mut answer = Vec::new();
        bounded("timeout answer", s.read_to_end(&mut answer))
            .await
            .unwrap();
        let (frame, _) = Frame::decode(&answer, 1 << 20).unwrap();
        assert_eq!(
            frame,
            Frame::Error("bad request: no whole request within 6s".into())
        );
    }
    assert!(first.elapsed() >= Duration::from_millis(6000));
    // The slots are free again: a valid request is answered.
    let answer = raw_exchange(&member_t, &node_t, &vote_request(3, 2)).await;
    assert!(matches!(answer, Some(Frame::Response(_))), "{answer:?}");

    node.shutdown().await;
    for t in [node_t, member_t] {
        t.shutdown().await;
    }
}
