//! The one-round-trip circuit build: layered Noise NK handshakes, one per hop.
//!
//! The client writes one Noise `NK` first message per hop, innermost (exit) first; each hop's
//! message carries, encrypted to that hop's X25519 onion key, the next hop's identity and
//! addresses and the next hop's own first message. Every hop answers with the second Noise
//! message, and the replies travel back nested: hop `i` wraps hop `i + 1`'s reply with its new
//! backward layer key (counter 0). So the whole path is built in one round trip.
//!
//! Client side: [`CircuitRequest`] (sent, awaiting the reply) → [`ClientCircuit`].
//! Relay side: [`accept_create`] → [`AcceptedHop`] (awaiting the rest of the path) → [`HopCircuit`].
//! Typestates: each transition consumes the previous state.

use snow::{Builder, HandshakeState};

use crate::MAX_HOPS;
use crate::circuit::{ClientCircuit, HopCircuit};
use crate::error::CellError;
use crate::layer::{HopKeys, TAG_LEN};
use crate::wire::{Reader, Writer};

/// The Noise protocol name used for every hop.
pub const NOISE_PARAMS: &str = "Noise_NK_25519_ChaChaPoly_BLAKE2s";
/// Noise prologue: binds the handshake to this protocol version.
pub const PROLOGUE: &[u8] = b"braid circuit v1";
/// Version byte of the per-hop handshake payload.
pub const HOP_PAYLOAD_VERSION: u8 = 1;
/// Most addresses a hop may be told to dial for the next hop.
pub const MAX_NEXT_ADDRS: usize = 4;
/// Largest peer id accepted (a libp2p PeerId of an Ed25519 key is 38 bytes).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Largest address string accepted.
pub const MAX_ADDR_LEN: usize = 200;
const NOISE_MAX: usize = 65535;

/// What the client knows about one hop of the path it builds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopSpec {
    /// The relay's libp2p PeerId, as bytes.
    pub peer_id: Vec<u8>,
    /// The relay's addresses (multiaddr text), for the previous hop to dial.
    pub addresses: Vec<String>,
    /// The relay's X25519 onion key from its signed descriptor.
    pub onion_key: [u8; 32],
}

/// Where a hop must extend the circuit to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextHop {
    /// The next relay's PeerId bytes.
    pub peer_id: Vec<u8>,
    /// Addresses to dial it at.
    pub addresses: Vec<String>,
    /// The content of the `Create` cell to send it.
    pub create: Vec<u8>,
}

fn noise_err(stage: &'static str) -> impl FnOnce(snow::Error) -> CellError {
    move |e| CellError::Handshake {
        stage,
        reason: e.to_string(),
    }
}

fn params() -> snow::params::NoiseParams {
    // A constant, valid protocol name: parsing cannot fail (covered by every handshake test).
    #[allow(clippy::expect_used)]
    NOISE_PARAMS.parse().expect("valid noise params")
}

/// A circuit build in flight: the client has sent `Create` and awaits `Created`.
pub struct CircuitRequest {
    handshakes: Vec<HandshakeState>,
}

impl std::fmt::Debug for CircuitRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitRequest")
            .field("hops", &self.handshakes.len())
            .finish()
    }
}

impl CircuitRequest {
    /// Starts a build along `path` (guard first, exit last). Returns the state and the content of
    /// the `Create` cell for the first hop.
    pub fn new(path: &[HopSpec]) -> Result<(Self, Vec<u8>), CellError> {
        Self::build(path, None)
    }

    /// As [`CircuitRequest::new`] with fixed ephemeral keys, for test vectors only.
    #[doc(hidden)]
    pub fn new_with_ephemerals(
        path: &[HopSpec],
        ephemerals: &[[u8; 32]],
    ) -> Result<(Self, Vec<u8>), CellError> {
        Self::build(path, Some(ephemerals))
    }

