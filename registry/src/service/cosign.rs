//! Building a majority-signed directory snapshot, both sides.
//!
//! The builder (the Raft leader) makes a [`Snapshot`] of the listing
//! ([`braid_directory::build_listing`] with its `ListingParams`, at `issued_at`) of its applied
//! descriptors that are fresh now and live past the snapshot's end, signs it, sends it to every other registry in parallel
//! (`CoSign`), adds each signature that verifies, and once a majority signed, serves it and
//! offers it to the others (`Offer`).
//!
//! A co-signer signs only what it would have built itself: the snapshot names its registry
//! set, `issued_at` is within `max_clock_skew` of its clock, every listed descriptor is
//! byte-for-byte the one in its own applied state (it waits up to `replication_wait` for
//! missing ones to be replicated), each is fresh now, and rebuilding the listing and the
//! snapshot from its own copies gives the same body digest (the listing rule is idempotent: a
//! listing of a listing's relays is the same listing). It never signs bytes it did not rebuild.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use braid_directory::snapshot::{SignedSnapshot, Snapshot, SnapshotError, VerifiedSnapshot};
use braid_directory::{ListedRelay, ListingInput, ListingParams, SignedDescriptor, build_listing};
use futures::future::join_all;
use tracing::{debug, info, warn};

use super::exchange::exchange;
use super::registry_role::RegistryCore;
use super::{Replica, ServiceError, unix_now};
use crate::protocol::{Refusal, RefuseCode, Request, Response};

/// How often a co-signer looks again for descriptors not replicated yet.
const REPLICATION_POLL: Duration = Duration::from_millis(100);

/// The applied descriptors, read on a blocking thread.
pub(crate) async fn applied(
    replica: &Arc<dyn Replica>,
) -> Result<Vec<SignedDescriptor>, ServiceError> {
    let replica = Arc::clone(replica);
    tokio::task::spawn_blocking(move || replica.descriptors())
        .await
        .map_err(|e| ServiceError::Build {
            reason: format!("reading the applied state: {e}"),
        })?
        .map_err(ServiceError::Replica)
}

/// The listing of `descriptors` at `issued_at`. No registry measures yet and the state keeps no
/// listing history: every relay is unmeasured and counts as listed since its descriptor's
/// `published` (so none gets Guard), until measurements and votes are replicated.
fn listing(
    descriptors: Vec<SignedDescriptor>,
    params: &ListingParams,
    issued_at: u64,
) -> Vec<ListedRelay> {
    let inputs = descriptors
        .into_iter()
        .map(|descriptor| ListingInput {
            listed_since: descriptor.descriptor().published,
            descriptor,
            measured_bw: None,
        })
        .collect();
    build_listing(inputs, params, issued_at)
}

/// The builder's side: build, gather a majority, serve, offer.
pub(crate) async fn build(core: &RegistryCore) -> Result<VerifiedSnapshot, ServiceError> {
    let _building = core.building.lock().await;
    let set = core.registries.set();
    let now = unix_now();
    let served = core.served.current().map_or(0, |s| s.issued_at());
    let issued_at = now
        .max(core.last_built.load(Ordering::Relaxed) + 1)
        .max(served + 1);
    let valid_until = issued_at + core.settings.snapshot_validity.as_secs();
    let all = applied(&core.replica).await?;
    let total = all.len();
    let kept: Vec<SignedDescriptor> = all
        .into_iter()
        .filter(|d| {
            d.check_fresh(now).is_ok()
                && d.check_fresh(issued_at).is_ok()
                && d.descriptor().expires >= valid_until
        })
        .collect();
    if kept.len() < total {
        debug!(
            left_out = total - kept.len(),
            "registry: descriptors expiring before the snapshot's end are left out"
        );
    }
    let params = &core.settings.listing;
    let listed = listing(kept, params, issued_at);
    let snapshot = Snapshot::new(
        set,
        issued_at,
        valid_until,
        params.unmeasured_weight,
        listed,
    )
    .map_err(|e| ServiceError::Build {
        reason: e.to_string(),
    })?;
    let unsigned = snapshot.into_unsigned();
    let request = Request::CoSign(unsigned.clone());
    let mut signed = unsigned;
    signed
        .sign_with(set, &core.key)
        .map_err(|e| ServiceError::Build {
            reason: format!("signing: {e}"),
        })?;
    let others: Vec<_> = core
        .registries
        .peers()
        .iter()
        .map(|p| p.peer_id)
        .filter(|p| *p != core.peer_id)
        .collect();
    let timeout = core.settings.peer_timeout;
    let answers = join_all(
        others
            .iter()
            .map(|peer| exchange(&core.transport, *peer, &request, timeout)),
    )
    .await;
    let mut failures = Vec::new();
    for (peer, answer) in others.iter().zip(answers) {
        match answer {
            Ok(Response::Signature(signature)) => {
                if let Err(e) = signed.add_signature(set, signature) {
                    failures.push(format!("{peer}: bad signature: {e}"));
                }
            }
            Ok(other) => failures.push(format!("{peer}: answered {:#04x}", other.kind())),
            Err(e) => failures.push(e.to_string()),
        }
    }
    let signers = signed.signatures().len();
    if signers < set.threshold() {
        return Err(ServiceError::Build {
            reason: format!(
                "{signers} of {} registries signed, {} needed: {}",
                set.len(),
                set.threshold(),
                failures.join("; ")
            ),
        });
    }
    for failure in &failures {
        debug!(%failure, "registry: a registry did not co-sign");
    }
    let set_owned = set.clone();
    let verified = tokio::task::spawn_blocking(move || signed.verify(&set_owned, unix_now()))
        .await
        .map_err(|e| ServiceError::Build {
            reason: e.to_string(),
        })?
        .map_err(|e| ServiceError::Build {
            reason: format!("own snapshot does not verify: {e}"),
        })?;
    core.last_built.store(issued_at, Ordering::Relaxed);
    core.served.adopt(verified.clone());
    core.served.persist().await;
    info!(
        issued_at,
        relays = verified.descriptors().len(),
        signers,
        "registry: directory snapshot signed by a majority"
    );
    offer(core, &others, &verified).await;
    Ok(verified)
}

