//! The registry's reachability test of a relay: every address its descriptor claims is
//! dialed with `dialback::probe` (a fresh identity, a new connection to exactly that address,
//! which must prove the relay's key), with a bound on probes at once and a short cache of
//! results so that a relay publishing to several registries, or republishing, is not dialed
//! each time. It does not decide what is listed.
//!
//! Two entry points, because only one of them knows who asked:
//!
//! - [`Reachability::check_publisher`]: a publish that arrived on the relay's own connection
//!   to this registry. The connection's remote IPs are the source: an address is dialed only
//!   when its IP is one of them (IPv6: the same /64; the rule of `dialback::policy`, shared
//!   with the relays' dial-back server), so a publish cannot aim the registry at a third
//!   party. Per source (IPv4 address or IPv6 /64): a token bucket of publishes
//!   (`publish_burst`, one more per `publish_refill`, a table of `publish_sources`) and one
//!   publish checked at a time, whose addresses are probed one after the other, so a source
//!   with black-holed addresses holds at most one probe slot and the others queue fairly
//!   (tokio's semaphore is first-in first-out).
//! - [`Reachability::check_listed`]: re-checking a descriptor some registry already accepted
//!   (no source connection, so no IP match).
//!
//! Both refuse non-public addresses (`dialback::policy::is_public`: private, loopback,
//! link-local, shared, unique-local, multicast, documentation ...) unless
//! `allow_private_addresses` (test networks, the simulator). The publisher hears only a
//! generic "address N is not reachable from this registry": whether the address was refused
//! unseen or dialed, and what a dial found there, goes to this registry's debug log only, so
//! a registry cannot be used as a port scanner that reads verdicts back.

mod limits;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use braid_transport::dialback::policy::{AdmitRules, admit_with};
use braid_transport::dialback::{self, Verdict};
use braid_transport::{Multiaddr, PeerId};
use tokio::sync::Semaphore;
use tracing::debug;

use super::RegistrySettings;
use crate::protocol::{Refusal, RefuseCode};
use limits::{Limited, PublishLimits, source_key};

/// One cached probe result.
struct Entry {
    at: Instant,
    reachable: bool,
}

/// What one address came to.
enum Outcome {
    Reachable,
    /// Not dialed (policy) or dialed and not answered: the reason is for the debug log.
    NotReachable(String),
    /// No probe slot in time: not about the relay.
    Busy,
}

/// Probes relays' claimed addresses, a bounded number at once, caching results briefly.
pub(crate) struct Reachability {
    probes: Arc<Semaphore>,
    cache: Mutex<HashMap<(PeerId, Multiaddr), Entry>>,
    limits: Mutex<PublishLimits>,
    probe_timeout: Duration,
    queue_timeout: Duration,
    ttl: Duration,
    max_entries: usize,
    allow_private: bool,
}

/// The one text a publisher hears about an address that was not confirmed.
fn not_reachable(index: usize) -> Refusal {
    Refusal::new(
        RefuseCode::Unreachable,
        format!("address {index} is not reachable from this registry"),
    )
}

/// Marks a source's publish as checked when dropped.
struct Checking<'a> {
    limits: &'a Mutex<PublishLimits>,
    keys: Vec<IpAddr>,
}

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        self.limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .done(&self.keys);
    }
}

impl Reachability {
    pub(crate) fn new(settings: &RegistrySettings) -> Self {
        Self {
            probes: Arc::new(Semaphore::new(settings.max_concurrent_probes)),
            cache: Mutex::new(HashMap::new()),
            limits: Mutex::new(PublishLimits::new(
                settings.publish_burst,
                settings.publish_refill,
                settings.publish_sources,
            )),
            probe_timeout: settings.probe_timeout,
            queue_timeout: settings.probe_queue_timeout,
            ttl: settings.probe_cache_ttl,
            max_entries: settings.probe_cache_entries,
            allow_private: settings.allow_private_addresses,
        }
    }

