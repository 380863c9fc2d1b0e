//! Building a majority-signed directory snapshot, both sides.
//!
//! A snapshot is a deterministic function of the replicated state at one log position: the
//! relays a majority of registries attested (`state::votes`) whose descriptors are fresh at
//! `issued_at` and live until `valid_until`, put through the listing rule
//! ([`braid_directory::build_listing`] with the settings' `ListingParams`, the majority's
//! median measured bandwidth and `listed_since` from the state), `issued_at` = the state
//! clock, `valid_until` = `issued_at + snapshot_validity` ([`own_build`]).
//!
//! The builder (the Raft leader) builds it from its applied state, signs it, sends it to every
//! other registry in parallel (`CoSign`), adds each signature that verifies, and once a
//! majority signed, serves it and offers it to the others (`Offer`). It takes its leader term
//! at the start and checks it again before asking for signatures, before serving and before
//! offering: a registry that is no longer the leader of that term stops there.
//!
//! A co-signer signs only for the registry it knows as the Raft leader (when it knows one), and
//! only what it builds itself: the snapshot names its registry set,
//! `issued_at` is within `max_clock_skew` of its wall clock, the validity is not longer than
//! its own `snapshot_validity`, and once its own state clock has reached `issued_at` (it waits
//! up to `replication_wait`), its own build with the same times has the same body digest, so
//! the same relays with the same bytes, no more and no fewer. It never signs bytes it did not
//! rebuild.

use std::sync::atomic::Ordering;
use std::time::Duration;

use braid_directory::snapshot::{RegistrySet, Snapshot, SnapshotError, VerifiedSnapshot};
use braid_directory::{ListingInput, ListingParams, SignedSnapshot, build_listing};
use futures::future::join_all;
use tracing::{debug, info, warn};

use super::attest::read_view;
use super::exchange::exchange;
use super::registry_role::RegistryCore;
use super::{ServiceError, unix_now};
use crate::protocol::{Refusal, RefuseCode, Request, Response};
use crate::store::StateView;

/// How often a co-signer looks again at its state while it waits to reach the candidate's.
const REPLICATION_POLL: Duration = Duration::from_millis(100);

/// The snapshot a registry builds from `view` with these times: the listing rule over every
/// eligible relay whose descriptor is fresh at `issued_at` and does not expire before
/// `valid_until`, with the state's median measured bandwidth and `listed_since`.
pub(crate) fn own_build(
    view: &StateView,
    set: &RegistrySet,
    params: &ListingParams,
    issued_at: u64,
    valid_until: u64,
) -> Result<Snapshot, SnapshotError> {
    let inputs: Vec<ListingInput> = view
        .listed()
        .filter(|r| {
            let d = &r.descriptor;
            d.check_fresh(issued_at).is_ok() && d.descriptor().expires >= valid_until
        })
        .map(|r| ListingInput {
            descriptor: r.descriptor.clone(),
            measured_bw: r.measured_bw,
            listed_since: r.listed_since.unwrap_or(issued_at),
        })
        .collect();
    let listed = build_listing(inputs, params, issued_at);
    Snapshot::new(
        set,
        issued_at,
        valid_until,
        params.unmeasured_weight,
        listed,
    )
}

/// Whether the state clock moved past the last snapshot built or served (so a build can be
/// newer); false when the state cannot be read.
pub(crate) async fn clock_moved(core: &RegistryCore) -> bool {
    let served = core.served.current().map_or(0, |s| s.issued_at());
    let last = core.last_built.load(Ordering::Relaxed).max(served);
    read_view(&core.replica)
        .await
        .is_ok_and(|view| view.clock > last)
}

/// The builder's side: build, gather a majority, serve, offer.
pub(crate) async fn build(core: &RegistryCore) -> Result<VerifiedSnapshot, ServiceError> {
    let _building = core.building.lock().await;
    let term = core
        .replica
        .leader_term()
        .ok_or_else(|| ServiceError::Build {
            reason: "not the leader".into(),
        })?;
    let set = core.registries.set();
    let view = read_view(&core.replica).await?;
    let issued_at = view.clock;
    let served = core.served.current().map_or(0, |s| s.issued_at());
    let last = core.last_built.load(Ordering::Relaxed).max(served);
    if issued_at == 0 || issued_at <= last {
        return Err(ServiceError::Build {
            reason: format!(
                "the state clock ({issued_at}) has not moved past the last snapshot ({last})"
            ),
        });
    }
    let valid_until = issued_at + core.settings.snapshot_validity.as_secs();
    let snapshot =
        own_build(&view, set, &core.settings.listing, issued_at, valid_until).map_err(|e| {
            ServiceError::Build {
                reason: e.to_string(),
            }
        })?;
    debug!(
        relays = snapshot.descriptors().len(),
        published = view.relays.len(),
        index = ?view.last_applied,
        "registry: snapshot built from the listing"
    );
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
    still_leader(core, term, "asking for signatures")?;
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
    still_leader(core, term, "serving the co-signed snapshot")?;
    let set_owned = set.clone();
    let verified = tokio::task::spawn_blocking(move || signed.verify(&set_owned, unix_now()))
        .await
        .map_err(|e| ServiceError::Build {
            reason: e.to_string(),
        })?
        .map_err(|e| ServiceError::Build {
            reason: format!("own snapshot does not verify: {e}"),
        })?;
    still_leader(core, term, "serving the co-signed snapshot")?;
    core.last_built.store(issued_at, Ordering::Relaxed);
    core.served.adopt(verified.clone());
    core.served.persist().await;
    info!(
        term,
        issued_at,
        relays = verified.descriptors().len(),
        signers,
        "registry: directory snapshot signed by a majority"
    );
    // Serving it is safe whoever leads (it is majority-signed); pushing it is the leader's job.
    if still_leader(core, term, "offering").is_ok() {
        offer(core, &others, &verified).await;
    }
    Ok(verified)
}

