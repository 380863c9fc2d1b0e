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
    forward: ClientForward,
    backward: ClientBackward,
}

impl ClientCircuit {
    pub(crate) fn new(hops: Vec<HopKeys>) -> Self {
        let (f, b) = hops.into_iter().map(|h| (h.forward, h.backward)).unzip();
        ClientCircuit {
            forward: ClientForward { keys: f },
            backward: ClientBackward { keys: b },
        }
    }

    /// Number of hops.
    pub fn hops(&self) -> usize {
        self.forward.keys.len()
    }

    /// Largest `Data` payload one cell of this circuit carries.
    pub fn max_data(&self) -> usize {
        self.forward.max_data()
    }

    /// Encodes `msg` and wraps it in every hop's forward layer, exit first.
    pub fn encrypt_forward(&mut self, msg: &RelayMsg) -> Result<Cell, CellError> {
        self.forward.encrypt(msg)
    }

    /// Removes every hop's backward layer, guard first, and decodes the message.
    pub fn decrypt_backward(&mut self, cell: &mut Cell) -> Result<RelayMsg, CellError> {
        self.backward.decrypt(cell)
    }

    /// Splits the circuit into its two directions so a reader and a writer can run apart.
    pub fn split(self) -> (ClientForward, ClientBackward) {
        (self.forward, self.backward)
    }
}

/// One relay's state for one circuit.
#[derive(Debug)]
pub struct HopCircuit {
    forward: HopForward,
    backward: HopBackward,
    last: bool,
}

impl HopCircuit {
    pub(crate) fn new(position: usize, keys: HopKeys, last: bool) -> Self {
        HopCircuit {
            forward: HopForward {
                position,
                key: keys.forward,
            },
            backward: HopBackward {
                position,
                key: keys.backward,
            },
            last,
        }
    }

    /// Whether this hop is the circuit's last (it reads the messages).
    pub fn is_last(&self) -> bool {
        self.last
    }

    /// This hop's 1-based position.
    pub fn position(&self) -> usize {
        self.forward.position
    }

    /// Peels this hop's layer off a forward cell body, in place; the body is then ready for the
    /// next hop (or, at the last hop, holds the message).
    pub fn peel_forward(&mut self, body: &mut [u8; BODY_LEN]) -> Result<(), CellError> {
        self.forward.peel(body)
    }

    /// Adds this hop's layer to a backward cell body, in place.
    pub fn wrap_backward(&mut self, body: &mut [u8; BODY_LEN]) -> Result<(), CellError> {
        self.backward.wrap(body)
    }

    /// Exit only: peels the layer off a forward cell and decodes its message.
    pub fn open_message(&mut self, cell: &mut Cell) -> Result<RelayMsg, CellError> {
        if !self.last {
            return Err(CellError::Unexpected("message read at a middle hop"));
        }
        self.forward.open_message(cell)
    }

    /// Exit only: encodes `msg` and wraps it in this hop's backward layer.
    pub fn seal_message(&mut self, msg: &RelayMsg) -> Result<Cell, CellError> {
        if !self.last {
            return Err(CellError::Unexpected("message written at a middle hop"));
        }
        self.backward.seal_message(msg)
    }

    /// Largest `Data` payload the exit can put in one cell.
    pub fn max_data(&self) -> usize {
        self.backward.max_data()
    }

    /// Splits the hop state into its two directions.
    pub fn split(self) -> (HopForward, HopBackward) {
        (self.forward, self.backward)
    }
}

/// The client's forward half: wraps messages for the exit. Owned by the circuit's writer task.
#[derive(Debug)]
pub struct ClientForward {
    keys: Vec<crate::layer::LayerKey>,
}

/// The client's backward half: unwraps cells from the exit. Owned by the circuit's reader task.
#[derive(Debug)]
pub struct ClientBackward {
    keys: Vec<crate::layer::LayerKey>,
}

impl ClientForward {
    /// Largest `Data` payload one cell carries.
    pub fn max_data(&self) -> usize {
        message_len(self.keys.len()) - crate::msg::MSG_HEADER_LEN
    }

    /// Encodes `msg` and wraps it in every hop's forward layer, exit first.
    pub fn encrypt(&mut self, msg: &RelayMsg) -> Result<Cell, CellError> {
        let n = self.keys.len();
        let mut cell = Cell::new(CellKind::Relay);
        msg.encode_into(&mut cell.body[..message_len(n)])?;
        for (i, key) in self.keys.iter_mut().enumerate().rev() {
            key.seal(&mut cell.body[..], layer_len(i + 1))?;
        }
        Ok(cell)
    }
}

impl ClientBackward {
    /// Removes every hop's backward layer, guard first, and decodes the message.
    pub fn decrypt(&mut self, cell: &mut Cell) -> Result<RelayMsg, CellError> {
        if cell.kind != CellKind::Relay {
            return Err(CellError::Unexpected("non-relay cell on a built circuit"));
        }
        let n = self.keys.len();
        for (i, key) in self.keys.iter_mut().enumerate() {
            key.open(&mut cell.body[..], layer_len(i + 1), i + 1)?;
        }
        RelayMsg::decode(&cell.body[..message_len(n)])
    }
}

/// A hop's forward half (peels layers off cells from the client).
#[derive(Debug)]
pub struct HopForward {
    position: usize,
    key: crate::layer::LayerKey,
}

/// A hop's backward half (adds its layer to cells towards the client).
#[derive(Debug)]
pub struct HopBackward {
    position: usize,
    key: crate::layer::LayerKey,
}

impl HopForward {
    /// Peels this hop's layer off a forward cell body, in place.
    pub fn peel(&mut self, body: &mut [u8; BODY_LEN]) -> Result<(), CellError> {
        let len = layer_len(self.position);
        self.key.open(&mut body[..], len, self.position)?;
        body[len - TAG_LEN..].fill(0);
        Ok(())
    }

    /// Exit: peels the layer and decodes the message.
    pub fn open_message(&mut self, cell: &mut Cell) -> Result<RelayMsg, CellError> {
        self.peel(&mut cell.body)?;
        RelayMsg::decode(&cell.body[..layer_len(self.position) - TAG_LEN])
    }
}

impl HopBackward {
    /// Adds this hop's layer to a backward cell body, in place.
    pub fn wrap(&mut self, body: &mut [u8; BODY_LEN]) -> Result<(), CellError> {
        let len = layer_len(self.position);
        self.key.seal(&mut body[..], len)?;
        body[len..].fill(0);
        Ok(())
    }

    /// Exit: encodes `msg` and wraps it in this hop's backward layer.
    pub fn seal_message(&mut self, msg: &RelayMsg) -> Result<Cell, CellError> {
        let mut cell = Cell::new(CellKind::Relay);
        msg.encode_into(&mut cell.body[..layer_len(self.position) - TAG_LEN])?;
        self.wrap(&mut cell.body)?;
        Ok(cell)
    }

    /// Largest `Data` payload the exit can put in one cell.
    pub fn max_data(&self) -> usize {
        layer_len(self.position) - TAG_LEN - crate::msg::MSG_HEADER_LEN
    }
}
