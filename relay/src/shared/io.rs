//! Buffered cell reading and writing on one circuit-hop stream.
//!
//! Reads and writes whole [`CELL_LEN`] cells through 64 KiB buffers. Writers flush only when
//! asked, so a forwarding loop can batch every cell that is already waiting and flush once.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

use crate::cell::{CELL_LEN, CELL_VERSION, Cell, CellKind};
use crate::error::RelayError;

/// Buffer size for each direction of a circuit-hop stream.
pub const IO_BUFFER: usize = 64 * 1024;

/// Reads whole cells.
#[derive(Debug)]
pub struct CellReader<R> {
    inner: BufReader<R>,
}

impl<R: AsyncRead + Unpin> CellReader<R> {
    /// Wraps a byte stream.
    pub fn new(r: R) -> Self {
        CellReader {
            inner: BufReader::with_capacity(IO_BUFFER, r),
        }
    }

    /// The next cell, or `None` on a clean end of stream at a cell boundary.
    ///
    /// The body is read straight into the cell (one copy out of the read buffer).
    pub async fn read(&mut self) -> Result<Option<Cell>, RelayError> {
        let io = |source| RelayError::Io {
            context: "reading a cell",
            source,
        };
        let mut head = [0u8; 2];
        let n = self.inner.read(&mut head).await.map_err(io)?;
        if n == 0 {
            return Ok(None);
        }
        if n == 1 {
            self.inner.read_exact(&mut head[1..]).await.map_err(io)?;
        }
        if head[0] != CELL_VERSION {
            return Err(crate::CellError::BadVersion(head[0]).into());
        }
        let mut cell = Cell::new(CellKind::from_byte(head[1]));
        self.inner
            .read_exact(&mut cell.body[..])
            .await
            .map_err(io)?;
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
}

impl<W: AsyncWrite + Unpin> CellWriter<W> {
    /// Wraps a byte sink.
    pub fn new(w: W) -> Self {
        CellWriter {
            inner: BufWriter::with_capacity(IO_BUFFER, w),
        }
    }

    /// Queues one cell (it may sit in the buffer until [`CellWriter::flush`]).
    pub async fn write(&mut self, cell: &Cell) -> Result<(), RelayError> {
        let io = |source| RelayError::Io {
            context: "writing a cell",
            source,
        };
        let head = [CELL_VERSION, cell.kind.to_byte()];
        self.inner.write_all(&head).await.map_err(io)?;
        self.inner.write_all(&cell.body[..]).await.map_err(io)
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