/// Whether this registry still leads in `term`; the error says which step it stopped before.
fn still_leader(core: &RegistryCore, term: u64, step: &str) -> Result<(), ServiceError> {
    match core.replica.leader_term() {
        Some(now) if now == term => Ok(()),
        now => {
            info!(
                term,
                now = ?now,
                "registry: no longer the leader of term {term}: stopped before {step}"
            );
            Err(ServiceError::Build {
                reason: format!("no longer the leader of term {term}: stopped before {step}"),
            })
        }
    }
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

/// The co-signer's side: a `Signature` over `candidate` if this registry builds the same
/// snapshot from its own state, else a refusal saying why.
pub(crate) async fn co_sign(
    core: &RegistryCore,
    peer: braid_transport::PeerId,
    candidate: SignedSnapshot,
) -> Response {
    if let Some(leader) = core.replica.leader()
        && leader != peer
    {
        info!(%peer, %leader, "registry: co-sign refused: the asking registry is not the leader");
        return refused(
            RefuseCode::BadSnapshot,
            format!("not the leader: this registry follows {leader}"),
        );
    }
    let set = core.registries.set();
    if candidate.registry_set() != set.digest() {
        return refused(RefuseCode::BadSnapshot, "made for another registry set");
    }
    let now = unix_now();
    let (issued_at, valid_until) = (candidate.issued_at(), candidate.valid_until());
    let skew = core.settings.max_clock_skew.as_secs();
    if issued_at.abs_diff(now) > skew {
        return refused(
            RefuseCode::BadSnapshot,
            format!(
                "issued_at {issued_at} is more than {skew} s from this registry's clock ({now})"
            ),
        );
    }
    let validity = core.settings.snapshot_validity.as_secs();
    if valid_until <= issued_at || valid_until - issued_at > validity {
        return refused(
            RefuseCode::BadSnapshot,
            format!(
                "valid for {} s; this registry signs at most {validity} s",
                valid_until.saturating_sub(issued_at)
            ),
        );
    }
    let deadline = tokio::time::Instant::now() + core.settings.replication_wait;
    loop {
        let view = match read_view(&core.replica).await {
            Ok(view) => view,
            Err(e) => return refused(RefuseCode::Unavailable, e.to_string()),
        };
        if view.clock >= issued_at {
            let own = match own_build(&view, set, &core.settings.listing, issued_at, valid_until) {
                Ok(own) => own.into_unsigned(),
                Err(e) => return refused(RefuseCode::BadSnapshot, e.to_string()),
            };
            if own.digest() == candidate.digest() {
                return sign(core, own);
            }
            if view.clock > issued_at {
                return refused(
                    RefuseCode::BadSnapshot,
                    format!(
                        "not the snapshot this registry builds from its state (clock {}, index {:?})",
                        view.clock,
                        view.last_applied.map(|l| l.index)
                    ),
                );
            }
        }
        if tokio::time::Instant::now() + REPLICATION_POLL > deadline {
            return refused(
                RefuseCode::BadSnapshot,
                format!(
                    "this registry's state (clock {}, index {:?}) does not give this snapshot",
                    view.clock,
                    view.last_applied.map(|l| l.index)
                ),
            );
        }
        tokio::time::sleep(REPLICATION_POLL).await;
    }
}

/// Signs this registry's own build (equal to the candidate).
fn sign(core: &RegistryCore, mut own: SignedSnapshot) -> Response {
    match own.sign_with(core.registries.set(), &core.key) {
        Ok(()) => match own.signatures().first() {
            Some(signature) => Response::Signature(*signature),
            None => refused(RefuseCode::Unavailable, "signature missing after signing"),
        },
        Err(e) => refused(RefuseCode::Unavailable, format!("signing: {e}")),
    }
}
