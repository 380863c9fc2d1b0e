//! One request/response exchange with one peer: open a `/braid/registry/1` stream, send the
//! request frame, read one response frame, close. The whole exchange has one deadline. It does
//! not choose peers or retry.

use std::time::Duration;

use braid_transport::{PeerId, Transport};
use futures::AsyncWriteExt as _;

use super::io::{ReadError, read_body, read_header, write_frame};
use super::{PROTOCOL, ServiceError};
use crate::protocol::{Request, Response};

/// Sends `request` to `peer` and returns its answer; a [`Response::Refused`] comes back as
/// [`ServiceError::Refused`]. `transport` must know how to reach `peer`.
pub(crate) async fn exchange(
    transport: &Transport,
    peer: PeerId,
    request: &Request,
    timeout: Duration,
) -> Result<Response, ServiceError> {
    let frame = request.encode();
    match tokio::time::timeout(timeout, exchange_frame(transport, peer, &frame)).await {
        Err(_) => Err(ServiceError::Timeout {
            peer: Box::new(peer),
            after: timeout,
        }),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Response::Refused(refusal))) => Err(ServiceError::Refused {
            peer: Box::new(peer),
            refusal,
        }),
        Ok(Ok(response)) => Ok(response),
    }
}

/// The unbounded exchange of an encoded request frame.
pub(crate) async fn exchange_frame(
    transport: &Transport,
    peer: PeerId,
    frame: &[u8],
) -> Result<Response, ServiceError> {
    let boxed = || Box::new(peer);
    let mut stream = transport
        .open_stream(peer, PROTOCOL)
        .await
        .map_err(|source| ServiceError::Stream {
            peer: boxed(),
            source,
        })?;
    let io = |context: &'static str| {
        move |source| ServiceError::Io {
            peer: Box::new(peer),
            context,
            source,
        }
    };
    // A server may answer before reading the whole request (a refusal decided from the
    // header) and stop our sending side: the answer is still read, and wins over the error.
    let sent = write_frame(&mut stream, frame).await;
    let read = |e| match e {
        ReadError::Io(source) => io("reading the answer")(source),
        ReadError::Protocol(source) => ServiceError::Protocol {
            peer: boxed(),
            source,
        },
    };
    let header = match (read_header(&mut stream).await, sent) {
        (Ok(header), _) => header,
        (Err(_), Err(source)) => return Err(io("sending the request")(source)),
        (Err(e), Ok(())) => return Err(read(e)),
    };
    let body = read_body(&mut stream, header).await.map_err(read)?;
    // The server closes after answering; our side is done too.
    let _ = stream.close().await;
    Response::decode_body(header, &body).map_err(|source| ServiceError::Protocol {
        peer: boxed(),
        source,
    })
}
