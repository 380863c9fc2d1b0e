//! The relay's side of publishing: [`publish`] sends its signed descriptor to the registries in
//! random order until one lists it, and [`Republisher`] does that now and then every
//! `republish_interval` with a freshly signed descriptor, so the relay stays listed (a relay
//! that stops republishing drops out when its descriptor expires). The transport must be the
//! relay's own: a registry takes a descriptor only from the peer it describes.

use std::sync::Arc;
use std::time::Duration;

use braid_directory::SignedDescriptor;
use braid_transport::{PeerId, Transport};
use rand::seq::SliceRandom as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::exchange::exchange;
use super::{Registries, RepublishSettings, ServiceError, unix_now};
use crate::protocol::{Request, Response};
use crate::repeat::{FailureLog, Report};

/// Publishes `descriptor` to the registries, in random order, until one answers `Published`
/// (each exchange bounded by `timeout`; a registry dials the relay back first). Returns the
/// registry that listed it, or [`ServiceError::PublishFailed`] listing why each one did not.
pub async fn publish(
    transport: &Transport,
    registries: &Registries,
    descriptor: &SignedDescriptor,
    timeout: Duration,
) -> Result<PeerId, ServiceError> {
    registries.add_addresses_to(transport).await?;
    let mut order: Vec<PeerId> = registries.peers().iter().map(|p| p.peer_id).collect();
    order.shuffle(&mut rand::rng());
    let request = Request::Publish(descriptor.clone());
    let mut attempts = Vec::with_capacity(order.len());
    let mut answered = false;
    for peer in order {
        match exchange(transport, peer, &request, timeout).await {
            Ok(Response::Published) => return Ok(peer),
            Ok(other) => {
                answered = true;
                attempts.push(format!("{peer}: answered kind {:#04x}", other.kind()));
            }
            Err(e) => {
                answered |= matches!(e, ServiceError::Refused { .. });
                attempts.push(e.to_string());
            }
        }
    }
    Err(ServiceError::PublishFailed { attempts, answered })
}

/// How the last publish went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublishStatus {
    /// Nothing tried yet.
    NotYet,
    /// Listed by `registry` at `at` (unix seconds).
    Published {
        /// When.
        at: u64,
        /// Which registry listed it.
        registry: PeerId,
    },
    /// Every registry refused or failed at `at`; `error` says why for each.
    Failed {
        /// When.
        at: u64,
        /// The error text.
        error: String,
    },
}

/// The first retry after a failed publish; each next one waits twice as long, up to the
/// settings' `retry_interval`.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);

/// A publish failure that repeats is logged at most this often (with a count).
const PUBLISH_FAILURE_LOG: Duration = Duration::from_secs(60);

/// Makes a freshly signed descriptor at `now` (unix seconds) for each publish.
pub type DescriptorSource =
    Arc<dyn Fn(u64) -> Result<SignedDescriptor, braid_directory::Error> + Send + Sync + 'static>;

/// Keeps a relay listed: publishes now, then every `republish_interval` (after a failure:
/// again after 1 s, doubling up to `retry_interval`). While no registry can be reached before
/// the first success, they are most likely still starting: that is said once at info
/// ("waiting for registries") and retried quietly; a refusal, or any failure after a success,
/// is logged at warn, a repeated one at most once a minute with a count. Dropping it (or `stop`) ends it.
pub struct Republisher {
    task: JoinHandle<()>,
    status: watch::Receiver<PublishStatus>,
}

impl Republisher {
    /// Starts republishing, on the relay's own `transport`, the descriptors `make` signs.
    pub fn start(
        transport: Transport,
        registries: Registries,
        make: DescriptorSource,
        settings: RepublishSettings,
    ) -> Result<Self, ServiceError> {
        settings.validate()?;
        let (sender, status) = watch::channel(PublishStatus::NotYet);
        let task = tokio::spawn(async move {
            let mut failures = FailureLog::new(PUBLISH_FAILURE_LOG);
            let mut published = false;
            let mut said_waiting = false;
            let mut backoff = FIRST_RETRY;
            loop {
                let now = unix_now();
                let result = match make(now) {
                    Ok(descriptor) => {
                        publish(
                            &transport,
                            &registries,
                            &descriptor,
                            settings.request_timeout,
                        )
                        .await
                    }
                    Err(e) => Err(ServiceError::Registries {
                        reason: format!("the relay's descriptor could not be signed: {e}"),
                    }),
                };
                let wait = match result {
                    Ok(registry) => {
                        info!(%registry, "relay descriptor published");
                        sender.send_replace(PublishStatus::Published { at: now, registry });
                        published = true;
                        let _ = failures.success();
                        backoff = FIRST_RETRY;
                        settings.republish_interval
                    }
                    Err(error) => {
                        // No registry reachable yet before the first success: they are most
                        // likely starting. A refusal is news whenever it comes.
                        let waiting = !published
                            && matches!(
                                error,
                                ServiceError::PublishFailed {
                                    answered: false,
                                    ..
                                }
                            );
                        if waiting {
                            if !said_waiting {
                                info!(
                                    "waiting for registries (publishing again quietly until \
                                     one answers): {error}"
                                );
                                said_waiting = true;
                            } else {
                                debug!("relay descriptor not published: {error}");
                            }
                        } else {
                            match failures.failure(std::time::Instant::now()) {
                                Report::First => warn!("relay descriptor not published: {error}"),
                                Report::Again { count, over } => warn!(
                                    "relay descriptor not published ({count} failures in {} s): \
                                     {error}",
                                    over.as_secs()
                                ),
                                _ => debug!("relay descriptor not published: {error}"),
                            }
                        }
                        sender.send_replace(PublishStatus::Failed {
                            at: now,
                            error: error.to_string(),
                        });
                        let wait = backoff.min(settings.retry_interval);
                        backoff = backoff.saturating_mul(2);
                        wait
                    }
                };
                tokio::time::sleep(wait).await;
            }
        });
        Ok(Self { task, status })
    }

    /// A receiver of the last outcome.
    pub fn status(&self) -> watch::Receiver<PublishStatus> {
        self.status.clone()
    }

    /// Stops republishing (the descriptor stays listed until it expires).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Republisher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for Republisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Republisher").finish_non_exhaustive()
    }
}