    fn build(path: &[HopSpec], eph: Option<&[[u8; 32]]>) -> Result<(Self, Vec<u8>), CellError> {
        let n = path.len();
        if n == 0 || n > MAX_HOPS {
            return Err(CellError::BadHopCount(n));
        }
        let mut handshakes: Vec<Option<HandshakeState>> = (0..n).map(|_| None).collect();
        let mut inner: Vec<u8> = Vec::new();
        for i in (0..n).rev() {
            let mut b = Builder::new(params())
                .prologue(PROLOGUE)
                .map_err(noise_err("prologue"))?
                .remote_public_key(&path[i].onion_key)
                .map_err(noise_err("remote key"))?;
            if let Some(e) = eph {
                b = b.fixed_ephemeral_key_for_testing_only(&e[i]);
            }
            let mut hs = b.build_initiator().map_err(noise_err("initiator"))?;
            let mut payload = Writer::new();
            payload.u8(HOP_PAYLOAD_VERSION);
            payload.u8((i + 1) as u8);
            if i + 1 < n {
                let next = &path[i + 1];
                payload.u8(1);
                payload.bytes_u8(&next.peer_id)?;
                if next.addresses.is_empty() || next.addresses.len() > MAX_NEXT_ADDRS {
                    return Err(CellError::Malformed {
                        what: "next hop address count",
                    });
                }
                payload.u8(next.addresses.len() as u8);
                for a in &next.addresses {
                    payload.bytes_u8(a.as_bytes())?;
                }
                payload.bytes_u16(&inner)?;
            } else {
                payload.u8(0);
            }
            let payload = payload.finish();
            let mut msg = vec![0u8; NOISE_MAX];
            let len = hs
                .write_message(&payload, &mut msg)
                .map_err(noise_err("write message 1"))?;
            msg.truncate(len);
            inner = msg;
            handshakes[i] = Some(hs);
        }
        let mut create = Writer::new();
        create.bytes_u16(&inner)?;
        Ok((
            CircuitRequest {
                handshakes: handshakes.into_iter().flatten().collect(),
            },
            create.finish(),
        ))
    }

    /// Completes the build with the content of the first hop's `Created` cell.
    pub fn finish(self, created: &[u8]) -> Result<ClientCircuit, CellError> {
        let n = self.handshakes.len();
        let mut hops = Vec::with_capacity(n);
        let mut reply = created.to_vec();
        for (i, mut hs) in self.handshakes.into_iter().enumerate() {
            let mut r = Reader::new(&reply);
            let msg2 = r.bytes_u16()?;
            let inner = r.bytes_u16()?.to_vec();
            r.expect_zero_padding("created padding")?;
            let mut payload = vec![0u8; NOISE_MAX];
            let plen = hs
                .read_message(msg2, &mut payload)
                .map_err(noise_err("read message 2"))?;
            if plen != 0 {
                return Err(CellError::Malformed {
                    what: "reply payload",
                });
            }
            let (k1, k2) = hs.dangerously_get_raw_split();
            let mut keys = HopKeys::from_split(&k1, &k2);
            let last = i + 1 == n;
            if last {
                if !inner.is_empty() {
                    return Err(CellError::Malformed {
                        what: "exit reply carries an inner reply",
                    });
                }
            } else {
                if inner.len() < TAG_LEN {
                    return Err(CellError::Malformed {
                        what: "missing inner reply",
                    });
                }
                let mut buf = inner;
                let len = buf.len();
                keys.backward.open(&mut buf, len, i + 1)?;
                buf.truncate(len - TAG_LEN);
                reply = buf;
            }
            hops.push(keys);
        }
        Ok(ClientCircuit::new(hops))
    }
}

/// A hop that has read the client's handshake and awaits the rest of the path.
pub struct AcceptedHop {
    hs: HandshakeState,
    position: usize,
    next: Option<NextHop>,
}

impl std::fmt::Debug for AcceptedHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptedHop")
            .field("position", &self.position)
            .field("extends", &self.next.is_some())
            .finish()
    }
}

