//! Declared relay families end to end: relays configured with `family` (both ways) sign it into
//! their descriptors, the proxy reads the directory, and no stream's strands ever put two
//! relays of one family on a circuit, nor on the guard and middle hops of two strands.

use std::collections::BTreeSet;
use std::time::Duration;

use braid_directory::Directory;
use braid_node::{ProxyConfig, ProxyNode, RelayNode};
use braid_relay::service::Faults;
use braid_simulations::http::{fetch, serve};
use braid_simulations::network::relay_config;
use braid_transport::Identity;
use tokio::net::TcpListener;

use crate::support;

/// Relays 0 and 1 exit; families {0, 2} (an exit and a non-exit) and {3, 4} (two non-exits),
/// each declared both ways; relay 5 lists relay 6, which does not list 5 back (no family).
const FAMILIES: [(usize, usize); 2] = [(0, 2), (3, 4)];
const RELAYS: usize = 8;

fn related(a: usize, b: usize) -> bool {
    FAMILIES.contains(&(a, b)) || FAMILIES.contains(&(b, a))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_of_one_family_never_share_a_circuit_or_a_stream() {
    let _shared = support::shared().await;
    let identities: Vec<Identity> = (0..RELAYS)
        .map(|i| Identity::from_secret_bytes([0x60 + i as u8; 32]))
        .collect();
    let peer_ids: Vec<_> = identities.iter().map(Identity::peer_id).collect();
    let mut relays = Vec::new();
    for (i, identity) in identities.iter().enumerate() {
        let mut cfg = relay_config(i, i < 2);
        cfg.family = (0..RELAYS)
            .filter(|&j| related(i, j) || (i, j) == (5, 6))
            .map(|j| peer_ids[j].to_string())
            .collect();
        let onion = Identity::generate().secret_bytes();
        let identity = Identity::from_secret_bytes(identity.secret_bytes());
        relays.push(
            RelayNode::start(&cfg, identity, onion, Faults::default())
                .await
                .unwrap(),
        );
    }
    // The declaration is in the signed descriptor, and only the mutual pairs form families.
    let directory =
        Directory::new(relays.iter().map(|r| r.descriptor().clone()).collect()).unwrap();
    let families = directory.families();
    let id = |i: usize| *relays[i].descriptor().identity();
    assert_eq!(relays[5].descriptor().descriptor().family, vec![id(6)]);
    for a in 0..RELAYS {
        for b in 0..RELAYS {
            assert_eq!(families.related(&id(a), &id(b)), related(a, b), "{a} {b}");
        }
    }

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve(listener));
    let proxy_cfg = ProxyConfig {
        socks_listen: "127.0.0.1:0".parse().unwrap(),
        hops: 3,
        strands: 2,
        ..ProxyConfig::default()
    };
    let proxy = ProxyNode::start(&proxy_cfg, &directory).await.unwrap();
    let socks = proxy.socks_addr();
    for n in 0..16 {
        let user = format!("user{n}");
        tokio::time::timeout(
            Duration::from_secs(30),
            fetch(socks, "127.0.0.1", port, 1024, Some((&user, "x"))),
        )
        .await
        .expect("fetch in time")
        .unwrap_or_else(|e| panic!("fetch {n}: {e}"));
    }

    // Directory indexes to relay numbers.
    let order = proxy.manager().relay_peers();
    let relay_of = |i: usize| peer_ids.iter().position(|p| *p == order[i]).unwrap();
    // A stream's record is written as it ends, just after the fetch saw its last byte.
    let mut records = proxy.manager().stream_records();
    for _ in 0..100 {
        if records.len() == 16 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        records = proxy.manager().stream_records();
    }
    assert_eq!(records.len(), 16);
    let mut used = BTreeSet::new();
    for record in &records {
        let paths: Vec<Vec<usize>> = record
            .paths
            .values()
            .map(|p| p.iter().map(|&i| relay_of(i)).collect())
            .collect();
        assert!(!paths.is_empty());
        for path in &paths {
            used.extend(path.iter().copied());
            for (i, &a) in path.iter().enumerate() {
                for &b in &path[i + 1..] {
                    assert!(!related(a, b), "{a} and {b} on one circuit: {paths:?}");
                }
            }
        }
        for (s, p) in paths.iter().enumerate() {
            for q in &paths[s + 1..] {
                for &a in &p[..p.len() - 1] {
                    for &b in &q[..q.len() - 1] {
                        assert!(!related(a, b), "{a} and {b} on two strands: {paths:?}");
                    }
                }
            }
        }
    }
    // The families' relays did carry streams: the rule, not their absence, kept them apart.
    // (Which of a family's relays carried some is chance: with entry guards a non-exit that is
    // no primary guard is only ever a middle, and relay 2 never goes with exit 0.)
    assert!(used.contains(&0) || used.contains(&2), "{used:?}");
    assert!(used.contains(&3) || used.contains(&4), "{used:?}");
    server.abort();
    proxy.shutdown().await;
    for r in &relays {
        r.shutdown().await;
    }
}
