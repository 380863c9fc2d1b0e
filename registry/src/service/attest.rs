//! Every registry's own verification loop: it watches the applied state for descriptors it has
//! not verified (or verified too long ago), dials each one back itself
//! ([`Reachability::check`](super::reachability::Reachability)), and submits a signed
//! [`Attestation`] of the relays that answered (with the bandwidth the `measured` hook
//! reports) to the replicated state. It also attests with no relays every
//! [`ATTEST_HEARTBEAT`] so that its clock keeps moving the state clock. It does not decide what
//! is listed: the store's vote rule does, on every replica.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use braid_transport::{PeerId, peer_id_from_public};
use futures::future::join_all;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::registry_role::RegistryCore;
use super::{Replica, ServiceError, unix_now};
use crate::state::votes::REATTEST_AFTER_SECS;
use crate::state::{Attestation, AttestedRelay, Command, MAX_ATTESTED_RELAYS, Rejection};
use crate::store::{Applied, StateView, ViewRelay};

/// The bandwidth this registry measured for a relay, bytes per second (`None`: not measured).
pub type MeasuredBandwidth = Arc<dyn Fn(&PeerId) -> Option<u64> + Send + Sync + 'static>;

/// How often the loop looks at the state for relays to verify.
pub const ATTEST_POLL: Duration = Duration::from_millis(500);

/// The longest a registry goes without attesting (an empty attestation advances its clock).
pub const ATTEST_HEARTBEAT: Duration = Duration::from_secs(10);

/// How long a descriptor that failed its dial-back is left alone before it is tried again.
pub const RETRY_UNREACHABLE: Duration = Duration::from_secs(10);

/// The most failed descriptors remembered (the state's relay limit).
const MAX_FAILED: usize = crate::state::MAX_STATE_DESCRIPTORS;

/// The applied state, read on a blocking thread.
pub(crate) async fn read_view(replica: &Arc<dyn Replica>) -> Result<StateView, ServiceError> {
    let replica = Arc::clone(replica);
    tokio::task::spawn_blocking(move || replica.view())
        .await
        .map_err(|e| ServiceError::Build {
            reason: format!("reading the applied state: {e}"),
        })?
        .map_err(ServiceError::Replica)
}

/// Whether `me` should verify `relay` (again) at state clock `clock`.
fn needs_check(relay: &ViewRelay, me: &[u8; 32], clock: u64, measured: Option<u64>) -> bool {
    match relay.votes.iter().find(|v| v.registry == *me) {
        None => true,
        Some(v) => {
            v.digest != relay.digest
                || v.at.saturating_add(REATTEST_AFTER_SECS) <= clock
                || measurement_moved(v.measured_bw, measured)
        }
    }
}

/// Whether this registry's measurement of a relay changed enough since its last vote to vote
/// again: it first arrived, or it moved by more than a quarter.
fn measurement_moved(voted: Option<u64>, now: Option<u64>) -> bool {
    match (voted, now) {
        (None, Some(_)) => true,
        (Some(old), Some(new)) => old.abs_diff(new) > old / 4,
        (_, None) => false,
    }
}

/// Runs until aborted.
pub(crate) async fn run(core: Arc<RegistryCore>, measured: MeasuredBandwidth) {
    let me = core.key.verifying_key().to_bytes();
    let mut seq: u64 = 0;
    let mut last_sent: Option<Instant> = None;
    let mut failed: HashMap<[u8; 32], Instant> = HashMap::new();
    loop {
        tokio::time::sleep(ATTEST_POLL).await;
        let view = match read_view(&core.replica).await {
            Ok(view) => view,
            Err(error) => {
                debug!(%error, "registry: state not readable for attesting");
                continue;
            }
        };
        let now = unix_now();
        let tick = Instant::now();
        failed.retain(|_, until| *until > tick);
        let pending: Vec<&ViewRelay> = view
            .relays
            .iter()
            .filter(|r| {
                let current = peer_id_from_public(r.descriptor.identity())
                    .ok()
                    .and_then(|p| measured(&p));
                needs_check(r, &me, view.clock, current)
            })
            .filter(|r| !failed.contains_key(&r.digest))
            .filter(|r| r.descriptor.check_fresh(now).is_ok())
            .take(MAX_ATTESTED_RELAYS)
            .collect();
        let heartbeat_due = last_sent.is_none_or(|t| t.elapsed() >= ATTEST_HEARTBEAT);
        if pending.is_empty() && !heartbeat_due {
            continue;
        }
        let checks = join_all(pending.iter().map(|r| {
            let core = &core;
            async move {
                let peer = peer_id_from_public(r.descriptor.identity()).ok()?;
                core.reachability
                    .check(peer, &r.descriptor.descriptor().addresses)
                    .await
                    .ok()
                    .map(|()| peer)
            }
        }))
        .await;
        let mut relays = Vec::with_capacity(pending.len());
        for (r, peer) in pending.iter().zip(checks) {
            match peer {
                Some(peer) => relays.push(AttestedRelay {
                    relay: *r.descriptor.identity(),
                    digest: r.digest,
                    measured_bw: measured(&peer),
                }),
                None => {
                    if failed.len() < MAX_FAILED {
                        failed.insert(r.digest, tick + RETRY_UNREACHABLE);
                    }
                }
            }
        }
        if relays.is_empty() && !heartbeat_due {
            continue;
        }
        seq = seq.saturating_add(1);
        let count = relays.len();
        let signed = match (Attestation {
            signer: me,
            now,
            seq,
            relays,
        })
        .sign(&core.key)
        {
            Ok(signed) => signed,
            Err(error) => {
                warn!(%error, "registry: attestation not signed");
                continue;
            }
        };
        match core.replica.submit(Command::Attest(signed)).await {
            Ok(Applied::Attested { counted, clock }) => {
                debug!(
                    attested = count,
                    counted, clock, "registry: attestation applied"
                );
                last_sent = Some(Instant::now());
            }
            Ok(Applied::Rejected(Rejection::Replayed { last_seq, .. })) => {
                // A restart within the same second as the last attestation: go past it.
                seq = last_seq;
            }
            Ok(other) => warn!(?other, "registry: attestation not applied"),
            Err(error) => debug!(%error, "registry: attestation not committed"),
        }
    }
}
