//! Circuit plumbing shared by the client (`braid-router`) and the relay server (`service`):
//! the circuit protocol's name, cell framing on a byte stream ([`io`]), the plain stream pump
//! ([`pump`]) and the braided-stream driver ([`braid`]). Tokio lives here; the protocol logic
//! it drives lives in the sans-IO core modules.

pub mod braid;
pub mod io;
pub mod measure;
pub mod pump;

use braid_transport::StreamProtocol;

/// The libp2p protocol carrying one circuit hop per stream.
pub const CIRCUIT_PROTOCOL: StreamProtocol = StreamProtocol::new("/braid/circuit/1");
