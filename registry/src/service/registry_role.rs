//! The registry side of `/braid/registry/1`: what a registry node does with each request, and
//! the handle that runs its server and leader loop.
//!
//! - `Publish`: the descriptor (signature already checked by the codec) must name the
//!   requesting peer, be fresh by this registry's clock, and every claimed address must be on
//!   an IP the peer is connected from, be public (unless `allow_private_addresses`) and answer
//!   a dial-back (`Reachability::check_publisher`, with per-source limits); then it is
//!   proposed to the replicated state. Any refusal stores nothing. The check is made here, by
//!   the registry holding the relay's connection; a follower forwards only the checked
//!   command to the Raft leader (over `/braid/raft/1`, from configured members only), and
//!   the leader does not dial anything for it, so a forwarded publish cannot make any
//!   registry dial an address.
//! - `GetSnapshot`: the newest majority-signed snapshot held, unless expired.
//! - `CoSign` / `Offer`: only from the other configured registries (checked from the header,
//!   before the body is read); see `cosign`.
//!
//! It does not replicate anything itself: the [`Replica`] does.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use braid_directory::SignedDescriptor;
use braid_directory::snapshot::{SignedSnapshot, VerifiedSnapshot};
use braid_transport::dialback::policy::ip_of;
use braid_transport::{PeerId, Transport, peer_id_from_public};
use ed25519_dalek::SigningKey;
use tokio::task::JoinHandle;
use tracing::info;

use super::attest::MeasuredBandwidth;
use super::measure::Measurer;
use super::persisted::{Adopted, Served};
use super::reachability::Reachability;
use super::registries::add_addresses;
use super::served::snapshot_reply;
use super::server::{Handler, Reply, ServiceServer};
use super::stats::{PublishResult, RegistryStats};
use super::{
    Registries, RegistrySettings, Replica, ServiceError, attest, cosign, leader, unix_now,
};
use crate::protocol::{Refusal, RefuseCode, Request, Response, kind};
use crate::state::Command;
use crate::store::Applied;

/// Everything a registry's request handlers and leader loop share.
pub(crate) struct RegistryCore {
    pub(crate) transport: Transport,
    pub(crate) replica: Arc<dyn Replica>,
    pub(crate) registries: Registries,
    /// This registry's signing key: its transport identity key.
    pub(crate) key: SigningKey,
    pub(crate) peer_id: PeerId,
    pub(crate) settings: RegistrySettings,
    pub(crate) reachability: Reachability,
    pub(crate) served: Served,
    /// `issued_at` of the last snapshot this registry built (0 for none).
    pub(crate) last_built: AtomicU64,
    /// Held while a snapshot is built, so two builds never pick the same `issued_at`.
    pub(crate) building: tokio::sync::Mutex<()>,
    /// Publish outcomes, for metrics.
    pub(crate) stats: Arc<RegistryStats>,
}

fn refused(code: RefuseCode, text: impl Into<String>) -> Response {
    Response::Refused(Refusal::new(code, text))
}

impl RegistryCore {
    /// Which request kinds are taken from `peer`: publish and fetch from anyone, co-sign and
    /// offer only from the other registries; unknown kinds from no one.
    pub(crate) fn admit(&self, peer: &PeerId, kind: u8) -> Result<(), Refusal> {
        match kind {
            kind::PUBLISH | kind::GET_SNAPSHOT => Ok(()),
            kind::CO_SIGN | kind::OFFER
                if *peer != self.peer_id && self.registries.contains(peer) =>
            {
                Ok(())
            }
            kind::CO_SIGN | kind::OFFER => Err(Refusal::new(
                RefuseCode::NotARegistry,
                "co-sign and offer are taken from the configured registries only",
            )),
            other => Err(Refusal::new(
                RefuseCode::BadRequest,
                format!("unknown request kind {other:#04x}"),
            )),
        }
    }

    pub(crate) async fn handle(&self, peer: PeerId, request: Request) -> Reply {
        match request {
            Request::Publish(d) => {
                let answer = self.publish(peer, d).await;
                self.stats.count_publish(PublishResult::of(&answer));
                answer.into()
            }
            Request::GetSnapshot { newer_than } => {
                snapshot_reply(self.served.current().as_deref(), newer_than, unix_now())
            }
            Request::CoSign(candidate) => cosign::co_sign(self, peer, candidate).await.into(),
            Request::Offer(offered) => self.offer(peer, offered).await.into(),
            Request::Unknown(u) => refused(
                RefuseCode::BadRequest,
                format!("unknown request kind {:#04x}", u.kind()),
            )
            .into(),
        }
    }

