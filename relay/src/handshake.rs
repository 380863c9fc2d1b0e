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

use braid_codec::{Reader, Writer};
use snow::{Builder, HandshakeState};

use crate::MAX_HOPS;
use crate::circuit::{ClientCircuit, HopCircuit};
use crate::error::CellError;
use crate::layer::{HopKeys, TAG_LEN};

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
/// Next flag: this hop is the last (the exit).
const NEXT_LAST: u8 = 0;
/// Next flag: extend to the next hop.
const NEXT_EXTEND: u8 = 1;
/// Next flag: this hop is the last of a measurement circuit (PROTOCOL.md §6.2); any relay
/// accepts it, exit or not.
const NEXT_MEASURE: u8 = 2;
const NOISE_MAX: usize = 65535;
/// A one-byte length prefix's own limit (the client leaves finer limits to the relay).
const U8_MAX: usize = u8::MAX as usize;

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
        Self::build(path, None, NEXT_LAST)
    }

    /// As [`CircuitRequest::new`], for a measurement circuit: the last hop is told it only
    /// echoes (next flag 2, PROTOCOL.md §6.2), so it need not be an exit.
    pub fn new_measurement(path: &[HopSpec]) -> Result<(Self, Vec<u8>), CellError> {
        Self::build(path, None, NEXT_MEASURE)
    }

    /// As [`CircuitRequest::new`] with fixed ephemeral keys, for test vectors only.
    #[doc(hidden)]
    pub fn new_with_ephemerals(
        path: &[HopSpec],
        ephemerals: &[[u8; 32]],
    ) -> Result<(Self, Vec<u8>), CellError> {
        Self::build(path, Some(ephemerals), NEXT_LAST)
    }

    fn build(
        path: &[HopSpec],
        eph: Option<&[[u8; 32]]>,
        last_flag: u8,
    ) -> Result<(Self, Vec<u8>), CellError> {
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
                payload.u8(NEXT_EXTEND);
                payload
                    .u8_prefixed(&next.peer_id, U8_MAX, "next hop peer id")
                    .map_err(CellError::write)?;
                if next.addresses.is_empty() || next.addresses.len() > MAX_NEXT_ADDRS {
                    return Err(CellError::Malformed {
                        what: "next hop address count",
                    });
                }
                payload.u8(next.addresses.len() as u8);
                for a in &next.addresses {
                    payload
                        .u8_prefixed(a.as_bytes(), U8_MAX, "next hop address")
                        .map_err(CellError::write)?;
                }
                payload
                    .u16_prefixed(&inner, NOISE_MAX, "next hop create")
                    .map_err(CellError::write)?;
            } else {
                payload.u8(last_flag);
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
        create
            .u16_prefixed(&inner, NOISE_MAX, "create noise message")
            .map_err(CellError::write)?;
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
            let mut r = Reader::complete(&reply);
            let msg2 = r
                .u16_prefixed(NOISE_MAX, "created noise message")
                .map_err(CellError::read)?;
            let inner = r
                .u16_prefixed(NOISE_MAX, "created inner reply")
                .map_err(CellError::read)?
                .to_vec();
            r.zero_padding("created padding").map_err(CellError::read)?;
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
    measure: bool,
}

impl std::fmt::Debug for AcceptedHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptedHop")
            .field("position", &self.position)
            .field("extends", &self.next.is_some())
            .field("measure", &self.measure)
            .finish()
    }
}