/// Reads a `Create` cell's content with this relay's onion secret key.
pub fn accept_create(onion_secret: &[u8; 32], create: &[u8]) -> Result<AcceptedHop, CellError> {
    let mut r = Reader::new(create);
    let msg1 = r.bytes_u16()?;
    r.expect_zero_padding("create padding")?;
    let mut hs = Builder::new(params())
        .prologue(PROLOGUE)
        .map_err(noise_err("prologue"))?
        .local_private_key(onion_secret)
        .map_err(noise_err("local key"))?
        .build_responder()
        .map_err(noise_err("responder"))?;
    let mut payload = vec![0u8; NOISE_MAX];
    let plen = hs
        .read_message(msg1, &mut payload)
        .map_err(noise_err("read message 1"))?;
    let mut p = Reader::new(&payload[..plen]);
    let version = p.u8()?;
    if version != HOP_PAYLOAD_VERSION {
        return Err(CellError::BadVersion(version));
    }
    let position = p.u8()? as usize;
    if position == 0 || position > MAX_HOPS {
        return Err(CellError::Malformed {
            what: "hop position",
        });
    }
    let next = match p.u8()? {
        0 => None,
        1 => {
            if position >= MAX_HOPS {
                return Err(CellError::Malformed {
                    what: "hop position",
                });
            }
            let peer_id = p.bytes_u8()?.to_vec();
            if peer_id.is_empty() || peer_id.len() > MAX_PEER_ID_LEN {
                return Err(CellError::Malformed { what: "peer id" });
            }
            let count = p.u8()? as usize;
            if count == 0 || count > MAX_NEXT_ADDRS {
                return Err(CellError::Malformed {
                    what: "next hop address count",
                });
            }
            let mut addresses = Vec::with_capacity(count);
            for _ in 0..count {
                let a = p.bytes_u8()?;
                if a.is_empty() || a.len() > MAX_ADDR_LEN || !a.iter().all(|c| c.is_ascii_graphic())
                {
                    return Err(CellError::Malformed { what: "address" });
                }
                addresses.push(String::from_utf8_lossy(a).into_owned());
            }
            let inner = p.bytes_u16()?;
            let mut create = Writer::new();
            create.bytes_u16(inner)?;
            Some(NextHop {
                peer_id,
                addresses,
                create: create.finish(),
            })
        }
        _ => return Err(CellError::Malformed { what: "next flag" }),
    };
    p.expect_end("hop payload")?;
    Ok(AcceptedHop { hs, position, next })
}

impl AcceptedHop {
    /// Where to extend, or `None` if this hop is the last (the exit).
    pub fn next(&self) -> Option<&NextHop> {
        self.next.as_ref()
    }

    /// This hop's 1-based position in the circuit.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Answers the client. `inner_created` is the next hop's `Created` content (required iff this
    /// hop extends). Returns the hop's circuit state and the content of its own `Created` cell.
    pub fn reply(
        mut self,
        inner_created: Option<&[u8]>,
    ) -> Result<(HopCircuit, Vec<u8>), CellError> {
        let mut msg2 = vec![0u8; 256];
        let len = self
            .hs
            .write_message(&[], &mut msg2)
            .map_err(noise_err("write message 2"))?;
        msg2.truncate(len);
        let (k1, k2) = self.hs.dangerously_get_raw_split();
        let mut keys = HopKeys::from_split(&k1, &k2);
        let mut out = Writer::new();
        out.bytes_u16(&msg2)?;
        match (self.next.is_some(), inner_created) {
            (true, Some(inner)) => {
                let mut buf = Vec::with_capacity(inner.len() + TAG_LEN);
                buf.extend_from_slice(inner);
                buf.extend_from_slice(&[0u8; TAG_LEN]);
                let len = buf.len();
                keys.backward.seal(&mut buf, len)?;
                out.bytes_u16(&buf)?;
            }
            (false, None) => out.bytes_u16(&[])?,
            _ => return Err(CellError::Unexpected("inner reply mismatch")),
        }
        let last = self.next.is_none();
        Ok((HopCircuit::new(self.position, keys, last), out.finish()))
    }
}

/// The meaningful prefix of a `Created` cell body (the two length-prefixed fields), with the
/// zero padding checked and cut off, ready to be nested in the previous hop's reply.
pub fn trim_created(body: &[u8]) -> Result<&[u8], CellError> {
    let mut r = Reader::new(body);
    let a = r.bytes_u16()?.len();
    let b = r.bytes_u16()?.len();
    r.expect_zero_padding("created padding")?;
    Ok(&body[..4 + a + b])
}