/// Pushes the majority-signed snapshot to the other registries so that every one serves it.
async fn offer(core: &RegistryCore, others: &[braid_transport::PeerId], v: &VerifiedSnapshot) {
    let request = Request::Offer(v.signed().clone());
    let timeout = core.settings.peer_timeout;
    let answers = join_all(
        others
            .iter()
            .map(|peer| exchange(&core.transport, *peer, &request, timeout)),
    )
    .await;
    for answer in answers {
        match answer {
            Ok(Response::Accepted) => {}
            Ok(other) => warn!(kind = other.kind(), "registry: offer answered unexpectedly"),
            Err(error) => warn!(%error, "registry: snapshot offer not taken"),
        }
    }
}

fn refused(code: RefuseCode, text: impl Into<String>) -> Response {
    Response::Refused(Refusal::new(code, text))
}

/// The co-signer's side: a `Signature` over `candidate` if this registry would have built the
/// same snapshot, else a refusal saying why.
pub(crate) async fn co_sign(core: &RegistryCore, candidate: SignedSnapshot) -> Response {
    let set = core.registries.set();
    if candidate.registry_set() != set.digest() {
        return refused(RefuseCode::BadSnapshot, "made for another registry set");
    }
    let now = unix_now();
    let skew = core.settings.max_clock_skew.as_secs();
    if candidate.issued_at().abs_diff(now) > skew {
        return refused(
            RefuseCode::BadSnapshot,
            format!(
                "issued_at {} is more than {skew} s from this registry's clock ({now})",
                candidate.issued_at()
            ),
        );
    }
    let listed = match listed_encodings(&candidate) {
        Ok(listed) => listed,
        Err(e) => return refused(RefuseCode::BadSnapshot, e.to_string()),
    };
    let mine = match own_copies(core, &listed).await {
        Ok(mine) => mine,
        Err(response) => return response,
    };
    for (index, d) in mine.iter().enumerate() {
        if let Err(e) = d.check_fresh(now) {
            return refused(RefuseCode::BadSnapshot, format!("descriptor {index}: {e}"));
        }
    }
    let params = &core.settings.listing;
    let listed = listing(mine, params, candidate.issued_at());
    let rebuilt = match Snapshot::new(
        set,
        candidate.issued_at(),
        candidate.valid_until(),
        params.unmeasured_weight,
        listed,
    ) {
        Ok(rebuilt) => rebuilt,
        Err(e) => return refused(RefuseCode::BadSnapshot, e.to_string()),
    };
    let mut own = rebuilt.into_unsigned();
    if own.digest() != candidate.digest() {
        return refused(
            RefuseCode::BadSnapshot,
            "not the snapshot this registry builds from the same descriptors",
        );
    }
    match own.sign_with(set, &core.key) {
        Ok(()) => match own.signatures().first() {
            Some(signature) => Response::Signature(*signature),
            None => refused(RefuseCode::Unavailable, "signature missing after signing"),
        },
        Err(e) => refused(RefuseCode::Unavailable, format!("signing: {e}")),
    }
}

/// The descriptor encodings a (structurally decoded) snapshot lists, in order.
fn listed_encodings(candidate: &SignedSnapshot) -> Result<Vec<Vec<u8>>, SnapshotError> {
    Ok(candidate
        .raw_entries()?
        .iter()
        .map(|e| e.descriptor.to_vec())
        .collect())
}

/// This registry's copy of each listed descriptor, byte-for-byte equal, waiting up to
/// `replication_wait` for missing ones.
async fn own_copies(
    core: &RegistryCore,
    listed: &[Vec<u8>],
) -> Result<Vec<SignedDescriptor>, Response> {
    let deadline = tokio::time::Instant::now() + core.settings.replication_wait;
    loop {
        let state = applied(&core.replica)
            .await
            .map_err(|e| refused(RefuseCode::Unavailable, e.to_string()))?;
        let by_identity: HashMap<[u8; 32], SignedDescriptor> =
            state.into_iter().map(|d| (*d.identity(), d)).collect();
        let mut mine = Vec::with_capacity(listed.len());
        let mut missing = None;
        for (index, encoded) in listed.iter().enumerate() {
            let copy = encoded
                .get(1..33)
                .and_then(|id| <[u8; 32]>::try_from(id).ok())
                .and_then(|id| by_identity.get(&id))
                .filter(|d| d.encode() == *encoded);
            match copy {
                Some(d) => mine.push(d.clone()),
                None => {
                    missing = Some(index);
                    break;
                }
            }
        }
        let Some(index) = missing else {
            return Ok(mine);
        };
        if tokio::time::Instant::now() + REPLICATION_POLL > deadline {
            return Err(refused(
                RefuseCode::BadSnapshot,
                format!("descriptor {index} is not in this registry's applied state"),
            ));
        }
        tokio::time::sleep(REPLICATION_POLL).await;
    }
}
