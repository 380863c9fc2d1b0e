//! The directory feed of a proxy or relay: fetch the signed snapshot from any registry or
//! relay, verify it against the configured registry keys (`accept_newer`: majority of valid
//! signatures, every descriptor signed and fresh, not stale, newer than the one in use), keep
//! it fresh, and keep the last good one whenever a fetched one is bad, with one log line per
//! refusal. The current snapshot is published on a `tokio::sync::watch` channel. It does not
//! serve anything (a relay passes the receiver to [`RelayCache`](super::RelayCache)).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use braid_directory::snapshot::{VerifiedSnapshot, accept_newer};
use braid_transport::{PeerId, Transport};
use rand::seq::SliceRandom as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::exchange::exchange;
use super::registries::add_addresses;
use super::{FeedSettings, PeerAddresses, Registries, ServiceError, unix_now};
use crate::protocol::{Request, Response};
use crate::repeat::{FailureLog, Report};

/// The most extra sources (relays) a feed may be given besides the registries.
pub const MAX_EXTRA_SOURCES: usize = 64;

/// The feed's output: the snapshot in use (`None` until the first good one).
pub type SnapshotReceiver = watch::Receiver<Option<Arc<VerifiedSnapshot>>>;

/// What one fetch from one source gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A newer snapshot verified and is now in use.
    Accepted {
        /// Its `issued_at`.
        issued_at: u64,
        /// How many relays it lists.
        relays: usize,
    },
    /// The source has nothing newer than the snapshot in use.
    NotModified,
    /// The source holds no valid snapshot.
    Unavailable,
}

struct FeedCore {
    transport: Transport,
    registries: Registries,
    /// Registries first, then the extra sources; no peer twice.
    sources: Vec<PeerId>,
    settings: FeedSettings,
    sender: watch::Sender<Option<Arc<VerifiedSnapshot>>>,
    /// Serialises "compare with the current one, verify, replace".
    accepting: tokio::sync::Mutex<()>,
    /// One failure log per configured source (`sources`, so bounded by it): an unreachable
    /// registry is reported at once, then at most every [`SOURCE_FAILURE_LOG`] with a count.
    failures: std::sync::Mutex<HashMap<PeerId, FailureLog>>,
}

/// How soon a feed with `bootstrap_relays` asks again while the sources answer but hold no
/// snapshot, or one listing fewer relays than that.
pub(crate) const BOOTSTRAP_RETRY: Duration = Duration::from_secs(2);

/// How often a configured source that keeps failing is reported (with a count).
pub(crate) const SOURCE_FAILURE_LOG: Duration = Duration::from_secs(60);

/// A running directory feed. Dropping it (or `stop`) ends the refresh loop; receivers keep the
/// last value.
pub struct DirectoryFeed {
    core: Arc<FeedCore>,
    task: JoinHandle<()>,
}

