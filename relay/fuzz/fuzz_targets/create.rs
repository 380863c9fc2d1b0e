//! Fuzzes the relay side of the circuit handshake.
//!
//! Each input is used three ways, none of which may panic:
//! 1. as a `Created` body for `handshake::trim_created` (a trimmed body must be a fixed point);
//! 2. as raw `Create` content for `accept_create` with a fixed onion secret (this almost never
//!    authenticates, so it exercises the framing and Noise message checks);
//! 3. as the *plaintext hop payload* of a genuine Noise NK first message to that key, so the
//!    payload parser (position, next-hop flag, peer id, addresses, nested create) sees
//!    arbitrary bytes behind a valid tag. An accepted payload must satisfy the documented limits,
//!    and the hop must then be able to reply.

#![no_main]

use std::sync::OnceLock;

use braid_relay::MAX_HOPS;
use braid_relay::handshake::{
    MAX_ADDR_LEN, MAX_NEXT_ADDRS, MAX_PEER_ID_LEN, NOISE_PARAMS, PROLOGUE, accept_create,
    trim_created,
};
use libfuzzer_sys::fuzz_target;
use x25519_dalek::{PublicKey, StaticSecret};

const SECRET: [u8; 32] = [0x11; 32];
const EPHEMERAL: [u8; 32] = [0x42; 32];
/// Stand-in for the next hop's trimmed `Created` content (the hop only wraps it).
const INNER_CREATED: [u8; 52] = [0x33; 52];

/// `Create` content carrying `payload` in a Noise NK first message to `SECRET`'s public key.
fn sealed_create(payload: &[u8]) -> Option<Vec<u8>> {
    static PUBLIC: OnceLock<[u8; 32]> = OnceLock::new();
    let public = PUBLIC.get_or_init(|| PublicKey::from(&StaticSecret::from(SECRET)).to_bytes());
    let mut hs = snow::Builder::new(NOISE_PARAMS.parse().ok()?)
        .prologue(PROLOGUE)
        .ok()?
        .remote_public_key(public)
        .ok()?
        .fixed_ephemeral_key_for_testing_only(&EPHEMERAL)
        .build_initiator()
        .ok()?;
    let mut msg = vec![0u8; 65535];
    let len = hs.write_message(payload, &mut msg).ok()?;
    let len16 = u16::try_from(len).ok()?;
    let mut create = len16.to_be_bytes().to_vec();
    create.extend_from_slice(&msg[..len]);
    Some(create)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(trimmed) = trim_created(data) {
        assert!(data.starts_with(trimmed));
        assert_eq!(trim_created(trimmed), Ok(trimmed));
    }

    let _ = accept_create(&SECRET, data);

    let Some(create) = sealed_create(data) else {
        return;
    };
    let Ok(accepted) = accept_create(&SECRET, &create) else {
        return;
    };
    let position = accepted.position();
    assert!((1..=MAX_HOPS).contains(&position));
    let extends = match accepted.next() {
        Some(next) => {
            assert!(position < MAX_HOPS);
            assert!((1..=MAX_PEER_ID_LEN).contains(&next.peer_id.len()));
            assert!((1..=MAX_NEXT_ADDRS).contains(&next.addresses.len()));
            for a in &next.addresses {
                assert!((1..=MAX_ADDR_LEN).contains(&a.len()));
                assert!(a.bytes().all(|c| c.is_ascii_graphic()));
            }
            assert!(next.create.len() >= 2);
            let framed = u16::from_be_bytes([next.create[0], next.create[1]]) as usize;
            assert_eq!(framed, next.create.len() - 2);
            true
        }
        None => false,
    };
    // A measurement hop (next flag 2) is always the last.
    assert!(!(extends && accepted.is_measurement()));
    let inner = extends.then_some(&INNER_CREATED[..]);
    let (hop, created) = accepted.reply(inner).expect("an accepted hop can reply");
    assert_eq!(hop.position(), position);
    assert_eq!(hop.is_last(), !extends);
    assert_eq!(trim_created(&created), Ok(&created[..]));
});
