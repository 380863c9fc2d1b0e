//! The live side of a mapping: the handle that renews the lease at half its length and deletes
//! the mappings on shutdown. It does not decide anything: the schedule is [`RenewSchedule`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use igd_next::aio::Gateway;
use igd_next::aio::tokio::Tokio;
use igd_next::{AddPortError, RemovePortError};
use tracing::{debug, info};

use super::policy::RenewSchedule;
use super::{PortMapping, TimedOut, add_error_text, bounded};

/// The mappings [`PortMapper::map`](super::PortMapper::map) made: a task renews them at half the lease until
/// [`MappingHandle::remove`] deletes them. Dropping the handle stops the renewals (the gateway
/// then drops the mappings when the lease runs out).
#[derive(Debug)]
pub struct MappingHandle {
    pub(super) gateway: Box<Gateway<Tokio>>,
    pub(super) mappings: Vec<PortMapping>,
    /// The lease granted; 0 when the gateway only takes permanent leases.
    pub(super) lease_secs: u32,
    pub(super) description: String,
    pub(super) request_timeout: Duration,
    pub(super) renewal: Option<tokio::task::JoinHandle<()>>,
    /// Unix seconds of the last successful add or renewal (0: none yet), for metrics.
    pub(super) renewed_at: Arc<AtomicU64>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl MappingHandle {
    /// The mappings held.
    pub fn mappings(&self) -> &[PortMapping] {
        &self.mappings
    }

    /// The lease in seconds (0: the gateway only grants permanent mappings).
    pub fn lease_secs(&self) -> u32 {
        self.lease_secs
    }

    /// When the lease of the mappings runs out unless renewed (unix seconds): the last
    /// successful add or renewal plus the lease. `None` for a permanent lease or before any.
    pub fn lease_expires_at(&self) -> Option<u64> {
        let at = self.renewed_at.load(Ordering::Relaxed);
        (self.lease_secs != 0 && at != 0).then(|| at + u64::from(self.lease_secs))
    }

    /// The gateway's control address.
    pub fn gateway_addr(&self) -> SocketAddr {
        self.gateway.addr
    }

    /// Adds a mapping for the first time: a gateway that only takes permanent leases gets
    /// lease 0 from then on. Records it on success.
    pub(super) async fn add_first(&mut self, m: PortMapping) -> Result<(), String> {
        let first = add_once(
            &self.gateway,
            m,
            self.lease_secs,
            &self.description,
            self.request_timeout,
        )
        .await;
        let result = match first {
            Err(AddFailure::Gateway(AddPortError::OnlyPermanentLeasesSupported)) => {
                self.lease_secs = 0;
                add_once(&self.gateway, m, 0, &self.description, self.request_timeout).await
            }
            other => other,
        };
        result.map_err(|e| format!("{} port {}: {e}", m.protocol, m.external_port))?;
        self.renewed_at.store(unix_now(), Ordering::Relaxed);
        self.mappings.push(m);
        Ok(())
    }

    pub(super) fn start_renewal(&mut self, retries: u32) {
        if self.lease_secs == 0 {
            return;
        }
        let schedule = RenewSchedule::for_lease(self.lease_secs, retries);
        let gateway = Gateway::clone(&self.gateway);
        let mappings = self.mappings.clone();
        let renewed_at = self.renewed_at.clone();
        let (lease, desc, limit) = (
            self.lease_secs,
            self.description.clone(),
            self.request_timeout,
        );
        self.renewal = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(schedule.interval).await;
                let mut attempt = 0;
                loop {
                    match renew_all(&gateway, &mappings, lease, &desc, limit).await {
                        Ok(()) => {
                            renewed_at.store(unix_now(), Ordering::Relaxed);
                            debug!(lease, "UPnP lease renewed");
                            break;
                        }
                        Err(e) if attempt < schedule.retries => {
                            debug!(attempt, "UPnP renewal failed, retrying: {e}");
                            attempt += 1;
                            tokio::time::sleep(schedule.retry_gap).await;
                        }
                        Err(e) => {
                            info!(
                                "UPnP: renewing the mappings failed {} times, they lapse unless \
                                 the next renewal works: {e}",
                                attempt + 1
                            );
                            break;
                        }
                    }
                }
            }
        }));
    }

    /// Stops the renewals and deletes every mapping from the gateway, each within the request
    /// timeout. A mapping the gateway no longer holds counts as removed; other failures are
    /// logged at info (the lease removes them later).
    pub async fn remove(mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
        for m in std::mem::take(&mut self.mappings) {
            let del = self.gateway.remove_port(m.protocol.igd(), m.external_port);
            match bounded(self.request_timeout, del).await {
                Ok(Ok(())) | Ok(Err(RemovePortError::NoSuchPortMapping)) => {
                    debug!(protocol = %m.protocol, port = m.external_port, "UPnP mapping removed");
                }
                Ok(Err(e)) => info!(
                    "UPnP: removing {} port {} failed: {e}",
                    m.protocol, m.external_port
                ),
                Err(e) => info!(
                    "UPnP: removing {} port {}: {e}",
                    m.protocol, m.external_port
                ),
            }
        }
    }
}

impl Drop for MappingHandle {
    fn drop(&mut self) {
        if let Some(task) = self.renewal.take() {
            task.abort();
        }
    }
}

enum AddFailure {
    Gateway(AddPortError),
    Timeout(TimedOut),
}

impl fmt::Display for AddFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddFailure::Gateway(e) => f.write_str(&add_error_text(e)),
            AddFailure::Timeout(t) => t.fmt(f),
        }
    }
}

async fn add_once(
    gateway: &Gateway<Tokio>,
    m: PortMapping,
    lease: u32,
    description: &str,
    limit: Duration,
) -> Result<(), AddFailure> {
    let add = gateway.add_port(
        m.protocol.igd(),
        m.external_port,
        SocketAddr::V4(m.internal),
        lease,
        description,
    );
    match bounded(limit, add).await {
        Ok(result) => result.map_err(AddFailure::Gateway),
        Err(t) => Err(AddFailure::Timeout(t)),
    }
}

async fn renew_all(
    gateway: &Gateway<Tokio>,
    mappings: &[PortMapping],
    lease: u32,
    description: &str,
    limit: Duration,
) -> Result<(), String> {
    for &m in mappings {
        add_once(gateway, m, lease, description, limit)
            .await
            .map_err(|e| format!("{} port {}: {e}", m.protocol, m.external_port))?;
    }
    Ok(())
}
