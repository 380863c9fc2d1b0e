//! Circuit state after the handshake: the client's n layers and a relay's one layer.
//!
//! [`ClientCircuit`] turns relay messages into fully wrapped cells and back. [`HopCircuit`] is
//! what one relay keeps per circuit: it peels one layer off forward cells and adds one to
//! backward cells; at the exit it also reads and writes the messages themselves.
//! Any authentication failure is fatal for the circuit: callers must tear it down.

use crate::cell::{BODY_LEN, Cell, CellKind};
use crate::error::CellError;
use crate::layer::{HopKeys, TAG_LEN, layer_len, message_len};
use crate::msg::RelayMsg;

/// The client's view of a built circuit: one key pair per hop, guard first.
#[derive(Debug)]
pub struct ClientCircuit {
    hops: Vec<HopKeys>,
}

impl ClientCircuit {
    pub(crate) fn new(hops: Vec<HopKeys>) -> Self {
        ClientCircuit { hops }
    }

    /// Number of hops.
    pub fn hops(&self) -> usize {
        self.hops.len()
    }

    /// Largest `Data` payload one cell of this circuit carries.
    pub fn max_data(&self) -> usize {
        message_len(self.hops.len()) - crate::msg::MSG_HEADER_LEN
    }

    /// Encodes `msg` and wraps it in every hop's forward layer, exit first.
    pub fn encrypt_forward(&mut self, msg: &RelayMsg) -> Result<Cell, CellError> {
        let n = self.hops.len();
        let mut cell = Cell::new(CellKind::Relay);
        msg.encode_into(&mut cell.body[..message_len(n)])?;
        for (i, hop) in self.hops.iter_mut().enumerate().rev() {
            hop.forward.seal(&mut cell.body[..], layer_len(i + 1))?;
        }
        Ok(cell)
    }

    /// Removes every hop's backward layer, guard first, and decodes the message.
    pub fn decrypt_backward(&mut self, cell: &mut Cell) -> Result<RelayMsg, CellError> {
        if cell.kind != CellKind::Relay {
            return Err(CellError::Unexpected("non-relay cell on a built circuit"));
        }
        let n = self.hops.len();
        for (i, hop) in self.hops.iter_mut().enumerate() {
            hop.backward.open(&mut cell.body[..], layer_len(i + 1), i + 1)?;
        }
        RelayMsg::decode(&cell.body[..message_len(n)])
    }
}

/// One relay's state for one circuit.
#[derive(Debug)]
pub struct HopCircuit {
    position: usize,
    keys: HopKeys,
    last: bool,
}

impl HopCircuit {
    pub(crate) fn new(position: usize, keys: HopKeys, last: bool) -> Self {
        HopCircuit {
            position,
            keys,
            last,
        }
    }

    /// Whether this hop is the circuit's last (it reads the messages).
    pub fn is_last(&self) -> bool {
        self.last
    }

    /// This hop's 1-based position.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Peels this hop's layer off a forward cell body, in place; the body is then ready for the
    /// next hop (or, at the last hop, holds the message).
    pub fn peel_forward(&mut self, body: &mut [u8; BODY_LEN]) -> Result<(), CellError> {
        let len = layer_len(self.position);
        self.keys.forward.open(&mut body[..], len, self.position)?;
        body[len - TAG_LEN..].fill(0);
        Ok(())
    }

    /// Adds this hop's layer to a backward cell body, in place.
    pub fn wrap_backward(&mut self, body: &mut [u8; BODY_LEN]) -> Result<(), CellError> {
        let len = layer_len(self.position);
        self.keys.backward.seal(&mut body[..], len)?;
        body[len..].fill(0);
        Ok(())
    }

    /// Exit only: peels the layer off a forward cell and decodes its message.
    pub fn open_message(&mut self, cell: &mut Cell) -> Result<RelayMsg, CellError> {
        if !self.last {
            return Err(CellError::Unexpected("message read at a middle hop"));
        }
        self.peel_forward(&mut cell.body)?;
        RelayMsg::decode(&cell.body[..layer_len(self.position) - TAG_LEN])
    }

    /// Exit only: encodes `msg` and wraps it in this hop's backward layer.
    pub fn seal_message(&mut self, msg: &RelayMsg) -> Result<Cell, CellError> {
        if !self.last {
            return Err(CellError::Unexpected("message written at a middle hop"));
        }
        let mut cell = Cell::new(CellKind::Relay);
        msg.encode_into(&mut cell.body[..layer_len(self.position) - TAG_LEN])?;
        self.wrap_backward(&mut cell.body)?;
        Ok(cell)
    }

    /// Largest `Data` payload the exit can put in one cell.
    pub fn max_data(&self) -> usize {
        layer_len(self.position) - TAG_LEN - crate::msg::MSG_HEADER_LEN
    }
}
