//! The local HTTP API every node serves (axum, HTTP/1, loopback by default): health, version,
//! status, circuits, a server-sent event stream of traffic samples, the status page at `/`,
//! and `/metrics` when the node provides a metrics text.
//!
//! Every route needs `Authorization: Bearer <token>` (cookie authentication: the token is
//! written to `data_dir/api_token`, 0600, anew at each start), except `/v1/health` and
//! `/metrics` when the config opens them. The page and the event stream (a browser's
//! `EventSource` cannot set headers) also take `?token=`. Each key is rate limited.
//!
//! Routes come in groups ([`router`] merges them); a later group (the data plane's `/v1/kv`)
//! is one more `.merge(...)`. The node's numbers come from a [`StatusSource`] each role
//! implements; this module knows no role. Not here: what a role counts (its node module) and
//! the metrics themselves (the metrics module hands a text function to
//! [`ApiServer::set_metrics`]).

mod auth;
pub mod client;
mod events;
mod page;
mod ratelimit;
mod status;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::info;

pub use status::{
    AccountingInfo, CircuitInfo, DirectoryInfo, RaftInfo, RegistriesInfo, Sample, Status,
    StatusSource,
};

use crate::config::ApiConfig;
use crate::error::NodeError;

/// The file in the data dir holding the API's bound address (`127.0.0.1:PORT`).
pub const API_ADDR_FILE: &str = "api.addr";
/// The file in the data dir holding the API's bearer token (64 hex digits, mode 0600).
pub const API_TOKEN_FILE: &str = "api_token";
/// Server-sent event streams (`/v1/events`) served at once; more answer 503.
pub const MAX_SSE_CLIENTS: usize = 8;
/// Between two traffic samples (and two events of `/v1/events`).
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// The content type of `/metrics` (OpenMetrics text).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Makes the metrics text `/metrics` serves.
pub type MetricsFn = Arc<dyn Fn() -> String + Send + Sync>;

/// What every route handler shares: settings, token, the node's status source, the latest
/// traffic sample, the metrics slot. Cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    config: ApiConfig,
    token: auth::Token,
    source: Arc<dyn StatusSource>,
    metrics: RwLock<Option<MetricsFn>>,
    limiter: Mutex<ratelimit::RateLimiter>,
    samples: watch::Receiver<Sample>,
    sampler: watch::Sender<Sample>,
    sse_slots: Arc<Semaphore>,
    started: Instant,
    /// Set on shutdown: event streams end.
    stop: watch::Sender<bool>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    /// State for a server with `config`, accepting `token` (64 hex digits), reading numbers
    /// from `source`. No sampler runs until [`ApiServer::start`] (or [`ApiState::sample_now`]).
    pub fn new(config: ApiConfig, token: &str, source: Arc<dyn StatusSource>) -> Self {
        let (sampler, samples) = watch::channel(Sample::default());
        let limiter = ratelimit::RateLimiter::new(config.requests_per_sec, config.burst);
        ApiState {
            inner: Arc::new(Inner {
                token: auth::Token::new(token),
                config,
                source,
                metrics: RwLock::new(None),
                limiter: Mutex::new(limiter),
                samples,
                sampler,
                sse_slots: Arc::new(Semaphore::new(MAX_SSE_CLIENTS)),
                started: Instant::now(),
                stop: watch::channel(false).0,
            }),
        }
    }

    /// Serves `GET /metrics` with `text()` from now on (404 until set).
    pub fn set_metrics(&self, text: MetricsFn) {
        if let Ok(mut m) = self.inner.metrics.write() {
            *m = Some(text);
        }
    }

    /// Takes one traffic sample now (rates against the previous one).
    pub fn sample_now(&self) {
        let (bytes_in, bytes_out) = self.inner.source.traffic();
        let circuits_open = self.inner.source.circuits_open();
        let now = Instant::now();
        self.inner.sampler.send_modify(|prev| {
            *prev = prev.next(now, self.inner.started, bytes_in, bytes_out, circuits_open);
        });
    }

    /// The node's status now, with version, uptime and the latest traffic sample.
    pub fn status(&self) -> Status {
        let mut s = self.inner.source.status();
        s.version = env!("CARGO_PKG_VERSION").into();
        s.commit = GIT_COMMIT.into();
        s.uptime_secs = self.inner.started.elapsed().as_secs();
        s.traffic = self.inner.samples.borrow().clone();
        s
    }
}

