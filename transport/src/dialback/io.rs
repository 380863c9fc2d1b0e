//! Reading and writing one dial-back frame on a stream. The header is checked before the body
//! is read, so an oversized or foreign frame costs at most 4 bytes of buffer; a body is at most
//! `wire::MAX_BODY_LEN` bytes. No timeouts here: callers bound every call.

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::wire::{self, Frame, HEADER_LEN, WireError};

/// Why no frame was read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream failed or ended before a whole frame arrived.
    Io(std::io::Error),
    /// The bytes are not a valid frame.
    Wire(WireError),
}

/// Reads exactly one frame.
pub(crate) async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Frame, ReadError> {
    let mut header = [0u8; HEADER_LEN];
    stream
        .read_exact(&mut header)
        .await
        .map_err(ReadError::Io)?;
    let len = wire::body_len(&header).map_err(ReadError::Wire)?;
    let mut frame = vec![0u8; HEADER_LEN + len];
    frame[..HEADER_LEN].copy_from_slice(&header);
    stream
        .read_exact(&mut frame[HEADER_LEN..])
        .await
        .map_err(ReadError::Io)?;
    Frame::decode(&frame)
        .map(|(frame, _)| frame)
        .map_err(ReadError::Wire)
}

/// Writes one frame and flushes it.
pub(crate) async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &Frame,
) -> std::io::Result<()> {
    stream.write_all(&frame.encode()).await?;
    stream.flush().await
}
