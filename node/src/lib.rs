#![doc = include_str!("../README.md")]

pub mod api;
pub mod config;
pub mod error;
pub mod keys;
pub mod metrics;
pub mod proxy_node;
pub mod registry_node;
pub mod relay_node;

pub use config::{ProxyConfig, RelayConfig, load_config};
pub use error::NodeError;
pub use metrics::NodeMetrics;
pub use proxy_node::ProxyNode;
pub use registry_node::RegistryNode;
pub use relay_node::RelayNode;
