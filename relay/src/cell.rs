//! The link-level cell codec: the fixed-size unit that travels on one circuit-hop stream.
//!
//! Every cell on the wire is exactly [`CELL_LEN`] bytes: a version byte, a kind byte and a body
//! of [`BODY_LEN`] bytes (padding included). This module only frames cells; it does not know
//! about onion layers (see [`crate::layer`]) or relay messages (see [`crate::msg`]).

use braid_codec::Reader;

use crate::error::CellError;

/// Version byte of the cell format; the first byte of every cell.
pub const CELL_VERSION: u8 = 1;
/// Total size of one cell on the wire, in bytes.
pub const CELL_LEN: usize = 4096;
/// Size of a cell's body (everything after the version and kind bytes).
pub const BODY_LEN: usize = CELL_LEN - 2;

/// What a cell asks its receiver to do.
///
/// Unknown kinds are kept as values so that a newer peer's cell can be reported precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKind {
    /// Sent by the previous hop as the first cell of a stream: the onion handshake for this hop.
    /// The receiver answers with exactly one `Created` or `Destroy`.
    Create,
    /// Sent back by a hop once the whole rest of the path has answered: the handshake replies.
    Created,
    /// An onion-encrypted relay cell, in either direction. The receiver peels (forward) or adds
    /// (backward) one layer and passes it on.
    Relay,
    /// Tears the circuit down. The receiver passes it on in the same direction and closes.
    Destroy,
    /// A kind this version does not know. Receivers treat it as a protocol violation.
    Unknown(u8),
}

impl CellKind {
    /// The kind's wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            CellKind::Create => 1,
            CellKind::Created => 2,
            CellKind::Relay => 3,
            CellKind::Destroy => 4,
            CellKind::Unknown(b) => b,
        }
    }

    /// The kind for a wire byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            1 => CellKind::Create,
            2 => CellKind::Created,
            3 => CellKind::Relay,
            4 => CellKind::Destroy,
            other => CellKind::Unknown(other),
        }
    }
}

/// One fixed-size cell. The body is boxed so moving a cell is cheap.
#[derive(Clone, PartialEq, Eq)]
pub struct Cell {
    /// What the cell is.
    pub kind: CellKind,
    /// The body, always exactly [`BODY_LEN`] bytes.
    pub body: Box<[u8; BODY_LEN]>,
}

impl std::fmt::Debug for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print payload bytes.
        f.debug_struct("Cell")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

impl Cell {
    /// A cell of `kind` with an all-zero body.
    pub fn new(kind: CellKind) -> Self {
        Cell {
            kind,
            body: Box::new([0u8; BODY_LEN]),
        }
    }

    /// A cell whose body starts with `content` and is zero-padded.
    ///
    /// Fails if `content` is longer than [`BODY_LEN`].
    pub fn with_content(kind: CellKind, content: &[u8]) -> Result<Self, CellError> {
        if content.len() > BODY_LEN {
            return Err(CellError::ContentTooLong {
                len: content.len(),
                max: BODY_LEN,
            });
        }
        let mut cell = Cell::new(kind);
        cell.body[..content.len()].copy_from_slice(content);
        Ok(cell)
    }

    /// A `Destroy` cell carrying `reason`.
    pub fn destroy(reason: DestroyReason) -> Self {
        let mut cell = Cell::new(CellKind::Destroy);
        cell.body[0] = reason.to_byte();
        cell
    }

    /// Writes the cell's wire form into `out` (exactly [`CELL_LEN`] bytes).
    pub fn encode_into(&self, out: &mut [u8; CELL_LEN]) {
        out[0] = CELL_VERSION;
        out[1] = self.kind.to_byte();
        out[2..].copy_from_slice(&self.body[..]);
    }

