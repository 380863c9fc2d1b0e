//! Reading and writing one `/braid/registry/1` frame on a stream. The header is read and
//! checked first, so a frame over its kind's limit costs 6 bytes; the body is then read as it
//! arrives (the buffer grows with the bytes received, not with what the header claims). No
//! timeouts here: callers bound every call.

use futures::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::protocol::{HEADER_LEN, Header, ProtocolError, decode_header};

/// The most bytes reserved before any body byte has arrived.
const INITIAL_BODY_CAPACITY: usize = 64 * 1024;

/// Why no frame was read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The stream failed or ended early.
    Io(std::io::Error),
    /// The header is not acceptable.
    Protocol(ProtocolError),
}

/// Reads and checks a frame header.
pub(crate) async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Header, ReadError> {
    let mut header = [0u8; HEADER_LEN];
    stream
        .read_exact(&mut header)
        .await
        .map_err(ReadError::Io)?;
    decode_header(&header).map_err(ReadError::Protocol)
}

/// Reads the body announced by `header` (already checked against its kind's limit).
pub(crate) async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    header: Header,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::with_capacity(header.body_len.min(INITIAL_BODY_CAPACITY));
    // body_len is at most MAX_BODY_LEN (about 32 MB): lossless.
    (&mut *stream)
        .take(header.body_len as u64)
        .read_to_end(&mut body)
        .await
        .map_err(ReadError::Io)?;
    if body.len() != header.body_len {
        return Err(ReadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(body)
}

/// Writes a whole frame and flushes it.
pub(crate) async fn write_frame<S: AsyncWrite + Unpin>(
    stream: &mut S,
    frame: &[u8],
) -> std::io::Result<()> {
    stream.write_all(frame).await?;
    stream.flush().await
}
