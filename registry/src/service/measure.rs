//! A registry's bandwidth measurements of the listed relays (feature `server`): a timed echo
//! through each relay's circuit machinery (`braid_relay::shared::measure`, relay PROTOCOL.md
//! §6.2), scheduled by the sans-IO [`schedule::Scheduler`], the latest result per relay kept
//! in a bounded [`MeasureBook`].
//!
//! The driver ([`Measurer`]) re-reads the relays in the replicated state every
//! `refresh_interval` (read only), starts what the scheduler says, and records each result:
//! a measured rate in bytes per second, or, when the relay did not answer or the echo failed,
//! no entry at all. The directory uses the measurement and a relay's self-reported bandwidth
//! only caps it (that is the votes' job, not this module's).
//!
//! Not here: the echo and the rate formula (`braid_relay::measure`), voting.

mod schedule;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use braid_directory::SignedDescriptor;
use braid_relay::handshake::HopSpec;
use braid_relay::measure::MEASURE_MAX_BYTES;
use braid_relay::shared::measure::{MeasureRequest, measure};
use braid_transport::{PeerId, Transport, peer_id_from_public};
use rand::RngExt as _;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tracing::{debug, warn};

use super::{Replica, ServiceError};
use crate::state::MAX_STATE_DESCRIPTORS;
use schedule::{Action, Limits, Scheduler};

/// How a registry measures relay bandwidth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasureSettings {
    /// Whether this registry measures at all.
    pub enabled: bool,
    /// Mean time between two measurements of one relay (each is jittered by ±25 %).
    pub interval: Duration,
    /// `Data` bytes sent through (and echoed by) the relay per measurement, at most
    /// `braid_relay::measure::MEASURE_MAX_BYTES`.
    pub bytes: u64,
    /// Measurements running at once (they share this registry's own bandwidth).
    pub max_concurrent: usize,
    /// Bytes the measurements started in any sliding hour may carry (each is charged `bytes`);
    /// at least `bytes`.
    pub bytes_per_hour: u64,
    /// Bound on one measurement, circuit build included.
    pub timeout: Duration,
    /// A relay newly listed is measured within this (when a slot and budget are free).
    pub first_delay: Duration,
    /// How often the listed relays are re-read from the replicated state.
    pub refresh_interval: Duration,
}

/// Measuring is on by default.
pub fn default_measure_enabled() -> bool {
    true
}

/// Each relay about once an hour.
pub fn default_measure_interval() -> Duration {
    Duration::from_secs(3600)
}

/// 2 MiB echoed per measurement.
pub fn default_measure_bytes() -> u64 {
    2 * 1024 * 1024
}

/// 4 measurements at once.
pub fn default_max_concurrent_measurements() -> usize {
    4
}

/// 4 GiB of measurements per hour (2048 of 2 MiB: about 1.2 MB/s each way on average).
pub fn default_measure_bytes_per_hour() -> u64 {
    4 * 1024 * 1024 * 1024
}

/// 60 s per measurement.
pub fn default_measure_timeout() -> Duration {
    Duration::from_secs(60)
}

/// A new relay is measured within 10 s.
pub fn default_measure_first_delay() -> Duration {
    Duration::from_secs(10)
}

/// The listed relays are re-read every 5 s.
pub fn default_measure_refresh_interval() -> Duration {
    Duration::from_secs(5)
}

impl Default for MeasureSettings {
    fn default() -> Self {
        Self {
            enabled: default_measure_enabled(),
            interval: default_measure_interval(),
            bytes: default_measure_bytes(),
            max_concurrent: default_max_concurrent_measurements(),
            bytes_per_hour: default_measure_bytes_per_hour(),
            timeout: default_measure_timeout(),
            first_delay: default_measure_first_delay(),
            refresh_interval: default_measure_refresh_interval(),
        }
    }
}

fn config(field: &'static str, reason: &'static str) -> ServiceError {
    ServiceError::Config { field, reason }
}

impl MeasureSettings {
    /// Refuses zero durations and counts, bytes outside 1..=`MEASURE_MAX_BYTES` and an hourly
    /// budget below one measurement.
    pub fn validate(&self) -> Result<(), ServiceError> {
        for (field, value) in [
            ("measure.interval", self.interval),
            ("measure.timeout", self.timeout),
            ("measure.refresh_interval", self.refresh_interval),
        ] {
            if value.is_zero() {
                return Err(config(field, "must be greater than zero"));
            }
        }
        if !(1..=MEASURE_MAX_BYTES).contains(&self.bytes) {
            return Err(config("measure.bytes", "must be 1..=4194304"));
        }
        if self.max_concurrent == 0 {
            return Err(config(
                "measure.max_concurrent",
                "must be greater than zero",
            ));
        }
        if self.bytes_per_hour < self.bytes {
            return Err(config(
                "measure.bytes_per_hour",
                "must be at least measure.bytes",
            ));
        }
        Ok(())
    }
}

/// The latest measurement of each listed relay, in bytes per second. Bounded: only listed
/// relays are kept, at most `MAX_STATE_DESCRIPTORS`.
#[derive(Debug, Default)]
pub(crate) struct MeasureBook {
    latest: RwLock<HashMap<PeerId, u64>>,
}

