//! A minimal HTTP/1 client for a node's local API (hyper over one TCP connection, no TLS: the
//! API is on loopback), used by `braid status` and the tests. Not a general HTTP client.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use super::{API_ADDR_FILE, API_TOKEN_FILE};
use crate::error::NodeError;

/// How long one request may take, connect included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
pub const MAX_BODY: usize = 4 << 20;

/// An answer: the status code and the body as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: String,
}

fn io(context: String, source: std::io::Error) -> NodeError {
    NodeError::Io { context, source }
}

/// The API address a node wrote to `data_dir/api.addr`.
pub fn read_api_addr(data_dir: &Path) -> Result<SocketAddr, NodeError> {
    let path = data_dir.join(API_ADDR_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        io(
            format!(
                "reading {} (is the node running with this data dir?)",
                path.display()
            ),
            e,
        )
    })?;
    text.trim().parse().map_err(|e| NodeError::KeyFile {
        path,
        reason: format!("not an address: {e}"),
    })
}

/// The token in a token file (`data_dir/api_token`).
pub fn read_token(path: &Path) -> Result<String, NodeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io(format!("reading the API token {}", path.display()), e))?;
    Ok(text.trim().to_string())
}

/// The token file of a node's data dir.
pub fn token_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join(API_TOKEN_FILE)
}

/// `GET path` at `addr` with `token` as a bearer token (none: no header).
pub async fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<Answer, NodeError> {
    tokio::time::timeout(REQUEST_TIMEOUT, get_inner(addr, path, token))
        .await
        .map_err(|_| {
            io(
                format!("GET http://{addr}{path}"),
                std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer in 10 s"),
            )
        })?
}

async fn get_inner(addr: SocketAddr, path: &str, token: Option<&str>) -> Result<Answer, NodeError> {
    let what = || format!("GET http://{addr}{path}");
    let http = |e: hyper::Error| io(what(), std::io::Error::other(e));
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| {
        io(
            format!("connecting to the API at {addr} (is the node running?)"),
            e,
        )
    })?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(http)?;
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::get(path).header(hyper::header::HOST, addr.to_string());
    if let Some(t) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(Empty::<Bytes>::new())
        .map_err(|e| io(what(), std::io::Error::other(e)))?;
    let resp = sender.send_request(req).await.map_err(http)?;
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| io(what(), std::io::Error::other(e.to_string())))?
        .to_bytes();
    driver.abort();
    Ok(Answer {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
