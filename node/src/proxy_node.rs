//! A running SOCKS5 proxy: client-only transport + circuit manager + SOCKS server.

use std::net::SocketAddr;
use std::sync::Arc;

use braid_registry::Directory;
use braid_router::CircuitManager;
use braid_transport::{Identity, Transport, TransportConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::ProxyConfig;
use crate::error::NodeError;

/// A running proxy.
#[derive(Debug)]
pub struct ProxyNode {
    transport: Transport,
    manager: Arc<CircuitManager>,
    socks_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ProxyNode {
    /// Starts a proxy from its config: reads the directory file named there.
    pub async fn from_config(cfg: &ProxyConfig) -> Result<Self, NodeError> {
        let text = std::fs::read_to_string(&cfg.directory).map_err(|source| NodeError::Io {
            context: format!("reading directory {}", cfg.directory.display()),
            source,
        })?;
        let directory = Directory::from_text(&text)?;
        Self::start(cfg, &directory).await
    }

    /// Starts a proxy over `directory`. A fresh, unlinkable client identity is used every start.
    pub async fn start(cfg: &ProxyConfig, directory: &Directory) -> Result<Self, NodeError> {
        if !cfg.socks_listen.ip().is_loopback() {
            warn!("SOCKS5 port is not on loopback: anyone who can reach it can use your circuits");
        }
        let transport = Transport::start(
            Identity::generate(),
            TransportConfig {
                listen: Vec::new(),
                ..Default::default()
            },
        )
        .await?;
        let manager = Arc::new(CircuitManager::new(
            transport.clone(),
            cfg.router_settings(),
        ));
        let usable = manager.set_directory(directory).await?;
        if usable == 0 {
            warn!("the directory has no fresh relays; every stream will fail");
        }
        let listener = TcpListener::bind(cfg.socks_listen)
            .await
            .map_err(|source| NodeError::Io {
                context: format!("binding SOCKS5 port {}", cfg.socks_listen),
                source,
            })?;
        let socks_addr = listener.local_addr().map_err(|source| NodeError::Io {
            context: "reading the SOCKS5 address".into(),
            source,
        })?;
        let task = tokio::spawn(braid_router::proxy::serve(
            listener,
            manager.clone(),
            cfg.proxy_settings(),
        ));
        info!(%socks_addr, relays = usable, "SOCKS5 proxy ready");
        Ok(ProxyNode {
            transport,
            manager,
            socks_addr,
            task,
        })
    }

    /// Where apps connect.
    pub fn socks_addr(&self) -> SocketAddr {
        self.socks_addr
    }

    /// The circuit manager (for reports).
    pub fn manager(&self) -> &Arc<CircuitManager> {
        &self.manager
    }

    /// Stops serving, closes circuits, shuts the transport down.
    pub async fn shutdown(&self) {
        self.task.abort();
        self.manager.close_all();
        self.transport.shutdown().await;
    }
}