impl MeasureBook {
    /// The relay's latest measured rate (bytes/s); `None` if it was never measured, or its
    /// latest measurement failed.
    pub(crate) fn latest(&self, relay: &PeerId) -> Option<u64> {
        self.read().get(relay).copied()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PeerId, u64>> {
        self.latest.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PeerId, u64>> {
        self.latest.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a measurement (`None`: the latest one failed).
    fn record(&self, relay: PeerId, rate: Option<u64>) {
        let mut map = self.write();
        match rate {
            Some(r) if map.len() < MAX_STATE_DESCRIPTORS || map.contains_key(&relay) => {
                map.insert(relay, r);
            }
            Some(_) => {}
            None => {
                map.remove(&relay);
            }
        }
    }

    /// Forgets relays no longer listed.
    fn retain(&self, listed: &HashMap<PeerId, SignedDescriptor>) {
        self.write().retain(|p, _| listed.contains_key(p));
    }
}

/// A running measurer: the task that measures the listed relays, and its book. Dropping it
/// (or `stop`) ends the task and any measurement in flight.
#[derive(Debug)]
pub struct Measurer {
    book: Arc<MeasureBook>,
    task: JoinHandle<()>,
}

impl Measurer {
    /// Starts measuring the relays `replica` lists, over `transport`.
    pub fn start(
        transport: &Transport,
        replica: Arc<dyn Replica>,
        settings: MeasureSettings,
    ) -> Result<Self, ServiceError> {
        settings.validate()?;
        let book = Arc::new(MeasureBook::default());
        let task = tokio::spawn(run(transport.clone(), replica, settings, Arc::clone(&book)));
        Ok(Measurer { book, task })
    }

    /// The relay's latest measured rate in bytes per second, if it has one.
    pub fn latest(&self, relay: &PeerId) -> Option<u64> {
        self.book.latest(relay)
    }

    /// The book, for the directory's votes (the registry role's weight hook reads it).
    #[allow(dead_code)] // wired to the votes' hook when the branches merge
    pub(crate) fn book(&self) -> Arc<MeasureBook> {
        Arc::clone(&self.book)
    }

    /// Stops measuring.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Measurer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The listed relays by peer id (descriptors whose identity is no usable key are skipped).
async fn listed(replica: &Arc<dyn Replica>) -> Option<HashMap<PeerId, SignedDescriptor>> {
    let replica = Arc::clone(replica);
    let descriptors = match tokio::task::spawn_blocking(move || replica.descriptors()).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            warn!(error = %e, "measure: cannot read the listed relays");
            return None;
        }
        Err(_) => return None,
    };
    Some(
        descriptors
            .into_iter()
            .filter_map(|d| Some((peer_id_from_public(d.identity()).ok()?, d)))
            .collect(),
    )
}

/// What one measurement needs from the relay's descriptor.
fn request(peer: PeerId, d: &SignedDescriptor, settings: &MeasureSettings) -> MeasureRequest {
    let desc = d.descriptor();
    MeasureRequest {
        peer,
        hop: HopSpec {
            peer_id: peer.to_bytes(),
            addresses: desc.addresses.clone(),
            onion_key: desc.onion_key,
        },
        bytes: settings.bytes,
        key: rand::rng().random(),
        timeout: settings.timeout,
    }
}

async fn run(
    transport: Transport,
    replica: Arc<dyn Replica>,
    settings: MeasureSettings,
    book: Arc<MeasureBook>,
) {
    let mut scheduler = Scheduler::new(Limits {
        interval: settings.interval,
        first_delay: settings.first_delay,
        max_concurrent: settings.max_concurrent,
        bytes: settings.bytes,
        bytes_per_hour: settings.bytes_per_hour,
    });
    let mut relays: HashMap<PeerId, SignedDescriptor> = HashMap::new();
    let mut tasks: JoinSet<Option<u64>> = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, PeerId> = HashMap::new();
    let mut next_refresh = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_refresh {
            if let Some(list) = listed(&replica).await {
                relays = list;
                book.retain(&relays);
                let now = Instant::now().into_std();
                scheduler.set_relays(now, relays.keys().copied(), &mut rand::rng());
            }
            next_refresh = Instant::now() + settings.refresh_interval;
        }
        let wake = loop {
            match scheduler.poll(Instant::now().into_std()) {
                Action::Measure(peer) => {
                    let Some(d) = relays.get(&peer) else {
                        scheduler.finished(
                            Instant::now().into_std(),
                            &peer,
                            false,
                            &mut rand::rng(),
                        );
                        continue;
                    };
                    let req = request(peer, d, &settings);
                    let transport = transport.clone();
                    let handle = tasks.spawn(async move {
                        match measure(&transport, req).await {
                            Ok(m) => {
                                debug!(%peer, bytes_per_sec = m.bytes_per_sec, "measure: relay measured");
                                Some(m.bytes_per_sec)
                            }
                            Err(e) => {
                                debug!(%peer, error = %e, "measure: relay not measured");
                                None
                            }
                        }
                    });
                    running.insert(handle.id(), peer);
                }
                Action::WaitUntil(t) => break Some(Instant::from_std(t)),
                Action::Idle => break None,
            }
        };
        let deadline = wake.map_or(next_refresh, |w| w.min(next_refresh));
        tokio::select! {
            Some(done) = tasks.join_next_with_id() => {
                let (id, rate) = match done {
                    Ok((id, rate)) => (id, rate),
                    Err(e) => (e.id(), None),
                };
                if let Some(peer) = running.remove(&id) {
                    book.record(peer, rate);
                    scheduler.finished(Instant::now().into_std(), &peer, rate.is_some(), &mut rand::rng());
                }
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}
