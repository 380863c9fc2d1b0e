//! Buffered cell reading and writing on one circuit-hop stream.
//!
//! Reads and writes whole [`CELL_LEN`] cells through 64 KiB buffers. Writers flush only when
//! asked, so a forwarding loop can batch every cell that is already waiting and flush once.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::cell::{CELL_LEN, Cell};
use crate::error::RelayError;

/// Buffer size for each direction of a circuit-hop stream.
pub const IO_BUFFER: usize = 64 * 1024;

/// Reads whole cells.
#[derive(Debug)]
pub struct CellReader<R> {
    inner: BufReader<R>,
    buf: Box<[u8; CELL_LEN]>,
}

impl<R: AsyncRead + Unpin> CellReader<R> {
    /// Wraps a byte stream.
    pub fn new(r: R) -> Self {
        CellReader {
            inner: BufReader::with_capacity(IO_BUFFER, r),
            buf: Box::new([0u8; CELL_LEN]),
        }
    }

    /// The next cell, or `None` on a clean end of stream at a cell boundary.
    pub async fn read(&mut self) -> Result<Option<Cell>, RelayError> {
        let mut got = 0;
        while got < CELL_LEN {
            let n = self
                .inner
                .read(&mut self.buf[got..])
                .await
                .map_err(|source| RelayError::Io {
                    context: "reading a cell",
                    source,
                })?;
            if n == 0 {
                if got == 0 {
                    return Ok(None);
                }
                return Err(RelayError::Io {
                    context: "reading a cell",
                    source: std::io::ErrorKind::UnexpectedEof.into(),
                });
            }
            got += n;
        }
        let (cell, _) = Cell::decode(&self.buf[..])?;
        Ok(Some(cell))
    }

    /// Whether at least one more whole cell is already buffered (no waiting needed).
    pub fn has_buffered_cell(&self) -> bool {
        self.inner.buffer().len() >= CELL_LEN
    }
}

/// Writes whole cells.
#[derive(Debug)]
pub struct CellWriter<W> {
    inner: BufWriter<W>,
    buf: Box<[u8; CELL_LEN]>,
}

impl<W: AsyncWrite + Unpin> CellWriter<W> {
    /// Wraps a byte sink.
    pub fn new(w: W) -> Self {
        CellWriter {
            inner: BufWriter::with_capacity(IO_BUFFER, w),
            buf: Box::new([0u8; CELL_LEN]),
        }
    }

    /// Queues one cell (it may sit in the buffer until [`CellWriter::flush`]).
    pub async fn write(&mut self, cell: &Cell) -> Result<(), RelayError> {
        cell.encode_into(&mut self.buf);
        self.inner
            .write_all(&self.buf[..])
            .await
            .map_err(|source| RelayError::Io {
                context: "writing a cell",
                source,
            })
    }

    /// Writes one cell and flushes.
    pub async fn send(&mut self, cell: &Cell) -> Result<(), RelayError> {
        self.write(cell).await?;
        self.flush().await
    }

    /// Pushes buffered cells to the stream.
    pub async fn flush(&mut self) -> Result<(), RelayError> {
        self.inner.flush().await.map_err(|source| RelayError::Io {
            context: "flushing cells",
            source,
        })
    }

    /// Flushes and closes the write side.
    pub async fn close(&mut self) {
        let _ = self.inner.shutdown().await;
    }
}