impl DirectoryFeed {
    /// Starts fetching at once from the `registries` and up to [`MAX_EXTRA_SOURCES`]
    /// `extra_sources` (relays caching the snapshot), in random order, then every
    /// `refresh_interval` (every `retry_interval` while no good snapshot is held or a round
    /// failed).
    pub async fn start(
        transport: &Transport,
        registries: Registries,
        extra_sources: Vec<PeerAddresses>,
        settings: FeedSettings,
    ) -> Result<Self, ServiceError> {
        settings.validate()?;
        if extra_sources.len() > MAX_EXTRA_SOURCES {
            return Err(ServiceError::Config {
                field: "feed.extra_sources",
                reason: "at most 64 extra sources",
            });
        }
        registries.add_addresses_to(transport).await?;
        add_addresses(transport, &extra_sources).await?;
        let mut sources: Vec<PeerId> = registries.peers().iter().map(|p| p.peer_id).collect();
        for extra in &extra_sources {
            if !sources.contains(&extra.peer_id) {
                sources.push(extra.peer_id);
            }
        }
        let (sender, _) = watch::channel(None);
        let core = Arc::new(FeedCore {
            transport: transport.clone(),
            registries,
            sources,
            settings,
            sender,
            accepting: tokio::sync::Mutex::new(()),
            failures: std::sync::Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(run(Arc::clone(&core)));
        Ok(Self { core, task })
    }

    /// A receiver of the snapshot in use; it sees every replacement.
    pub fn subscribe(&self) -> SnapshotReceiver {
        self.core.sender.subscribe()
    }

    /// The snapshot in use now.
    pub fn current(&self) -> Option<Arc<VerifiedSnapshot>> {
        self.core.sender.borrow().clone()
    }

    /// Fetches from one configured source now (the loop does this by itself). A refused
    /// snapshot gives [`ServiceError::Snapshot`] and leaves the current one in use.
    pub async fn fetch_from(&self, source: PeerId) -> Result<FetchOutcome, ServiceError> {
        if !self.core.sources.contains(&source) {
            return Err(ServiceError::UnknownSource {
                peer: Box::new(source),
            });
        }
        fetch_from(&self.core, source).await
    }

    /// One round now: sources in random order until one gives a good snapshot or says
    /// nothing is newer.
    pub async fn refresh(&self) -> Result<FetchOutcome, ServiceError> {
        round(&self.core).await
    }

    /// Stops the refresh loop.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for DirectoryFeed {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl std::fmt::Debug for DirectoryFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryFeed")
            .field("sources", &self.core.sources.len())
            .finish_non_exhaustive()
    }
}

async fn run(core: Arc<FeedCore>) {
    loop {
        let outcome = round(&core).await;
        let good = matches!(
            outcome,
            Ok(FetchOutcome::Accepted { .. } | FetchOutcome::NotModified)
        );
        let current = core.sender.borrow().clone();
        if let Some(current) = &current
            && current.is_expired(unix_now())
        {
            warn!(
                valid_until = current.valid_until(),
                "directory snapshot in use has expired and no newer one was fetched"
            );
        }
        let forming = current
            .as_ref()
            .is_some_and(|c| c.descriptors().len() < core.settings.bootstrap_relays);
        let answered = outcome.is_ok();
        let bootstrapping = core.settings.bootstrap_relays > 0 && (forming || current.is_none());
        let wait = if good && current.is_some() && !forming {
            core.settings.refresh_interval
        } else if answered && bootstrapping {
            // The registries answer but have nothing (enough) yet: a network forming.
            core.settings.retry_interval.min(BOOTSTRAP_RETRY)
        } else {
            core.settings.retry_interval
        };
        tokio::time::sleep(wait).await;
    }
}

async fn round(core: &FeedCore) -> Result<FetchOutcome, ServiceError> {
    let mut order = core.sources.clone();
    for relay in relay_sources(core) {
        if !order.contains(&relay.peer_id) {
            // Relays are public; their addresses come from the verified snapshot.
            add_addresses(&core.transport, std::slice::from_ref(&relay)).await?;
            order.push(relay.peer_id);
        }
    }
    order.shuffle(&mut rand::rng());
    order.truncate(core.settings.max_sources_per_round);
    let mut last_error = None;
    for peer in order {
        match fetch_from(core, peer).await {
            Ok(outcome @ (FetchOutcome::Accepted { .. } | FetchOutcome::NotModified)) => {
                note_source(core, peer, None);
                return Ok(outcome);
            }
            Ok(FetchOutcome::Unavailable) => {
                note_source(core, peer, None);
                debug!(source = %peer, "directory source has no snapshot yet");
            }
            Err(error) => {
                // Snapshot refusals were logged where they happened. A configured source's
                // (a registry's) failure is logged with backoff; a relay source's may carry
                // addresses learnt from the directory: debug only.
                if !matches!(error, ServiceError::Snapshot { .. }) {
                    debug!("directory source failed: {error}");
                    note_source(core, peer, Some(&error));
                }
                last_error = Some(error);
            }
        }
    }
    last_error.map_or(Ok(FetchOutcome::Unavailable), Err)
}

/// Logs a configured source's failure (`Some`) or answer (`None`) with backoff.
fn note_source(core: &FeedCore, peer: PeerId, error: Option<&ServiceError>) {
    if !core.sources.contains(&peer) {
        return;
    }
    let mut failures = core.failures.lock().unwrap_or_else(PoisonError::into_inner);
    let log = failures
        .entry(peer)
        .or_insert_with(|| FailureLog::new(SOURCE_FAILURE_LOG));
    let report = match error {
        Some(_) => log.failure(Instant::now()),
        None => log.success(),
    };
    match (error, report) {
        (Some(error), Report::First) => {
            warn!(source = %peer, "directory source unreachable: {error}");
        }
        (Some(error), Report::Again { count, over }) => warn!(
            source = %peer,
            "directory source unreachable ({count} failures in {} s): {error}",
            over.as_secs()
        ),
        (None, Report::Recovered { failures }) => {
            info!(source = %peer, failures, "directory source reached again");
        }
        _ => {}
    }
}

/// Up to `relay_sources` relays of the snapshot in use, chosen at random, with their addresses.
fn relay_sources(core: &FeedCore) -> Vec<PeerAddresses> {
    let wanted = core.settings.relay_sources;
    let Some(current) = core.sender.borrow().clone() else {
        return Vec::new();
    };
    if wanted == 0 {
        return Vec::new();
    }
    let mut relays: Vec<PeerAddresses> = current
        .descriptors()
        .iter()
        .filter_map(|d| {
            let peer_id = braid_transport::peer_id_from_public(d.identity()).ok()?;
            let addresses = d
                .descriptor()
                .addresses
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect();
            Some(PeerAddresses { peer_id, addresses })
        })
        .collect();
    relays.shuffle(&mut rand::rng());
    relays.truncate(wanted);
    relays
}

async fn fetch_from(core: &FeedCore, peer: PeerId) -> Result<FetchOutcome, ServiceError> {
    let newer_than = core.sender.borrow().as_ref().map_or(0, |s| s.issued_at());
    let request = Request::GetSnapshot { newer_than };
    let timeout = core.settings.request_timeout;
    let signed = match exchange(&core.transport, peer, &request, timeout).await {
        Ok(Response::Snapshot(signed)) => signed,
        Ok(Response::NotModified) => return Ok(FetchOutcome::NotModified),
        Ok(Response::Unavailable) => return Ok(FetchOutcome::Unavailable),
        Ok(other) => {
            return Err(ServiceError::Unexpected {
                peer: Box::new(peer),
                what: format!("answer kind {:#04x} to GetSnapshot", other.kind()),
            });
        }
        Err(ServiceError::Protocol { peer, source }) => {
            warn!(source = %peer, "directory snapshot refused, keeping the last good one: {source}");
            return Err(ServiceError::Protocol { peer, source });
        }
        Err(error) => return Err(error),
    };
    let _accepting = core.accepting.lock().await;
    let current = core.sender.borrow().clone();
    let set = core.registries.set().clone();
    let now = unix_now();
    let bytes = signed.encode();
    let kept = current.as_ref().map(|c| c.issued_at());
    let checked =
        tokio::task::spawn_blocking(move || accept_newer(current.as_deref(), &bytes, &set, now))
            .await
            .map_err(|e| ServiceError::Unexpected {
                peer: Box::new(peer),
                what: format!("verification task failed: {e}"),
            })?;
    match checked {
        Ok(verified) => {
            let outcome = FetchOutcome::Accepted {
                issued_at: verified.issued_at(),
                relays: verified.descriptors().len(),
            };
            info!(
                source = %peer,
                issued_at = verified.issued_at(),
                relays = verified.descriptors().len(),
                signers = verified.signers().len(),
                "directory snapshot accepted"
            );
            core.sender.send_replace(Some(Arc::new(verified)));
            Ok(outcome)
        }
        Err(source) => {
            match kept {
                Some(issued_at) => warn!(
                    source = %peer,
                    kept_issued_at = issued_at,
                    "directory snapshot refused, keeping the last good one: {source}"
                ),
                None => warn!(
                    source = %peer,
                    "directory snapshot refused, none in use yet: {source}"
                ),
            }
            Err(ServiceError::Snapshot {
                peer: Box::new(peer),
                source,
            })
        }
    }
}