    /// The cell's wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = [0u8; CELL_LEN];
        self.encode_into(&mut out);
        out.to_vec()
    }

    /// Parses one cell from the front of `input`.
    ///
    /// Returns the cell and the number of bytes consumed (always [`CELL_LEN`]). A short input is
    /// [`CellError::Incomplete`]; a wrong version byte is [`CellError::BadVersion`]. Unknown kinds
    /// parse (as [`CellKind::Unknown`]) so the caller can name them.
    pub fn decode(input: &[u8]) -> Result<(Self, usize), CellError> {
        // The version is judged as soon as it is there, so garbage fails fast; the rest of a
        // cell is read whole or not at all.
        if let Some(&version) = input.first()
            && version != CELL_VERSION
        {
            return Err(CellError::BadVersion(version));
        }
        let mut r = Reader::new(input);
        let cell = r.take(CELL_LEN, "cell").map_err(CellError::read)?;
        let mut c = Reader::complete(cell);
        let _version = c.u8("cell version").map_err(CellError::read)?;
        let kind = CellKind::from_byte(c.u8("cell kind").map_err(CellError::read)?);
        let mut body = Box::new([0u8; BODY_LEN]);
        body.copy_from_slice(c.take(BODY_LEN, "cell body").map_err(CellError::read)?);
        c.finish("cell").map_err(CellError::read)?;
        Ok((Cell { kind, body }, r.position()))
    }

    /// The reason carried by a `Destroy` cell.
    pub fn destroy_reason(&self) -> DestroyReason {
        DestroyReason::from_byte(self.body[0])
    }
}

/// Why a circuit was torn down. Carried in `Destroy` cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestroyReason {
    /// Closed on purpose by the client.
    Finished,
    /// A cell failed authentication (tampered, replayed or reordered).
    Integrity,
    /// The peer broke the protocol (unexpected cell, bad handshake).
    Protocol,
    /// The next hop could not be reached.
    NextHopUnreachable,
    /// A limit (circuits per peer, total circuits) was reached.
    ResourceLimit,
    /// The relay is shutting down.
    Shutdown,
    /// The handshake or the next hop timed out.
    Timeout,
    /// A reason this version does not know.
    Unknown(u8),
}

impl DestroyReason {
    /// The reason's wire byte.
    pub fn to_byte(self) -> u8 {
        match self {
            DestroyReason::Finished => 0,
            DestroyReason::Integrity => 1,
            DestroyReason::Protocol => 2,
            DestroyReason::NextHopUnreachable => 3,
            DestroyReason::ResourceLimit => 4,
            DestroyReason::Shutdown => 5,
            DestroyReason::Timeout => 6,
            DestroyReason::Unknown(b) => b,
        }
    }

    /// The reason for a wire byte.
    pub fn from_byte(b: u8) -> Self {
        match b {
            0 => DestroyReason::Finished,
            1 => DestroyReason::Integrity,
            2 => DestroyReason::Protocol,
            3 => DestroyReason::NextHopUnreachable,
            4 => DestroyReason::ResourceLimit,
            5 => DestroyReason::Shutdown,
            6 => DestroyReason::Timeout,
            other => DestroyReason::Unknown(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_kind() {
        for kind in [
            CellKind::Create,
            CellKind::Created,
            CellKind::Relay,
            CellKind::Destroy,
            CellKind::Unknown(0x7f),
        ] {
            let cell = Cell::with_content(kind, b"hello").expect("fits");
            let wire = cell.encode();
            assert_eq!(wire.len(), CELL_LEN);
            let (back, used) = Cell::decode(&wire).expect("decodes");
            assert_eq!(used, CELL_LEN);
            assert_eq!(back, cell);
        }
    }

    #[test]
    fn test_vector_destroy() {
        let wire = Cell::destroy(DestroyReason::Integrity).encode();
        assert_eq!(hex::encode(&wire[..4]), "01040100");
        assert!(wire[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn test_vector_relay_header() {
        let wire = Cell::with_content(CellKind::Relay, &[0xde, 0xad])
            .expect("fits")
            .encode();
        assert_eq!(hex::encode(&wire[..5]), "0103dead00");
    }

    #[test]
    fn every_strict_prefix_is_incomplete() {
        let wire = Cell::with_content(CellKind::Create, &[9; 100])
            .expect("fits")
            .encode();
        for n in 0..CELL_LEN {
            match Cell::decode(&wire[..n]) {
                Err(CellError::Incomplete { needed }) => assert_eq!(needed, CELL_LEN - n),
                other => panic!("prefix {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn bad_version_rejected() {
        let mut wire = Cell::new(CellKind::Relay).encode();
        wire[0] = 2;
        assert!(matches!(Cell::decode(&wire), Err(CellError::BadVersion(2))));
    }

    #[test]
    fn oversized_content_rejected() {
        let big = vec![0u8; BODY_LEN + 1];
        assert!(matches!(
            Cell::with_content(CellKind::Create, &big),
            Err(CellError::ContentTooLong { .. })
        ));
    }

    #[test]
    fn destroy_reason_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(DestroyReason::from_byte(b).to_byte(), b);
            assert_eq!(CellKind::from_byte(b).to_byte(), b);
        }
    }
}
