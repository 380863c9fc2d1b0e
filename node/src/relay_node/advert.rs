//! What a relay advertises now, and the descriptor file that says it. Shared between the
//! `RelayNode` (which reports it) and the reachability monitor (which changes it); it does not
//! decide anything itself.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use braid_directory::{Descriptor, SignedDescriptor};

use crate::error::NodeError;

/// Whether the relay is advertised now.
#[derive(Debug, Clone)]
pub(crate) enum Status {
    /// The descriptor file holds this descriptor.
    Advertised {
        /// The advertised descriptor (confirmed addresses only when tested).
        descriptor: Box<SignedDescriptor>,
    },
    /// No descriptor file.
    NotAdvertised {
        /// A short reason for the ready line.
        why: String,
    },
}

/// The relay's advertising state and what it needs to sign a descriptor again.
pub(crate) struct Advert {
    /// The descriptor signed at start, with every claimed address (its exit policy replaced
    /// by a reload).
    template: Mutex<Descriptor>,
    signing: ed25519_dalek::SigningKey,
    lifetime_secs: u64,
    status: Mutex<Status>,
}

impl std::fmt::Debug for Advert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the signing key.
        f.debug_struct("Advert")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Advert {
    pub(crate) fn new(
        template: Descriptor,
        signing: ed25519_dalek::SigningKey,
        lifetime_secs: u64,
        status: Status,
    ) -> Self {
        Self {
            template: Mutex::new(template),
            signing,
            lifetime_secs,
            status: Mutex::new(status),
        }
    }

    /// The addresses claimed at start (tested or not).
    pub(crate) fn claimed(&self) -> Vec<String> {
        self.template().addresses
    }

    fn template(&self) -> Descriptor {
        self.template
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the exit policy and, while advertised, signs the descriptor again with it
    /// (same addresses, fresh validity); returns that descriptor (`None`: not advertised).
    pub(crate) fn set_exit_policy(
        &self,
        policy: braid_directory::ExitPolicy,
    ) -> Result<Option<SignedDescriptor>, NodeError> {
        self.template
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .exit_policy = policy;
        let Some(current) = self.advertised() else {
            return Ok(None);
        };
        let descriptor = self.sign_with(current.descriptor().addresses.clone())?;
        self.set(Status::Advertised {
            descriptor: Box::new(descriptor.clone()),
        });
        Ok(Some(descriptor))
    }

    fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, status: Status) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// The advertised descriptor, if any.
    pub(crate) fn advertised(&self) -> Option<SignedDescriptor> {
        match self.status() {
            Status::Advertised { descriptor } => Some(*descriptor),
            Status::NotAdvertised { .. } => None,
        }
    }

    /// Why nothing is advertised (`None` while advertised).
    pub(crate) fn why_not(&self) -> Option<String> {
        match self.status() {
            Status::Advertised { .. } => None,
            Status::NotAdvertised { why } => Some(why),
        }
    }

    /// The advertised descriptor signed again now (fresh validity period, same addresses), for
    /// publication to the registries; `Err` says why nothing is advertised.
    pub(crate) fn fresh(&self) -> Result<SignedDescriptor, String> {
        match self.status() {
            Status::Advertised { descriptor } => self
                .sign_with(descriptor.descriptor().addresses.clone())
                .map_err(|e| e.to_string()),
            Status::NotAdvertised { why } => Err(why),
        }
    }

    /// The template signed again with these addresses and a fresh validity period.
    pub(crate) fn sign_with(&self, addresses: Vec<String>) -> Result<SignedDescriptor, NodeError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(Descriptor {
            addresses,
            published: now,
            expires: now + self.lifetime_secs,
            ..self.template()
        }
        .sign(&self.signing)?)
    }
}

/// Writes a signed descriptor as hex text, through a temporary file and a rename so readers
/// never see half of it.
pub(crate) fn write_descriptor_file(
    path: &Path,
    descriptor: &SignedDescriptor,
) -> Result<(), NodeError> {
    let text = format!("{}\n", hex::encode(descriptor.encode()));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| NodeError::Io {
            context: format!("writing descriptor {}", path.display()),
            source,
        })
}

/// Removes a descriptor file; a missing file is fine.
pub(crate) fn remove_descriptor_file(path: &Path) -> Result<(), NodeError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(NodeError::Io {
            context: format!("removing descriptor {}", path.display()),
            source: e,
        }),
        _ => Ok(()),
    }
}
