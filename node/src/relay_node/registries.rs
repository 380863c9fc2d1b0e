//! A relay's part in the registry system: it publishes its advertised descriptor to the
//! registries and republishes it periodically (a registry dials its addresses back before
//! listing it), and it fetches, verifies, caches and serves the registries' signed directory
//! snapshot, so proxies can fetch it from relays as well as from registries.

use std::sync::Arc;
use std::time::Duration;

use braid_registry::service::{
    DirectoryFeed, FeedSettings, PublishStatus, RelayCache, RepublishSettings, Republisher,
    ServerSettings,
};
use braid_transport::Transport;
use tokio::sync::watch;

use super::advert::Advert;
use crate::config::Registry;
use crate::error::NodeError;
use crate::registry_node::service_registries;

/// A failed publication or directory fetch is tried again after at most this long (sooner
/// when the regular interval is shorter).
pub const RETRY_CAP: Duration = Duration::from_secs(10);

/// The relay's publisher, feed and cache; stopped on shutdown.
pub(crate) struct RelayRegistry {
    republisher: Republisher,
    feed: DirectoryFeed,
    cache: RelayCache,
}

impl std::fmt::Debug for RelayRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayRegistry").finish_non_exhaustive()
    }
}

impl RelayRegistry {
    /// Starts publishing `advert`'s descriptor every `republish` and following the directory
    /// every `refresh`.
    pub(crate) async fn start(
        transport: &Transport,
        advert: Arc<Advert>,
        list: &[Registry],
        republish: Duration,
        refresh: Duration,
    ) -> Result<Self, NodeError> {
        let registries = service_registries(list)?;
        let service = |e: braid_registry::service::ServiceError| NodeError::Service(e.to_string());
        let make: braid_registry::service::DescriptorSource = Arc::new(move |_now| {
            advert
                .fresh()
                .map_err(|why| braid_directory::Error::InvalidField {
                    field: "addresses",
                    reason: format!("this relay is not advertised: {why}"),
                })
        });
        let republisher = Republisher::start(
            transport.clone(),
            registries.clone(),
            make,
            RepublishSettings {
                republish_interval: republish,
                retry_interval: republish.min(RETRY_CAP),
                ..RepublishSettings::default()
            },
        )
        .map_err(service)?;
        let feed = DirectoryFeed::start(
            transport,
            registries,
            Vec::new(),
            FeedSettings {
                refresh_interval: refresh,
                retry_interval: refresh.min(RETRY_CAP),
                ..FeedSettings::default()
            },
        )
        .await
        .map_err(service)?;
        let cache = RelayCache::start(transport, feed.subscribe(), ServerSettings::default())
            .map_err(service)?;
        Ok(Self {
            republisher,
            feed,
            cache,
        })
    }

    /// How the last publication went.
    pub(crate) fn publish_status(&self) -> watch::Receiver<PublishStatus> {
        self.republisher.status()
    }

    /// The verified snapshot followed now, if any.
    pub(crate) fn snapshot(&self) -> Option<Arc<braid_directory::VerifiedSnapshot>> {
        self.feed.subscribe().borrow().clone()
    }

    /// The directory snapshots it follows.
    pub(crate) fn snapshots(&self) -> braid_registry::service::SnapshotReceiver {
        self.feed.subscribe()
    }

    /// Stops publishing, following and serving.
    pub(crate) fn stop(&self) {
        self.republisher.stop();
        self.feed.stop();
        self.cache.stop();
    }
}
