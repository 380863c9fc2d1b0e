//! The registry's reachability test of a publishing relay: every address the descriptor claims
//! is dialed with `dialback::probe` (a fresh identity, a new connection to exactly that
//! address, which must prove the relay's key), with a bound on probes at once and a short cache
//! of results so that a relay publishing to several registries, or republishing, is not dialed
//! each time. It does not decide what is listed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use braid_transport::dialback::{self, Verdict};
use braid_transport::{Multiaddr, PeerId};
use futures::future::join_all;
use tokio::sync::Semaphore;
use tracing::debug;

use super::RegistrySettings;
use crate::protocol::{Refusal, RefuseCode};

/// One cached probe result.
struct Entry {
    at: Instant,
    reachable: bool,
    reason: String,
}

/// Probes relays' claimed addresses, a bounded number at once, caching results briefly.
pub(crate) struct Reachability {
    probes: Arc<Semaphore>,
    cache: Mutex<HashMap<(PeerId, Multiaddr), Entry>>,
    probe_timeout: Duration,
    queue_timeout: Duration,
    ttl: Duration,
    max_entries: usize,
}

impl Reachability {
    pub(crate) fn new(settings: &RegistrySettings) -> Self {
        Self {
            probes: Arc::new(Semaphore::new(settings.max_concurrent_probes)),
            cache: Mutex::new(HashMap::new()),
            probe_timeout: settings.probe_timeout,
            queue_timeout: settings.probe_queue_timeout,
            ttl: settings.probe_cache_ttl,
            max_entries: settings.probe_cache_entries,
        }
    }

    /// `Ok` if `peer` answered at every one of `addresses` (text multiaddrs from its
    /// descriptor); otherwise the refusal naming the first address that failed.
    pub(crate) async fn check(&self, peer: PeerId, addresses: &[String]) -> Result<(), Refusal> {
        let parsed = addresses
            .iter()
            .enumerate()
            .map(|(index, text)| {
                text.parse::<Multiaddr>().map_err(|e| {
                    Refusal::new(
                        RefuseCode::BadDescriptor,
                        format!("address {index} is not a multiaddr: {e}"),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let results = join_all(parsed.into_iter().map(|a| self.check_one(peer, a))).await;
        for (index, (reachable, reason)) in results.into_iter().enumerate() {
            debug!(%peer, index, reachable, "registry: reachability of a claimed address");
            if !reachable {
                let address = addresses.get(index).map(String::as_str).unwrap_or("?");
                return Err(Refusal::new(
                    RefuseCode::Unreachable,
                    format!("address {index} ({address}) did not answer a dial-back: {reason}"),
                ));
            }
        }
        Ok(())
    }

    async fn check_one(&self, peer: PeerId, address: Multiaddr) -> (bool, String) {
        let key = (peer, address);
        if let Some(hit) = self.cached(&key) {
            return hit;
        }
        let Ok(Ok(_permit)) =
            tokio::time::timeout(self.queue_timeout, Arc::clone(&self.probes).acquire_owned())
                .await
        else {
            // Busy is not a verdict about the relay: not cached.
            return (false, "registry busy: too many probes running".into());
        };
        let verdict = dialback::probe(peer, key.1.clone(), self.probe_timeout).await;
        let result = match verdict {
            Verdict::Reachable => (true, String::new()),
            other => (false, other.to_string()),
        };
        self.store(key, &result);
        result
    }

    fn cached(&self, key: &(PeerId, Multiaddr)) -> Option<(bool, String)> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(key)
            .filter(|e| e.at.elapsed() < self.ttl)
            .map(|e| (e.reachable, e.reason.clone()))
    }

    fn store(&self, key: (PeerId, Multiaddr), result: &(bool, String)) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= self.max_entries && !cache.contains_key(&key) {
            cache.retain(|_, e| e.at.elapsed() < self.ttl);
            if cache.len() >= self.max_entries {
                let oldest = cache
                    .iter()
                    .min_by_key(|(_, e)| e.at)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    cache.remove(&oldest);
                }
            }
        }
        cache.insert(
            key,
            Entry {
                at: Instant::now(),
                reachable: result.0,
                reason: result.1.clone(),
            },
        );
    }
}