    async fn publish(&self, peer: PeerId, d: SignedDescriptor) -> Response {
        match peer_id_from_public(d.identity()) {
            Ok(identity) if identity == peer => {}
            _ => {
                return refused(
                    RefuseCode::WrongPeer,
                    "the descriptor's identity is not the peer that sent it",
                );
            }
        }
        if let Err(e) = d.check_fresh(unix_now()) {
            return refused(RefuseCode::NotFresh, e.to_string());
        }
        // The IPs of this peer's own connections to us: a publish forwarded by another
        // registry never comes here (registries forward the checked command over Raft), so
        // this is always the relay's own connection.
        let source: Vec<IpAddr> = match self.transport.connected_addresses(peer).await {
            Ok(list) => list.iter().filter_map(ip_of).collect(),
            Err(_) => Vec::new(),
        };
        if let Err(refusal) = self
            .reachability
            .check_publisher(peer, &d.descriptor().addresses, &source)
            .await
        {
            info!(%peer, code = ?refusal.code(), "registry: publish refused");
            return Response::Refused(refusal);
        }
        match self.replica.submit(Command::Publish(d)).await {
            Ok(Applied::Stored { replaced }) => {
                info!(%peer, replaced, "registry: relay listed");
                Response::Published
            }
            Ok(Applied::Unchanged) => Response::Published,
            Ok(Applied::Rejected(rejection)) => {
                refused(RefuseCode::Rejected, rejection.to_string())
            }
            Ok(other) => refused(
                RefuseCode::Unavailable,
                format!("unexpected outcome of the publish: {other:?}"),
            ),
            Err(e) => refused(RefuseCode::Unavailable, e.to_string()),
        }
    }

    async fn offer(&self, peer: PeerId, offered: SignedSnapshot) -> Response {
        let set = self.registries.set().clone();
        let now = unix_now();
        let verified = match tokio::task::spawn_blocking(move || offered.verify(&set, now)).await {
            Ok(Ok(verified)) => verified,
            Ok(Err(e)) => return refused(RefuseCode::BadSnapshot, e.to_string()),
            Err(e) => return refused(RefuseCode::Unavailable, e.to_string()),
        };
        let issued_at = verified.issued_at();
        let relays = verified.descriptors().len();
        match self.served.adopt(verified) {
            Adopted::Newer => {
                info!(%peer, issued_at, relays, "registry: serving an offered directory snapshot");
                self.served.persist().await;
                Response::Accepted
            }
            Adopted::Same => Response::Accepted,
            Adopted::Older => refused(
                RefuseCode::BadSnapshot,
                "a newer directory snapshot is already served here",
            ),
        }
    }
}

/// How a registry role runs beyond its settings.
pub struct RoleOptions {
    /// The bandwidth this registry measured for a relay, put in its attestations (the listing
    /// takes the median of a majority's measurements). Default (`None`): this registry's own
    /// measurer (`settings.measure`), or nothing when measuring is off.
    pub measured: Option<MeasuredBandwidth>,
    /// Whether this registry verifies relays and attests them (default true). A registry that
    /// does not attest still serves, co-signs and builds, but vouches for nothing and does not
    /// move the state clock (tests drive attestations by hand with it).
    pub attest: bool,
}

impl Default for RoleOptions {
    fn default() -> Self {
        Self {
            measured: None,
            attest: true,
        }
    }
}

impl std::fmt::Debug for RoleOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleOptions")
            .field("attest", &self.attest)
            .finish_non_exhaustive()
    }
}

/// A registry node's service: the `/braid/registry/1` server, the attestation loop (this
/// registry's own dial-backs and signed votes) and the leader loop (expiry, snapshot building,
/// co-signing, offering). Dropping it (or `stop`) ends them.
pub struct RegistryRole {
    core: Arc<RegistryCore>,
    server: ServiceServer,
    leader: JoinHandle<()>,
    /// The bandwidth measurer (`settings.measure.enabled`).
    measurer: Option<Measurer>,
    /// The attestation loop.
    attest: JoinHandle<()>,
}

impl RegistryRole {
    /// Starts serving on `transport`. `key` must be the transport's identity key (the
    /// registry's signing key is its identity) and its peer id one of `registries`
    /// ([`ServiceError::Registries`] otherwise). Loads the snapshot kept in
    /// `settings.data_dir`, if any, and serves it at once if it still verifies.
    pub async fn start(
        transport: &Transport,
        replica: Arc<dyn Replica>,
        registries: Registries,
        key: SigningKey,
        settings: RegistrySettings,
    ) -> Result<Self, ServiceError> {
        Self::start_with(
            transport,
            replica,
            registries,
            key,
            settings,
            RoleOptions::default(),
        )
        .await
    }

