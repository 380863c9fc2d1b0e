//! Reading and writing one `/braid/raft/1` frame on a stream. The header is checked before the
//! body is read, so an oversized or foreign frame costs six bytes of buffer; the body buffer is
//! at most the caller's limit. No timeouts here: callers bound every call.

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use super::frame::{Frame, FrameError, HEADER_LEN, parse_header};

/// Why no frame was read.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    /// The stream failed or ended before a whole frame arrived.
    #[error("stream error while reading a raft frame: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a valid frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Reads exactly one frame with a body of at most `max_body` bytes.
pub(super) async fn read_frame<S: AsyncRead + Unpin>(
    stream: &mut S,
    max_body: usize,
) -> Result<Frame, ReadError> {
    let mut header = [0u8; HEADER_LEN];
    stream.read_exact(&mut header).await?;
    let (kind, len) = parse_header(&header, max_body)?;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(Frame::from_parts(kind, body)?)
}

/// Writes one frame and flushes it.
pub(super) async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &Frame,
) -> std::io::Result<()> {
    stream.write_all(&frame.encode()).await?;
    stream.flush().await
}
