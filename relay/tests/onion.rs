//! Sans-IO tests of the whole onion: a client and three hops built from real keys and bytes.

use braid_relay::handshake::{CircuitRequest, HopSpec, accept_create};
use braid_relay::{CellError, ClientCircuit, HopCircuit, RelayMsg, StreamId, Target};
use x25519_dalek::{PublicKey, StaticSecret};

struct Hop {
    secret: [u8; 32],
    spec: HopSpec,
}

fn hop(seed: u8) -> Hop {
    let secret = [seed; 32];
    let public = PublicKey::from(&StaticSecret::from(secret)).to_bytes();
    Hop {
        secret,
        spec: HopSpec {
            peer_id: vec![seed; 38],
            addresses: vec![format!("/ip4/127.0.0.{seed}/udp/4000/quic-v1")],
            onion_key: public,
        },
    }
}

/// Runs the build through every hop the way relays do, returning all circuit states.
fn build(hops: &[Hop]) -> (ClientCircuit, Vec<HopCircuit>) {
    let path: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let (req, create) = CircuitRequest::new(&path).expect("request");
    let (states, created) = relay_chain(hops, &create);
    (req.finish(&created).expect("finish"), states)
}

fn relay_chain(hops: &[Hop], create: &[u8]) -> (Vec<HopCircuit>, Vec<u8>) {
    let accepted = accept_create(&hops[0].secret, create).expect("accept");
    match accepted.next().cloned() {
        Some(next) => {
            assert_eq!(next.peer_id, hops[1].spec.peer_id);
            assert_eq!(next.addresses, hops[1].spec.addresses);
            let (mut rest, inner) = relay_chain(&hops[1..], &next.create);
            let (state, created) = accepted.reply(Some(&inner)).expect("reply");
            rest.insert(0, state);
            (rest, created)
        }
        None => {
            assert_eq!(hops.len(), 1, "only the last hop has no next");
            let (state, created) = accepted.reply(None).expect("reply");
            (vec![state], created)
        }
    }
}

fn forward(hops: &mut [HopCircuit], mut cell: braid_relay::Cell) -> Result<RelayMsg, CellError> {
    let n = hops.len();
    for h in hops[..n - 1].iter_mut() {
        h.peel_forward(&mut cell.body)?;
    }
    hops[n - 1].open_message(&mut cell)
}

fn backward(hops: &mut [HopCircuit], msg: &RelayMsg) -> braid_relay::Cell {
    let n = hops.len();
    let mut cell = hops[n - 1].seal_message(msg).expect("seal at exit");
    for h in hops[..n - 1].iter_mut().rev() {
        h.wrap_backward(&mut cell.body).expect("wrap");
    }
    cell
}

#[test]
fn three_hop_round_trip_many_cells() {
    let hops = [hop(1), hop(2), hop(3)];
    let (mut client, mut relays) = build(&hops);
    assert_eq!(client.hops(), 3);
    assert!(relays[2].is_last() && !relays[0].is_last());
    let begin = RelayMsg::Begin {
        stream: StreamId(1),
        target: Target::Domain("localhost".into(), 80),
    };
    let cell = client.encrypt_forward(&begin).expect("encrypt");
    assert_eq!(forward(&mut relays, cell).expect("forward"), begin);
    for i in 0..50u8 {
        let data = RelayMsg::Data {
            stream: StreamId(1),
            data: vec![i; client.max_data()],
        };
        let cell = client.encrypt_forward(&data).expect("encrypt");
        assert_eq!(forward(&mut relays, cell).expect("forward"), data);
        let back = RelayMsg::Data {
            stream: StreamId(1),
            data: vec![i ^ 0xff; relays[2].max_data()],
        };
        let mut cell = backward(&mut relays, &back);
        assert_eq!(client.decrypt_backward(&mut cell).expect("decrypt"), back);
    }
}

#[test]
fn every_path_length_builds() {
    for n in 1..=braid_relay::MAX_HOPS {
        let hops: Vec<Hop> = (1..=n as u8).map(hop).collect();
        let (mut client, mut relays) = build(&hops);
        let m = RelayMsg::Eof {
            stream: StreamId(9),
        };
        let cell = client.encrypt_forward(&m).expect("encrypt");
        assert_eq!(forward(&mut relays, cell).expect("forward"), m);
    }
    assert!(matches!(
        CircuitRequest::new(&[]),
        Err(CellError::BadHopCount(0))
    ));
}

