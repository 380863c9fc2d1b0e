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
            data: vec![i; client.max_data()].into(),
        };
        let cell = client.encrypt_forward(&data).expect("encrypt");
        assert_eq!(forward(&mut relays, cell).expect("forward"), data);
        let back = RelayMsg::Data {
            stream: StreamId(1),
            data: vec![i ^ 0xff; relays[2].max_data()].into(),
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
        data: b"GET / HTTP/1.1".to_vec().into(),
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
        data: vec![1, 2, 3].into(),
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

/// The three-hop vector of PROTOCOL.md §10, reproduced by an independent implementation.
#[test]
fn three_hop_build_vector() {
    let hops = [hop(1), hop(2), hop(3)];
    let path: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let (req, create) =
        CircuitRequest::new_with_ephemerals(&path, &[[0x41; 32], [0x42; 32], [0x43; 32]])
            .expect("request");
    assert_eq!(hex::encode(&create), THREE_HOP_CREATE);
    let created = hex::decode(THREE_HOP_CREATED).expect("hex");
    let client = req.finish(&created).expect("finish accepts the vector");
    assert_eq!(client.hops(), 3);
    // One altered byte anywhere in the reply is refused.
    for i in [0, 40, created.len() - 1] {
        let (req, _) =
            CircuitRequest::new_with_ephemerals(&path, &[[0x41; 32], [0x42; 32], [0x43; 32]])
                .expect("request");
        let mut bad = created.clone();
        bad[i] ^= 0x10;
        assert!(req.finish(&bad).is_err(), "byte {i}");
    }
}

const THREE_HOP_CREATE: &str = "012d7a1a4e709bf085ac494aba0469b9b1eda0ab1f78b16aabb79ffeda90623e85228032446fe20afcf09339116bb4a8b84ec47eee48a1a02a76279efb1b90142c806829bedd2bf8dee1672d9282e411b184d99e4633ab657c4e6140b8f3556e9b44fedc99af6647456c9a8481fb3513dfd3549cf36a3da0e5c550b22c66a0501eb6681b7f1b01453d9c4773847ba16409c4456b329d0350c77328a20492528ccca8e74c35cc673c640f6a75261dbd4f70170b78e132cd97a0de71d76fd84555b51c4692b2944fecb8f3238a583b361f6ce01a052e4368ede94a30cbd4d3b7e323efdd885ca0e0def69f71519d9862296fe56d73f0b06669ce6a66d297436e54f5c5184b8be39f28cd741c86801038d7f70afb168799f3129fb3da97477a389a25038212985cacdac3f7552259c34b";
const THREE_HOP_CREATED: &str = "0030ad908a8a708aca07588cda7c4ed3e44d4966a80a9abb2f1e4bbac53c67414e3405dff87ef19a927ac820edf0792a0c7e0088c5529971a67f5dc7e3bee7b8afc5486fdedca3472d164feb9177ba6f4127611ec297d8fc9fdb72e9e223e9c4cac34ee0b91cf863b5306164431eb05b46e5a63b2adce727cdc1b91af2e347d7dad224f2854dd4e303fd9033b249c07789f82a21d7fbc43d8aff468a87c2359a62b0d1ccc6da0e9f40ebe312254bd0d1c10b17b475a3012572fd7ded";

#[test]
fn a_measurement_build_marks_only_the_last_hop() {
    let hops = [hop(1), hop(2)];
    let path: Vec<HopSpec> = hops.iter().map(|h| h.spec.clone()).collect();
    let (req, create) = CircuitRequest::new_measurement(&path).expect("request");
    let first = accept_create(&hops[0].secret, &create).expect("accept first");
    assert!(!first.is_measurement());
    let next = first.next().cloned().expect("extends");
    let last = accept_create(&hops[1].secret, &next.create).expect("accept last");
    assert!(last.is_measurement());
    assert!(last.next().is_none());
    let (mut exit, inner) = last.reply(None).expect("reply");
    let inner = braid_relay::handshake::trim_created(&inner)
        .expect("trim")
        .to_vec();
    let (mut guard, created) = first.reply(Some(&inner)).expect("reply first");
    let mut client = req.finish(&created).expect("finish");
    // The measurer's messages reach the last hop like any relay message.
    let begin = RelayMsg::BeginMeasure {
        stream: StreamId(1),
    };
    let mut cell = client.encrypt_forward(&begin).expect("encrypt");
    guard.peel_forward(&mut cell.body).expect("peel");
    assert_eq!(exit.open_message(&mut cell).expect("open"), begin);
    // An ordinary build's last hop is not a measurement.
    let (_, create) = CircuitRequest::new(&path[1..]).expect("request");
    assert!(
        !accept_create(&hops[1].secret, &create)
            .expect("accept")
            .is_measurement()
    );
}