    /// [`RegistryRole::start`] with [`RoleOptions`] (the bandwidth hook, whether to attest).
    pub async fn start_with(
        transport: &Transport,
        replica: Arc<dyn Replica>,
        registries: Registries,
        key: SigningKey,
        settings: RegistrySettings,
        options: RoleOptions,
    ) -> Result<Self, ServiceError> {
        settings.validate()?;
        let peer_id = peer_id_from_public(&key.verifying_key().to_bytes()).map_err(|e| {
            ServiceError::Registries {
                reason: format!("the signing key is unusable: {e}"),
            }
        })?;
        if peer_id != transport.peer_id() {
            return Err(ServiceError::Registries {
                reason: "the signing key is not this node's transport identity key".into(),
            });
        }
        if !registries.contains(&peer_id) {
            return Err(ServiceError::Registries {
                reason: format!("this node ({peer_id}) is not in the registry list"),
            });
        }
        let others: Vec<_> = registries
            .peers()
            .iter()
            .filter(|p| p.peer_id != peer_id)
            .cloned()
            .collect();
        add_addresses(transport, &others).await?;
        let served = Served::load(settings.data_dir.as_deref(), registries.set(), unix_now()).await;
        let core = Arc::new(RegistryCore {
            transport: transport.clone(),
            replica,
            reachability: Reachability::new(&settings),
            registries,
            key,
            peer_id,
            served,
            settings,
            last_built: AtomicU64::new(0),
            stats: Arc::new(RegistryStats::default()),
            building: tokio::sync::Mutex::new(()),
        });
        let server = ServiceServer::start(
            transport,
            Handler::Registry(Arc::clone(&core)),
            core.settings.server.clone(),
        )?;
        let leader = tokio::spawn(leader::run(Arc::clone(&core)));
        let measurer = match core.settings.measure.enabled {
            true => Some(Measurer::start(
                transport,
                Arc::clone(&core.replica),
                core.settings.measure.clone(),
            )?),
            false => None,
        };
        // The attestations carry this registry's own measurements, unless the caller gave a
        // hook (tests that vote by hand).
        let measured = match (&measurer, options.measured) {
            (Some(m), None) => {
                let book = m.book();
                let hook: MeasuredBandwidth = Arc::new(move |p: &PeerId| book.latest(p));
                hook
            }
            (_, Some(hook)) => hook,
            (None, None) => Arc::new(|_: &PeerId| None),
        };
        let attest = if options.attest {
            tokio::spawn(attest::run(Arc::clone(&core), measured))
        } else {
            tokio::spawn(async {})
        };
        Ok(Self {
            core,
            server,
            leader,
            measurer,
            attest,
        })
    }

    /// The snapshot this registry serves now (verified, majority-signed), if any.
    pub fn snapshot(&self) -> Option<VerifiedSnapshot> {
        self.core.served.current().map(|s| s.verified.clone())
    }

    /// Builds, co-signs, serves and offers a snapshot now (the leader loop does this every
    /// `snapshot_interval` while this node is the leader). Errors say how many registries
    /// signed and why the others did not.
    pub async fn build_snapshot_now(&self) -> Result<VerifiedSnapshot, ServiceError> {
        cosign::build(&self.core).await
    }

    /// The relay's latest measured bandwidth in bytes per second (`None`: not measured, its
    /// latest measurement failed, or measuring is off).
    pub fn measured(&self, relay: &PeerId) -> Option<u64> {
        self.measurer.as_ref()?.latest(relay)
    }

    /// The registry's publish counters.
    pub fn stats(&self) -> Arc<RegistryStats> {
        self.core.stats.clone()
    }

    /// Stops the server, the leader loop, the attestation loop and the measurer.
    pub fn stop(&self) {
        self.server.stop();
        self.leader.abort();
        self.attest.abort();
        if let Some(m) = &self.measurer {
            m.stop();
        }
    }
}

impl Drop for RegistryRole {
    fn drop(&mut self) {
        self.leader.abort();
        self.attest.abort();
    }
}

impl std::fmt::Debug for RegistryRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryRole")
            .field("peer_id", &self.core.peer_id)
            .finish_non_exhaustive()
    }
}
