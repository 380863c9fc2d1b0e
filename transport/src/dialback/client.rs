//! The requester's side of `/braid/dialback/1`: open a stream to a server, send the claimed
//! addresses, read one verdict per address. It does not pick servers or act on verdicts.

use std::time::Duration;

use futures::AsyncWriteExt as _;
use libp2p::{Multiaddr, PeerId};

use super::{
    DialbackError, PROTOCOL,
    io::{ReadError, read_frame, write_frame},
    wire::{Frame, Request, Verdict},
};
use crate::Transport;

/// A bound for one whole exchange that covers a default server: up to 10 s waiting for a probe
/// slot, 10 s of probing, and the stream's own setup.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks `server` to dial back `addresses` (1 to 8) and returns one verdict per address, in the
/// same order. `transport` must know how to reach `server` (`Transport::add_addresses`). The
/// whole exchange, stream opening included, is bounded by `timeout`.
pub async fn request_dialback(
    transport: &Transport,
    server: PeerId,
    addresses: Vec<Multiaddr>,
    timeout: Duration,
) -> Result<Vec<Verdict>, DialbackError> {
    let request = Request::new(addresses).map_err(DialbackError::BadRequest)?;
    let asked = request.addresses().len();
    let exchange = async {
        let mut stream = transport
            .open_stream(server, PROTOCOL)
            .await
            .map_err(|source| DialbackError::Transport {
                peer: Box::new(server),
                source,
            })?;
        let io = |context: &'static str| {
            move |source| DialbackError::Io {
                peer: Box::new(server),
                context,
                source,
            }
        };
        write_frame(&mut stream, &Frame::Request(request))
            .await
            .map_err(io("sending the request"))?;
        let answer = read_frame(&mut stream).await.map_err(|e| match e {
            ReadError::Io(source) => io("reading the answer")(source),
            ReadError::Wire(source) => DialbackError::Wire {
                peer: Box::new(server),
                source,
            },
        })?;
        // The server closes after answering; our side is done too.
        let _ = stream.close().await;
        Ok(answer)
    };
    let answer = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| DialbackError::Timeout {
            peer: Box::new(server),
            timeout,
        })??;
    match answer {
        Frame::Response(response) if response.verdicts().len() == asked => {
            Ok(response.into_verdicts())
        }
        Frame::Response(response) => Err(DialbackError::Protocol {
            peer: Box::new(server),
            what: format!(
                "{} verdicts for {asked} addresses",
                response.verdicts().len()
            ),
        }),
        Frame::Error(reason) => Err(DialbackError::Rejected {
            peer: Box::new(server),
            reason,
        }),
        Frame::Request(_) => Err(DialbackError::Protocol {
            peer: Box::new(server),
            what: "answered with a Request frame".into(),
        }),
        Frame::Unknown(unknown) => Err(DialbackError::Protocol {
            peer: Box::new(server),
            what: format!("answered with unknown frame kind {}", unknown.kind()),
        }),
    }
}
