//! Client identities (issue 14 (b)): a proxy's streams of two SOCKS usernames reach the relays
//! under two different peer ids, neither of them the proxy's directory transport's, and the
//! relays (the guards) see exactly those ids. Real network over QUIC on loopback.

use std::collections::BTreeSet;

use braid_simulations::http::fetch;
use braid_simulations::{Scenario, SimNetwork};
use braid_transport::PeerId;

use crate::support;

async fn seen_by_relays(net: &SimNetwork) -> BTreeSet<PeerId> {
    let mut seen = BTreeSet::new();
    for relay in &net.relays {
        seen.extend(relay.transport().connected_peers().await.unwrap());
    }
    seen
}

async fn two_usernames_two_identities(strands: usize) {
    let _shared = support::shared().await;
    let s = Scenario {
        strands,
        client_identity_per_key: true,
        ..Scenario::network("identities", 8, 2, 3)
    };
    let net = SimNetwork::start(&s).await.expect("network");
    let socks = net.socks_addr();
    let port = net.http_v4.port();
    let manager = net.proxy.manager().clone();
    let before = seen_by_relays(&net).await;
    for user in ["alice", "bob"] {
        let body = fetch(socks, "localhost", port, 4096, Some((user, "x"))).await;
        assert_eq!(body.expect("fetch").bytes, 4096);
    }
    let identities = manager.client_identities().identities().await;
    let keyed: Vec<(PeerId, Vec<u8>)> = identities
        .iter()
        .filter_map(|(p, k)| k.clone().map(|k| (*p, k)))
        .collect();
    assert_eq!(keyed.len(), 2, "one identity per username: {identities:?}");
    assert_ne!(keyed[0].0, keyed[1].0);
    assert_ne!(keyed[0].1, keyed[1].1);
    // The relays see both ids (the guards of each username's circuits), which they had not
    // seen before the streams (the proxy's directory fetches use another identity).
    let after = seen_by_relays(&net).await;
    for (peer, _) in &keyed {
        assert!(after.contains(peer), "no relay sees {peer}");
        assert!(!before.contains(peer), "{peer} was known before any stream");
    }
    let relay_ids: BTreeSet<PeerId> = net.relays.iter().map(|r| r.transport().peer_id()).collect();
    let registry_ids: BTreeSet<PeerId> = net.registries.iter().map(|r| r.peer_id()).collect();
    let clients: BTreeSet<PeerId> = after
        .difference(&relay_ids)
        .filter(|p| !registry_ids.contains(p))
        .copied()
        .collect();
    let pool: BTreeSet<PeerId> = identities.iter().map(|(p, _)| *p).collect();
    for peer in &clients {
        assert!(
            pool.contains(peer) || before.contains(peer),
            "a relay sees a client id {peer} that is no client identity"
        );
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_usernames_reach_the_relays_under_two_peer_ids() {
    two_usernames_two_identities(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_usernames_with_strands_reach_the_relays_under_two_peer_ids() {
    two_usernames_two_identities(3).await;
}

/// More usernames in a row than the identity pool holds at once (each K = 3 stream holds up to
/// four identities: its three strands' and the clean set's built ahead): quiet identities are
/// reclaimed, so every fetch succeeds and the pool stays within its bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_usernames_than_the_pool_holds_all_fetch() {
    let _shared = support::shared().await;
    let s = Scenario {
        strands: 3,
        ..Scenario::network("identities-many", 8, 2, 3)
    };
    let net = SimNetwork::start(&s).await.expect("network");
    let manager = net.proxy.manager().clone();
    let max = manager.settings().max_client_identities;
    let users = max / 3 + 4;
    for i in 0..users {
        let user = format!("user{i}");
        let body = fetch(
            net.socks_addr(),
            "localhost",
            net.http_v4.port(),
            1024,
            Some((&user, "x")),
        )
        .await;
        assert_eq!(body.unwrap_or_else(|e| panic!("{user}: {e}")).bytes, 1024);
        let now = manager.client_identities().identities().await.len();
        assert!(now <= max, "{now} identities, more than {max}");
    }
    net.shutdown().await;
}
