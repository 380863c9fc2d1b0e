//! What a relay tells its local API (`crate::api::StatusSource`): reachability, UPnP,
//! advertised addresses, publication to the registries, the directory it caches, circuits
//! through it, relayed cells and the accounting budget. Only reads what the relay keeps.

use std::sync::Arc;

use braid_registry::service::{PublishStatus, SnapshotReceiver};
use braid_relay::service::{AccountingProbe, RelayStats};
use std::sync::atomic::Ordering;
use tokio::sync::watch;

use super::advert::Advert;
use super::now_unix;
use crate::api::{AccountingInfo, DirectoryInfo, RegistriesInfo, Status, StatusSource};
use crate::config::AccountingPeriod;

/// A relay's status source, made of handles the relay shares.
pub(super) struct RelayStatus {
    pub(super) peer_id: String,
    pub(super) nickname: String,
    pub(super) stats: Arc<RelayStats>,
    pub(super) advert: Arc<Advert>,
    pub(super) upnp: String,
    pub(super) registries: usize,
    pub(super) publish: Option<watch::Receiver<PublishStatus>>,
    pub(super) snapshots: Option<SnapshotReceiver>,
    /// The relay's live budget (used, limit, period end).
    pub(super) accounting: AccountingProbe,
    /// The configured accounting period, for its name.
    pub(super) period: AccountingPeriod,
}

impl StatusSource for RelayStatus {
    fn status(&self) -> Status {
        let now = now_unix();
        let advertised = self.advert.advertised();
        let registries = (self.registries > 0).then(|| {
            let (reached, last) = match self.publish.as_ref().map(|p| p.borrow().clone()) {
                Some(PublishStatus::Published { at, .. }) => (
                    Some(1),
                    Some(format!("listed {} s ago", now.saturating_sub(at))),
                ),
                Some(PublishStatus::Failed { at, error }) => (
                    Some(0),
                    Some(format!("failed {} s ago: {error}", now.saturating_sub(at))),
                ),
                _ => (None, None),
            };
            RegistriesInfo {
                configured: self.registries,
                reached,
                last,
            }
        });
        let directory = self.snapshots.as_ref().map(|s| match s.borrow().as_ref() {
            Some(snap) => DirectoryInfo {
                relays: snap.relays().len(),
                age_secs: Some(now.saturating_sub(snap.issued_at())),
                valid_until: Some(snap.valid_until()),
                stale: None,
            },
            None => DirectoryInfo::default(),
        });
        let accounting = self.accounting.state().map(|a| AccountingInfo {
            max_bytes: a.limit_bytes,
            used_bytes: Some(a.used_bytes),
            period: match self.period {
                AccountingPeriod::Day => "day".into(),
                AccountingPeriod::Month => "month".into(),
            },
            period_end: a.period_end_unix,
        });
        Status {
            role: "relay".into(),
            peer_id: Some(self.peer_id.clone()),
            nickname: Some(self.nickname.clone()),
            reachability: Some(self.advert.why_not().unwrap_or_else(|| "advertised".into())),
            upnp: Some(self.upnp.clone()),
            advertised_addresses: advertised
                .map(|d| d.descriptor().addresses.clone())
                .unwrap_or_default(),
            registries,
            directory,
            circuits_open: self.circuits_open(),
            accounting,
            ..Status::default()
        }
    }

    fn traffic(&self) -> (u64, u64) {
        // Each relayed cell comes in on one side and goes out on the other.
        let bytes = self
            .stats
            .cells
            .load(Ordering::Relaxed)
            .saturating_mul(braid_relay::CELL_LEN as u64);
        (bytes, bytes)
    }

    fn circuits_open(&self) -> Option<u64> {
        Some(self.stats.circuits_open.load(Ordering::Relaxed))
    }
}