#[test]
fn a_flipped_bit_dies_at_the_next_hop() {
    let hops = [hop(1), hop(2), hop(3)];
    let (mut client, mut relays) = build(&hops);
    let msg = RelayMsg::Data {
        stream: StreamId(1),
        data: b"GET / HTTP/1.1".to_vec(),
    };
    let mut cell = client.encrypt_forward(&msg).expect("encrypt");
    relays[0].peel_forward(&mut cell.body).expect("guard peels");
    cell.body[100] ^= 0x04; // the guard tampers before forwarding
    assert_eq!(
        relays[1].peel_forward(&mut cell.body),
        Err(CellError::Integrity { layer: 2 })
    );
}

#[test]
fn a_tampered_backward_cell_is_caught_by_the_client() {
    let hops = [hop(1), hop(2), hop(3)];
    let (mut client, mut relays) = build(&hops);
    let msg = RelayMsg::Connected {
        stream: StreamId(4),
    };
    let mut cell = relays[2].seal_message(&msg).expect("seal");
    relays[1].wrap_backward(&mut cell.body).expect("wrap");
    cell.body[7] ^= 0x80; // the middle's output is altered
    relays[0].wrap_backward(&mut cell.body).expect("wrap");
    assert_eq!(
        client.decrypt_backward(&mut cell),
        Err(CellError::Integrity { layer: 2 })
    );
}

#[test]
fn a_replayed_cell_is_rejected() {
    let hops = [hop(1), hop(2), hop(3)];
    let (mut client, mut relays) = build(&hops);
    let msg = RelayMsg::Data {
        stream: StreamId(1),
        data: vec![1, 2, 3],
    };
    let cell = client.encrypt_forward(&msg).expect("encrypt");
    let copy = cell.clone();
    forward(&mut relays, cell).expect("first copy");
    assert_eq!(
        relays[0].peel_forward(&mut copy.body.clone()),
        Err(CellError::Integrity { layer: 1 })
    );
}

#[test]
fn a_wrong_onion_key_fails_the_handshake() {
    let hops = [hop(1), hop(2)];
    let path: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let (_req, create) = CircuitRequest::new(&path).expect("request");
    assert!(matches!(
        accept_create(&[99; 32], &create),
        Err(CellError::Handshake { .. })
    ));
}

#[test]
fn create_garbage_and_padding_rejected() {
    let hops = [hop(1)];
    let path: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let (_req, mut create) = CircuitRequest::new(&path).expect("request");
    create.extend_from_slice(&[0, 0, 1]);
    assert!(matches!(
        accept_create(&hops[0].secret, &create),
        Err(CellError::Malformed {
            what: "create padding"
        })
    ));
    assert!(accept_create(&hops[0].secret, &[0xff, 0xff, 1]).is_err());
    assert!(accept_create(&hops[0].secret, &[]).is_err());
}

#[test]
fn a_forged_reply_fails_the_client() {
    let hops = [hop(1), hop(2), hop(3)];
    let path: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let (req, create) = CircuitRequest::new(&path).expect("request");
    let (_states, mut created) = relay_chain(&hops, &create);
    let last = created.len() - 1;
    created[last] ^= 1;
    assert!(req.finish(&created).is_err());
}

/// Test vector: the first hop's `Create` content for a fixed one-hop path and fixed ephemeral.
#[test]
fn create_test_vector() {
    let h = hop(1);
    let (_req, create) =
        CircuitRequest::new_with_ephemerals(std::slice::from_ref(&h.spec), &[[0x42; 32]])
            .expect("request");
    assert_eq!(hex::encode(&create), CREATE_VECTOR);
    // The vector parses at the relay and names it the last hop.
    let accepted = accept_create(&h.secret, &create).expect("accept vector");
    assert!(accepted.next().is_none());
    assert_eq!(accepted.position(), 1);
}

const CREATE_VECTOR: &str = "0033132c442be010fbd57e72603328aa76e71fccc1503aae219327d14d9c9993f472e115ae3cce30b522c0c3c609e7453a21b7ecb2";