    /// A publish from `peer` on its own connection, whose remote IPs are `source`: `Ok` if
    /// `peer` answered at every one of `addresses` (text multiaddrs from its descriptor),
    /// each of which must be on a source IP; otherwise a refusal (generic for addresses;
    /// `Busy` for the per-source limits).
    pub(crate) async fn check_publisher(
        &self,
        peer: PeerId,
        addresses: &[String],
        source: &[IpAddr],
    ) -> Result<(), Refusal> {
        let parsed = parse(addresses)?;
        let mut keys: Vec<IpAddr> = source.iter().map(|ip| source_key(*ip)).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            debug!(%peer, "registry: publish refused: no connection from the publisher is known");
            return Err(not_reachable(0));
        }
        let begun = self
            .limits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .begin(&keys, Instant::now());
        match begun {
            Ok(()) => {}
            Err(Limited::Rate(wait)) => {
                return Err(Refusal::new(
                    RefuseCode::Busy,
                    format!(
                        "too many publishes from this address; try again in {} s",
                        wait.as_secs().max(1)
                    ),
                ));
            }
            Err(Limited::InProgress) => {
                return Err(Refusal::new(
                    RefuseCode::Busy,
                    "a publish from this address is being checked; try again later",
                ));
            }
        }
        let _checking = Checking {
            limits: &self.limits,
            keys,
        };
        let rules = AdmitRules {
            require_ip_match: true,
            allow_private: self.allow_private,
        };
        self.check_all(peer, &parsed, source, rules).await
    }

    /// Re-checks a descriptor already accepted by some registry (there is no publisher
    /// connection, so no IP match): `Ok` if `peer` answered at every one of `addresses`.
    /// Non-public addresses are still never dialed unless `allow_private_addresses`.
    pub(crate) async fn check_listed(
        &self,
        peer: PeerId,
        addresses: &[String],
    ) -> Result<(), Refusal> {
        let parsed = parse(addresses)?;
        let rules = AdmitRules {
            require_ip_match: false,
            allow_private: self.allow_private,
        };
        self.check_all(peer, &parsed, &[], rules).await
    }

    /// The same as [`Self::check_listed`] (kept for callers written against the first API).
    #[allow(dead_code)] // used by the re-verification of listed relays
    pub(crate) async fn check(&self, peer: PeerId, addresses: &[String]) -> Result<(), Refusal> {
        self.check_listed(peer, addresses).await
    }

    /// Admits and probes the addresses one after the other, stopping at the first failure.
    async fn check_all(
        &self,
        peer: PeerId,
        addresses: &[Multiaddr],
        source: &[IpAddr],
        rules: AdmitRules,
    ) -> Result<(), Refusal> {
        for (index, address) in addresses.iter().enumerate() {
            let outcome = match admit_with(&peer, address, source, rules) {
                Ok(dialable) => self.check_one(peer, dialable).await,
                Err(reason) => Outcome::NotReachable(reason.to_string()),
            };
            match outcome {
                Outcome::Reachable => debug!(%peer, index, "registry: claimed address reached"),
                Outcome::NotReachable(reason) => {
                    debug!(%peer, index, %reason, "registry: claimed address not confirmed");
                    return Err(not_reachable(index));
                }
                Outcome::Busy => {
                    return Err(Refusal::new(
                        RefuseCode::Busy,
                        "registry busy: too many probes running; try again later",
                    ));
                }
            }
        }
        Ok(())
    }

    async fn check_one(&self, peer: PeerId, address: Multiaddr) -> Outcome {
        let key = (peer, address);
        if let Some(reachable) = self.cached(&key) {
            return if reachable {
                Outcome::Reachable
            } else {
                Outcome::NotReachable("cached: did not answer a recent dial-back".into())
            };
        }
        let Ok(Ok(_permit)) =
            tokio::time::timeout(self.queue_timeout, Arc::clone(&self.probes).acquire_owned())
                .await
        else {
            // Busy is not a verdict about the relay: not cached.
            return Outcome::Busy;
        };
        let verdict = dialback::probe(peer, key.1.clone(), self.probe_timeout).await;
        let reachable = matches!(verdict, Verdict::Reachable);
        self.store(key, reachable);
        if reachable {
            Outcome::Reachable
        } else {
            Outcome::NotReachable(verdict.to_string())
        }
    }

    fn cached(&self, key: &(PeerId, Multiaddr)) -> Option<bool> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(key)
            .filter(|e| e.at.elapsed() < self.ttl)
            .map(|e| e.reachable)
    }

    fn store(&self, key: (PeerId, Multiaddr), reachable: bool) {
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
                reachable,
            },
        );
    }
}

/// The descriptor's addresses as multiaddrs (a bad one is the descriptor's fault, said so).
fn parse(addresses: &[String]) -> Result<Vec<Multiaddr>, Refusal> {
    addresses
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
        .collect()
}

#[cfg(test)]
mod tests;