/// Reads a `Create` cell's content with this relay's onion secret key.
pub fn accept_create(onion_secret: &[u8; 32], create: &[u8]) -> Result<AcceptedHop, CellError> {
    let mut r = Reader::complete(create);
    let msg1 = r
        .u16_prefixed(NOISE_MAX, "create noise message")
        .map_err(CellError::read)?;
    r.zero_padding("create padding").map_err(CellError::read)?;
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
    let mut p = Reader::complete(payload.get(..plen).unwrap_or_default());
    let version = p.u8("hop payload version").map_err(CellError::read)?;
    if version != HOP_PAYLOAD_VERSION {
        return Err(CellError::BadVersion(version));
    }
    let position = usize::from(p.u8("hop position").map_err(CellError::read)?);
    if position == 0 || position > MAX_HOPS {
        return Err(CellError::Malformed {
            what: "hop position",
        });
    }
    let flag = p.u8("next flag").map_err(CellError::read)?;
    let next = match flag {
        NEXT_LAST | NEXT_MEASURE => None,
        NEXT_EXTEND => {
            if position >= MAX_HOPS {
                return Err(CellError::Malformed {
                    what: "hop position",
                });
            }
            let peer_id = p
                .u8_prefixed(MAX_PEER_ID_LEN, "peer id")
                .map_err(CellError::read)?
                .to_vec();
            if peer_id.is_empty() {
                return Err(CellError::Malformed { what: "peer id" });
            }
            let count = usize::from(p.u8("next hop address count").map_err(CellError::read)?);
            if count == 0 || count > MAX_NEXT_ADDRS {
                return Err(CellError::Malformed {
                    what: "next hop address count",
                });
            }
            let mut addresses = Vec::with_capacity(count);
            for _ in 0..count {
                let a = p
                    .u8_prefixed(MAX_ADDR_LEN, "address")
                    .map_err(CellError::read)?;
                if a.is_empty() || !a.iter().all(|c| c.is_ascii_graphic()) {
                    return Err(CellError::Malformed { what: "address" });
                }
                addresses.push(String::from_utf8_lossy(a).into_owned());
            }
            let inner = p
                .u16_prefixed(NOISE_MAX, "next hop create")
                .map_err(CellError::read)?;
            let mut create = Writer::new();
            create
                .u16_prefixed(inner, NOISE_MAX, "create noise message")
                .map_err(CellError::write)?;
            Some(NextHop {
                peer_id,
                addresses,
                create: create.finish(),
            })
        }
        _ => return Err(CellError::Malformed { what: "next flag" }),
    };
    p.finish("hop payload").map_err(CellError::read)?;
    Ok(AcceptedHop {
        hs,
        position,
        next,
        measure: flag == NEXT_MEASURE,
    })
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

    /// Whether this hop is the last of a measurement circuit (it only echoes, §6.2).
    pub fn is_measurement(&self) -> bool {
        self.measure
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
        out.u16_prefixed(&msg2, NOISE_MAX, "created noise message")
            .map_err(CellError::write)?;
        match (self.next.is_some(), inner_created) {
            (true, Some(inner)) => {
                let mut buf = Vec::with_capacity(inner.len() + TAG_LEN);
                buf.extend_from_slice(inner);
                buf.extend_from_slice(&[0u8; TAG_LEN]);
                let len = buf.len();
                keys.backward.seal(&mut buf, len)?;
                out.u16_prefixed(&buf, NOISE_MAX, "created inner reply")
                    .map_err(CellError::write)?;
            }
            (false, None) => out
                .u16_prefixed(&[], NOISE_MAX, "created inner reply")
                .map_err(CellError::write)?,
            _ => return Err(CellError::Unexpected("inner reply mismatch")),
        }
        let last = self.next.is_none();
        Ok((HopCircuit::new(self.position, keys, last), out.finish()))
    }
}

/// The meaningful prefix of a `Created` cell body (the two length-prefixed fields), with the
/// zero padding checked and cut off, ready to be nested in the previous hop's reply.
pub fn trim_created(body: &[u8]) -> Result<&[u8], CellError> {
    let mut r = Reader::complete(body);
    r.u16_prefixed(NOISE_MAX, "created noise message")
        .map_err(CellError::read)?;
    r.u16_prefixed(NOISE_MAX, "created inner reply")
        .map_err(CellError::read)?;
    let end = r.position();
    r.zero_padding("created padding").map_err(CellError::read)?;
    Ok(body.get(..end).unwrap_or_default())
}
