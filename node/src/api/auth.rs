//! Cookie authentication for the local API: a 32-byte random token written as hex to
//! `data_dir/api_token` (mode 0600, atomically, anew at each start), checked in constant time
//! on every request, and the per-key rate limit. Not here: which routes exist.
//!
//! The token is taken from `Authorization: Bearer <token>`, and on `/` and `/v1/events` only
//! also from `?token=` (a page link and a browser's `EventSource` cannot set headers). It is
//! never logged: the server logs only the token file's path.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ratelimit::Key;
use super::{ApiState, error};
use crate::error::NodeError;

/// Routes that accept the token as `?token=` as well as in the header.
const QUERY_TOKEN_PATHS: [&str; 2] = ["/", "/v1/events"];

/// The accepted token, kept as its BLAKE3 hash: comparing two `blake3::Hash` values is
/// constant time, and hashing first makes the comparison independent of the given length.
pub(crate) struct Token {
    hash: blake3::Hash,
    /// Tells rate-limit buckets apart without keeping the token (the hash's first bytes).
    key: [u8; 8],
}

impl Token {
    pub(crate) fn new(token: &str) -> Self {
        let hash = blake3::hash(token.trim().as_bytes());
        let mut key = [0u8; 8];
        key.copy_from_slice(&hash.as_bytes()[..8]);
        Token { hash, key }
    }

    /// Whether `given` is the token (constant time in the token's bytes).
    pub(crate) fn matches(&self, given: &str) -> bool {
        blake3::hash(given.as_bytes()) == self.hash
    }
}

/// A fresh token: 32 random bytes as 64 hex digits.
pub(crate) fn new_token() -> String {
    // `rand::random` draws from the thread's CSPRNG, seeded from the OS.
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

/// Writes a fresh token to `path` (0600, atomically) and returns it.
pub(crate) fn write_token_file(path: &Path) -> Result<String, NodeError> {
    let token = new_token();
    write_atomic(path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Writes `bytes` to `path` through a temporary file created 0600 and renamed over it, so a
/// reader sees the old file or the whole new one, and nobody but the owner ever can read it.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), NodeError> {
    let io = |what: &str, source| NodeError::Io {
        context: format!("{what} {}", path.display()),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(bytes).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| io("renaming over", e))?;
    Ok(())
}

/// The token a request carries, if any.
fn given_token(req: &Request) -> Option<String> {
    let header_token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    if header_token.is_some() {
        return header_token;
    }
    if !QUERY_TOKEN_PATHS.contains(&req.uri().path()) {
        return None;
    }
    req.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_string())
    })
}

/// The middleware in front of every route: rate limit per key (the token's, or one shared
/// bucket for every request without a valid token), then the token unless the route is
/// opened by config.
pub(crate) async fn guard(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let inner = &state.inner;
    let authorized = given_token(&req).is_some_and(|t| inner.token.matches(&t));
    let key = match authorized {
        true => Key::Token(inner.token.key),
        false => Key::Anonymous,
    };
    let allowed = inner
        .limiter
        .lock()
        .map(|mut l| l.allow(key, Instant::now()))
        .unwrap_or(false);
    if !allowed {
        let mut resp = error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return resp;
    }
    let path = req.uri().path();
    let open = (path == "/v1/health" && inner.config.open_health)
        || (path == "/metrics" && inner.config.open_metrics);
    if !authorized && !open {
        return (
            [(header::WWW_AUTHENTICATE, "Bearer")],
            error(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token (see the node's data_dir/api_token)",
            ),
        )
            .into_response();
    }
    next.run(req).await
}
