//! The local HTTP API's settings, shared by the relay, proxy and registry configs: each has the
//! same flat `api_*` keys (`api_listen`, `api_allow_remote`, `api_open_health`,
//! `api_open_metrics`, `api_requests_per_sec`, `api_burst`) and turns them into an
//! [`ApiConfig`] with its `api()` method.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Validate, bad, positive};
use crate::error::NodeError;

/// Most requests per second a config may allow one key.
pub const MAX_API_REQUESTS_PER_SEC: u32 = 100_000;

/// Settings of a node's local HTTP API (`braid_node::api`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where the API listens. Port 0 picks a free port; the bound address is written to
    /// `data_dir/api.addr`.
    pub listen: SocketAddr,
    /// Allow a non-loopback `listen` address (the token still guards every route).
    pub allow_remote: bool,
    /// Serve `GET /v1/health` without the token.
    pub open_health: bool,
    /// Serve `GET /metrics` without the token.
    pub open_metrics: bool,
    /// Requests per second allowed per bearer key (and for all unauthenticated requests
    /// together); more answer 429.
    pub requests_per_sec: u32,
    /// Requests allowed at once after an idle spell (the bucket's size).
    pub burst: u32,
}

/// Default API address: loopback, a free port chosen at start, so many nodes on one machine
/// never clash.
pub fn default_api_listen() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}
/// Default: the API refuses a non-loopback address.
pub fn default_api_allow_remote() -> bool {
    false
}
/// Default: `/v1/health` needs the token.
pub fn default_api_open_health() -> bool {
    false
}
/// Default: `/metrics` needs the token.
pub fn default_api_open_metrics() -> bool {
    false
}
/// Default rate per key: 50 requests per second (the status page makes about 1).
pub fn default_api_requests_per_sec() -> u32 {
    50
}
/// Default burst per key: 100 requests.
pub fn default_api_burst() -> u32 {
    100
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: default_api_listen(),
            allow_remote: default_api_allow_remote(),
            open_health: default_api_open_health(),
            open_metrics: default_api_open_metrics(),
            requests_per_sec: default_api_requests_per_sec(),
            burst: default_api_burst(),
        }
    }
}

impl Validate for ApiConfig {
    /// Errors name the flat keys (`api_listen` ...) the node configs use.
    fn validate(&self, path: &Path) -> Result<(), NodeError> {
        if !self.listen.ip().is_loopback() && !self.allow_remote {
            return Err(bad(
                path,
                "api_listen",
                format!(
                    "{} is not a loopback address; the API shows the node's state to anyone \
                     who holds its token: set api_allow_remote = true to serve it there anyway",
                    self.listen
                ),
            ));
        }
        positive(path, "api_requests_per_sec", self.requests_per_sec.into())?;
        if self.requests_per_sec > MAX_API_REQUESTS_PER_SEC {
            return Err(bad(path, "api_requests_per_sec", "at most 100000"));
        }
        positive(path, "api_burst", self.burst.into())?;
        Ok(())
    }
}

/// Builds an [`ApiConfig`] from a config's flat `api_*` fields.
macro_rules! api_config_of {
    ($cfg:expr) => {
        $crate::config::ApiConfig {
            listen: $cfg.api_listen,
            allow_remote: $cfg.api_allow_remote,
            open_health: $cfg.api_open_health,
            open_metrics: $cfg.api_open_metrics,
            requests_per_sec: $cfg.api_requests_per_sec,
            burst: $cfg.api_burst,
        }
    };
}
pub(crate) use api_config_of;
