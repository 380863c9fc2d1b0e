//! Fuzzes the client's side of the circuit build: `CircuitRequest::finish` on a fixed 3-hop
//! request (fixed relay keys and ephemerals) must never panic, whatever `Created` it gets.
//!
//! The first input byte picks where the arbitrary bytes go, so the nested-reply parser is reached
//! behind genuine outer layers:
//! - 0: the whole `Created` content is the input;
//! - 1: the guard is genuine and the input is the middle hop's reply it wraps;
//! - 2: guard and middle are genuine and the input is the exit's reply they wrap.

#![no_main]

use std::sync::OnceLock;

use braid_relay::handshake::{CircuitRequest, HopSpec, accept_create, trim_created};
use libfuzzer_sys::fuzz_target;
use x25519_dalek::{PublicKey, StaticSecret};

const SECRETS: [[u8; 32]; 3] = [[0x01; 32], [0x02; 32], [0x03; 32]];
const EPHEMERALS: [[u8; 32]; 3] = [[0x41; 32], [0x42; 32], [0x43; 32]];

struct Fixture {
    path: Vec<HopSpec>,
    /// The `Create` content the guard receives.
    guard_create: Vec<u8>,
    /// The `Create` content the guard forwards to the middle hop.
    middle_create: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let path: Vec<HopSpec> = SECRETS
            .iter()
            .enumerate()
            .map(|(i, s)| HopSpec {
                peer_id: vec![i as u8 + 1; 38],
                addresses: vec![format!("/ip4/127.0.0.{}/udp/4000/quic-v1", i + 1)],
                onion_key: PublicKey::from(&StaticSecret::from(*s)).to_bytes(),
            })
            .collect();
        let (_req, guard_create) =
            CircuitRequest::new_with_ephemerals(&path, &EPHEMERALS).expect("request");
        let guard = accept_create(&SECRETS[0], &guard_create).expect("guard accepts");
        let middle_create = guard.next().expect("guard extends").create.clone();
        Fixture {
            path,
            guard_create,
            middle_create,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    let (req, create) = CircuitRequest::new_with_ephemerals(&f.path, &EPHEMERALS).expect("request");
    assert_eq!(
        create, f.guard_create,
        "fixed ephemerals give a fixed request"
    );

    let created = match mode % 3 {
        0 => rest.to_vec(),
        1 => {
            let guard = accept_create(&SECRETS[0], &f.guard_create).expect("guard accepts");
            match guard.reply(Some(rest)) {
                Ok((_, c)) => c,
                Err(_) => return,
            }
        }
        _ => {
            let middle = accept_create(&SECRETS[1], &f.middle_create).expect("middle accepts");
            let Ok((_, middle_created)) = middle.reply(Some(rest)) else {
                return;
            };
            let inner = trim_created(&middle_created).expect("a reply is trimmed already");
            let guard = accept_create(&SECRETS[0], &f.guard_create).expect("guard accepts");
            match guard.reply(Some(inner)) {
                Ok((_, c)) => c,
                Err(_) => return,
            }
        }
    };
    let _ = req.finish(&created);
});
