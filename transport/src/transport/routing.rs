//! Peer routing by Kademlia: finding a peer's current addresses from its id when the addresses
//! this node knows fail (a home relay whose port or IP changed), on the same swarm and port as
//! everything else (`/braid/kad/1.0.0`).
//!
//! Only peer routing is used. Kademlia records and provider announcements are never stored
//! (`StoreInserts::FilterBoth`, and this module drops the events asking to store them). The
//! routing table learns only from connections: a peer this node dialed (at the dialed
//! address) or one that connected and said in identify where it listens; `add_addresses`
//! feeds the address book, not the table. Addresses a peer claims are
//! untrusted but harmless: a dial checks the peer id in the handshake, so a wrong address only
//! fails. Lookups are bounded ([`MAX_LOOKUPS`] at once, each by the query timeout).

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::kad::{self, GetClosestPeersResult, Mode, QueryId, store::MemoryStore};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

/// The Kademlia protocol name braid nodes speak (a private DHT: not the IPFS one).
pub(crate) const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/braid/kad/1.0.0");
/// Peer lookups under way at once; a connect that would need one more fails at once.
pub(crate) const MAX_LOOKUPS: usize = 64;
/// Addresses taken from one peer's identify message, at most.
pub(crate) const MAX_CLAIMED_ADDRESSES: usize = 8;

/// The Kademlia behaviour of a node: a server (answers lookups) when it listens, a client
/// otherwise (a proxy with no listen address asks but is never asked).
pub(crate) fn behaviour(
    peer: PeerId,
    listening: bool,
    query_timeout: Duration,
) -> kad::Behaviour<MemoryStore> {
    let mut config = kad::Config::new(KAD_PROTOCOL);
    config
        .set_query_timeout(query_timeout)
        .set_record_filtering(kad::StoreInserts::FilterBoth)
        .set_replication_factor(NonZeroUsize::new(8).unwrap_or(NonZeroUsize::MIN))
        .set_publication_interval(None)
        .set_provider_publication_interval(None)
        // No timed bootstrap (it only warns on a node that knows nobody yet); the table fills
        // from connections, and libp2p still bootstraps when the first peers arrive.
        .set_periodic_bootstrap_interval(None)
        // The table learns addresses only from identify, QUIC first (see [`claimed`]): left to
        // itself kad would file the address of whatever connection came first, TCP included,
        // and its own dials (and the peers it tells about) would then try TCP first.
        .set_kbucket_inserts(kad::BucketInserts::Manual);
    let mut kad = kad::Behaviour::with_config(peer, MemoryStore::new(peer), config);
    kad.set_mode(Some(if listening {
        Mode::Server
    } else {
        Mode::Client
    }));
    kad
}

/// Whether an address a peer claims is worth a routing-table entry: not unspecified, not a
/// relayed circuit.
pub(crate) fn routable(address: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    address.iter().all(|p| match p {
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        Protocol::P2pCircuit => false,
        _ => true,
    })
}

/// The addresses of a peer's identify message worth a routing-table entry, QUIC first (kad
/// and every peer that learns them from us dial in this order, one address at a time), at most
/// [`MAX_CLAIMED_ADDRESSES`].
pub(crate) fn claimed(listen_addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    let mut addrs: Vec<Multiaddr> = listen_addrs
        .into_iter()
        .filter(routable)
        .take(MAX_CLAIMED_ADDRESSES)
        .collect();
    addrs.sort_by_key(|a| !crate::address_book::is_quic(a));
    addrs
}

/// The lookups under way: which peer each query looks for.
#[derive(Default)]
pub(crate) struct Lookups {
    by_query: HashMap<QueryId, PeerId>,
}

impl Lookups {
    /// Starts a lookup of `peer` unless one is under way for it or [`MAX_LOOKUPS`] are;
    /// `false`: none was started (the caller fails the connect).
    pub(crate) fn start(&mut self, kad: &mut kad::Behaviour<MemoryStore>, peer: PeerId) -> bool {
        if self.by_query.values().any(|p| *p == peer) {
            return true;
        }
        if self.by_query.len() >= MAX_LOOKUPS {
            return false;
        }
        let id = kad.get_closest_peers(peer);
        self.by_query.insert(id, peer);
        true
    }

    /// The peer a finished query looked for (`None`: not a lookup of ours, or already done).
    pub(crate) fn finish(&mut self, id: QueryId) -> Option<PeerId> {
        self.by_query.remove(&id)
    }
}

/// The addresses a finished lookup found for `target` (empty: not found). A timed-out query
/// still reports the peers it saw.
pub(crate) fn found(result: GetClosestPeersResult, target: &PeerId) -> Vec<Multiaddr> {
    let peers = match result {
        Ok(ok) => ok.peers,
        Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
    };
    peers
        .into_iter()
        .filter(|p| p.peer_id == *target)
        .flat_map(|p| p.addrs)
        .filter(routable)
        .take(MAX_CLAIMED_ADDRESSES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_addresses_put_quic_first_and_are_bounded() {
        let parse = |s: &str| s.parse::<Multiaddr>().unwrap_or_else(|_| unreachable!());
        let mut listen = vec![parse("/ip4/127.0.0.1/tcp/9"), parse("/ip4/0.0.0.0/tcp/1")];
        listen.extend((0..20).map(|i| parse(&format!("/ip4/10.0.0.{i}/udp/9/quic-v1"))));
        let got = claimed(listen);
        assert_eq!(got.len(), MAX_CLAIMED_ADDRESSES);
        assert!(
            got[..MAX_CLAIMED_ADDRESSES - 1]
                .iter()
                .all(crate::address_book::is_quic)
        );
        assert_eq!(
            got[MAX_CLAIMED_ADDRESSES - 1],
            parse("/ip4/127.0.0.1/tcp/9")
        );
    }

    #[test]
    fn unspecified_and_relayed_addresses_are_not_routable() {
        let ok: Multiaddr = "/ip4/127.0.0.1/udp/9/quic-v1"
            .parse()
            .unwrap_or_else(|_| unreachable!());
        assert!(routable(&ok));
        for bad in [
            "/ip4/0.0.0.0/udp/9/quic-v1",
            "/ip6/::/tcp/9",
            "/ip4/1.2.3.4/tcp/9/p2p-circuit",
        ] {
            let a: Multiaddr = bad.parse().unwrap_or_else(|_| unreachable!());
            assert!(!routable(&a), "{bad}");
        }
    }
}
