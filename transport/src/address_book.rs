//! The bounded address book: which addresses to dial for which peer, filled only by
//! `Transport::add_addresses` (never by what peers claim about themselves). It is plain data,
//! no I/O; the swarm task owns it.

use std::collections::{HashMap, VecDeque};

use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};

/// Addresses per peer, at most `max_peers` peers and `max_per_peer` addresses each. When full,
/// the oldest-added peer (or the peer's oldest address) is forgotten.
#[derive(Debug)]
pub(crate) struct AddressBook {
    addresses: HashMap<PeerId, VecDeque<Multiaddr>>,
    /// Peers in the order they were first added, for eviction.
    order: VecDeque<PeerId>,
    max_peers: usize,
    max_per_peer: usize,
}

impl AddressBook {
    /// An empty book with these bounds (both at least 1, checked by `TransportConfig::validate`).
    pub(crate) fn new(max_peers: usize, max_per_peer: usize) -> Self {
        Self {
            addresses: HashMap::new(),
            order: VecDeque::new(),
            max_peers: max_peers.max(1),
            max_per_peer: max_per_peer.max(1),
        }
    }

    /// Adds `address` for `peer` (already validated and stripped of `/p2p`). Returns the peer
    /// evicted to make room, if any.
    pub(crate) fn add(&mut self, peer: PeerId, address: Multiaddr) -> Option<PeerId> {
        let mut evicted = None;
        if !self.addresses.contains_key(&peer) {
            if self.addresses.len() >= self.max_peers {
                evicted = self.order.pop_front();
                if let Some(old) = evicted {
                    self.addresses.remove(&old);
                }
            }
            self.order.push_back(peer);
        }
        let list = self.addresses.entry(peer).or_default();
        if !list.contains(&address) {
            if list.len() >= self.max_per_peer {
                list.pop_front();
            }
            list.push_back(address);
        }
        evicted
    }

    /// The peer's addresses, QUIC ones first (then in the order added).
    pub(crate) fn dial_order(&self, peer: &PeerId) -> Vec<Multiaddr> {
        let mut list: Vec<Multiaddr> = self
            .addresses
            .get(peer)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default();
        list.sort_by_key(|address| !is_quic(address));
        list
    }

    /// Number of peers in the book.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.addresses.len()
    }
}

/// Whether the address is QUIC v1.
pub(crate) fn is_quic(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::QuicV1))
}

/// Checks an address given for `peer`: a trailing `/p2p/<id>` must name that peer and is
/// removed; the rest must be IP + TCP or IP + UDP + QUIC v1.
pub(crate) fn normalize(peer: &PeerId, address: &Multiaddr) -> Result<Multiaddr, &'static str> {
    let mut address = address.clone();
    if let Some(Protocol::P2p(id)) = address.iter().last() {
        if &id != peer {
            return Err("its /p2p suffix names another peer");
        }
        address.pop();
    }
    let mut parts = address.iter();
    let ip = matches!(parts.next(), Some(Protocol::Ip4(_) | Protocol::Ip6(_)));
    let rest: Vec<Protocol<'_>> = parts.collect();
    let transport = matches!(rest.as_slice(), [Protocol::Tcp(_)])
        || matches!(rest.as_slice(), [Protocol::Udp(_), Protocol::QuicV1]);
    if !(ip && transport) {
        return Err("expected /ip4|ip6/<ip>/tcp/<port> or /ip4|ip6/<ip>/udp/<port>/quic-v1");
    }
    Ok(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn quic_first_then_insertion_order() {
        let peer = PeerId::random();
        let mut book = AddressBook::new(4, 4);
        book.add(peer, addr("/ip4/10.0.0.1/tcp/1"));
        book.add(peer, addr("/ip4/10.0.0.2/udp/2/quic-v1"));
        book.add(peer, addr("/ip4/10.0.0.3/tcp/3"));
        book.add(peer, addr("/ip4/10.0.0.2/udp/2/quic-v1"));
        assert_eq!(
            book.dial_order(&peer),
            vec![
                addr("/ip4/10.0.0.2/udp/2/quic-v1"),
                addr("/ip4/10.0.0.1/tcp/1"),
                addr("/ip4/10.0.0.3/tcp/3")
            ]
        );
    }

    #[test]
    fn per_peer_bound_forgets_oldest_address() {
        let peer = PeerId::random();
        let mut book = AddressBook::new(4, 2);
        for port in 1..=3 {
            book.add(peer, addr(&format!("/ip4/10.0.0.1/tcp/{port}")));
        }
        assert_eq!(
            book.dial_order(&peer),
            vec![addr("/ip4/10.0.0.1/tcp/2"), addr("/ip4/10.0.0.1/tcp/3")]
        );
    }

    #[test]
    fn peer_bound_evicts_oldest_peer() {
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let mut book = AddressBook::new(2, 2);
        assert_eq!(book.add(peers[0], addr("/ip4/10.0.0.1/tcp/1")), None);
        assert_eq!(book.add(peers[1], addr("/ip4/10.0.0.2/tcp/1")), None);
        // Re-adding an existing peer never evicts.
        assert_eq!(book.add(peers[0], addr("/ip4/10.0.0.1/tcp/2")), None);
        assert_eq!(
            book.add(peers[2], addr("/ip4/10.0.0.3/tcp/1")),
            Some(peers[0])
        );
        assert_eq!(book.len(), 2);
        assert!(book.dial_order(&peers[0]).is_empty());
        assert_eq!(
            book.dial_order(&peers[2]),
            vec![addr("/ip4/10.0.0.3/tcp/1")]
        );
    }

    #[test]
    fn normalize_strips_own_p2p_and_rejects_others() {
        let peer = PeerId::random();
        let with_id = addr(&format!("/ip4/127.0.0.1/udp/9/quic-v1/p2p/{peer}"));
        assert_eq!(
            normalize(&peer, &with_id).unwrap(),
            addr("/ip4/127.0.0.1/udp/9/quic-v1")
        );
        let other = addr(&format!("/ip4/127.0.0.1/tcp/9/p2p/{}", PeerId::random()));
        assert_eq!(
            normalize(&peer, &other),
            Err("its /p2p suffix names another peer")
        );
        for bad in [
            "/ip4/127.0.0.1/udp/9",
            "/ip4/127.0.0.1",
            "/tcp/9",
            "/ip4/127.0.0.1/udp/9/quic",
            "/dns/example.com/tcp/9",
            "/ip4/127.0.0.1/tcp/9/tcp/9",
        ] {
            assert!(normalize(&peer, &addr(bad)).is_err(), "{bad}");
        }
        assert!(normalize(&peer, &addr("/ip6/::1/tcp/9")).is_ok());
    }
}
