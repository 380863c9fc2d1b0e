//! The thin tokio driver that runs a [`Handshake`] (or any [`ServerHandshake`], such as the
//! HTTP CONNECT one) over an accepted stream.
//!
//! It owns a bounded buffer, reads only as many bytes as the handshake asks for (so it never
//! reads past the request: bytes a client pipelines after it stay in the stream for the
//! circuit), writes the handshake's messages, and writes the final reply when told to. It applies
//! no timeout: the caller wraps [`accept`] in `tokio::time::timeout`. It holds no policy: that is
//! all in [`Handshake`].

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{
    Action, Handshake, ReplyCode, ServerHandshake, SocksError, SocksRequest, encode_reply,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests: a panic is the failure report
mod tests;

/// Runs the server handshake on `stream` until a CONNECT request is parsed, reading at most
/// `max_handshake_bytes` bytes in total ([`super::MAX_HANDSHAKE_LEN`] admits every valid
/// client).
///
/// On success the stream is positioned right after the request: the caller builds the stream
/// and then calls [`send_reply`]. On failure the reply the client expects (if any) has been
/// written and the write side shut down; the caller drops the stream.
pub async fn accept<S>(
    stream: &mut S,
    max_handshake_bytes: usize,
) -> Result<SocksRequest, SocksError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, Handshake::new(), max_handshake_bytes).await
}

/// Runs `handshake` on `stream` as [`accept`] runs the SOCKS handshake: the same byte limit,
/// the same reads of exactly what the handshake asks for, the same refusal on failure.
pub async fn accept_with<S, H>(
    stream: &mut S,
    mut handshake: H,
    max_handshake_bytes: usize,
) -> Result<SocksRequest, SocksError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    H: ServerHandshake,
{
    // Unconsumed bytes of the message being parsed; a message is at most 513 bytes, and the
    // buffer never holds more than `max_handshake_bytes`.
    let mut buf: Vec<u8> = Vec::new();
    let mut received = 0usize;
    loop {
        let (consumed, action) = handshake.handle(&buf);
        buf.drain(..consumed);
        match action {
            Action::NeedMore { at_least } => {
                let allowed = max_handshake_bytes.saturating_sub(received);
                if at_least > allowed {
                    return Err(SocksError::TooLong {
                        limit: max_handshake_bytes,
                    });
                }
                let start = buf.len();
                buf.resize(start + at_least, 0);
                let n = stream
                    .read(&mut buf[start..])
                    .await
                    .map_err(|source| SocksError::Io {
                        during: "reading the handshake",
                        source,
                    })?;
                buf.truncate(start + n);
                if n == 0 {
                    return Err(SocksError::Closed { received });
                }
                received += n;
            }
            Action::Send(bytes) => write(stream, &bytes, "writing a handshake message").await?,
            Action::Done(request) => return Ok(request),
            Action::Fail { reply, error } => {
                if let Some(bytes) = reply {
                    // The handshake has already failed; a failure to deliver the refusal adds
                    // nothing the caller could act on, so `error` is what is returned.
                    let _ = write(stream, &bytes, "writing a refusal").await;
                    let _ = stream.shutdown().await;
                }
                return Err(error);
            }
        }
    }
}

/// Writes the answer to `request` in the client's protocol ([`SocksRequest::reply`]).
pub async fn answer<S>(
    stream: &mut S,
    request: &SocksRequest,
    code: ReplyCode,
) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    stream.write_all(&request.reply(code)).await?;
    stream.flush().await
}

/// Writes a SOCKS5 reply to the parsed request: `code`, and the address the proxy's outbound
/// side is bound to (`0.0.0.0:0` when there is none to tell, as for a circuit stream).
pub async fn send_reply<S>(
    stream: &mut S,
    code: ReplyCode,
    bound: SocketAddr,
) -> std::io::Result<()>
where
    S: AsyncWrite + Unpin,
{
    stream.write_all(&encode_reply(code, bound)).await?;
    stream.flush().await
}

async fn write<S>(stream: &mut S, bytes: &[u8], during: &'static str) -> Result<(), SocksError>
where
    S: AsyncWrite + Unpin,
{
    let io = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    io.await.map_err(|source| SocksError::Io { during, source })
}