/// The git commit the binary was built from (`unknown` without git at build time).
pub const GIT_COMMIT: &str = env!("BRAID_GIT_COMMIT");

/// The whole API: every route group behind authentication and rate limiting.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(info_routes())
        .merge(events::routes())
        .merge(page::routes())
        .merge(metrics_routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .with_state(state)
}

/// `/v1/health`, `/v1/version`, `/v1/status`, `/v1/circuits`.
fn info_routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/version", get(version))
        .route("/v1/status", get(status_route))
        .route("/v1/circuits", get(circuits))
}

/// `/metrics`.
fn metrics_routes() -> Router<ApiState> {
    Router::new().route("/metrics", get(metrics))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true }))
}

async fn version() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "commit": GIT_COMMIT,
    }))
}

async fn status_route(State(state): State<ApiState>) -> Json<Status> {
    Json(state.status())
}

async fn circuits(State(state): State<ApiState>) -> Response {
    match state.inner.source.circuits() {
        Some(list) => Json(serde_json::json!({ "circuits": list })).into_response(),
        None => error(StatusCode::NOT_FOUND, "this node builds no circuits"),
    }
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let text = state
        .inner
        .metrics
        .read()
        .ok()
        .and_then(|m| m.as_ref().map(|f| f()));
    match text {
        Some(body) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response(),
        None => error(StatusCode::NOT_FOUND, "no metrics on this node"),
    }
}

/// A short JSON error: `{"error": "..."}`.
pub(crate) fn error(code: StatusCode, message: &str) -> Response {
    (code, Json(serde_json::json!({ "error": message }))).into_response()
}

/// A running API server.
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    state: ApiState,
    tasks: Vec<JoinHandle<()>>,
    token_file: PathBuf,
}

impl ApiServer {
    /// Binds `cfg.listen`, writes a fresh token to `data_dir/api_token` (0600) and the bound
    /// address to `data_dir/api.addr`, starts sampling `source` every [`SAMPLE_INTERVAL`] and
    /// serves [`router`].
    pub async fn start(
        cfg: &ApiConfig,
        data_dir: &Path,
        source: Arc<dyn StatusSource>,
    ) -> Result<ApiServer, NodeError> {
        crate::config::Validate::validate(cfg, Path::new("<api config>"))?;
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| NodeError::Io {
                context: format!("binding the API port {}", cfg.listen),
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Io {
            context: "reading the API address".into(),
            source,
        })?;
        let token_file = data_dir.join(API_TOKEN_FILE);
        let token = auth::write_token_file(&token_file)?;
        auth::write_atomic(
            &data_dir.join(API_ADDR_FILE),
            format!("{addr}\n").as_bytes(),
        )?;
        let state = ApiState::new(cfg.clone(), &token, source);
        let mut stop = state.inner.stop.subscribe();
        let app = router(state.clone());
        let serve = tokio::spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await;
        });
        let sampler_state = state.clone();
        let sampler = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sampler_state.sample_now();
            }
        });
        info!(api = %addr, token_file = %token_file.display(), "local API listening");
        Ok(ApiServer {
            addr,
            state,
            tasks: vec![serve, sampler],
            token_file,
        })
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token file.
    pub fn token_file(&self) -> &Path {
        &self.token_file
    }

    /// Its shared state (e.g. to set the metrics text).
    pub fn state(&self) -> &ApiState {
        &self.state
    }

    /// Serves `GET /metrics` with `text()` from now on.
    pub fn set_metrics(&self, text: MetricsFn) {
        self.state.set_metrics(text);
    }

    /// Stops serving: open requests finish, event streams end, no new connection.
    pub fn shutdown(&self) {
        // Event streams watch this too, so the graceful shutdown does not wait for them.
        self.state.inner.stop.send_replace(true);
        for t in self.tasks.iter().skip(1) {
            t.abort();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown();
        for t in &self.tasks {
            t.abort();
        }
    }
}
