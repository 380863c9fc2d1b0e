//! The directory: the listed relays (descriptor, weight, flags) a proxy builds circuits from, and
//! its file form.
//!
//! A [`Directory`] comes from a verified registry snapshot ([`crate::VerifiedSnapshot`]), which
//! carries the registries' flags and measurements, or from an operator-assembled file: a JSON
//! object `{"version":1,"descriptors":["<hex>", ...]}`, each entry the hex of
//! [`SignedDescriptor::encode`]. Loading checks every descriptor's signature and refuses the whole
//! file on any bad entry. A file is not signed by registry keys and carries no flags: the operator
//! vouches for it, so each relay gets [`ListedRelay::vouched`] (its claimed bandwidth as its
//! weight, Guard, Exit if its policy allows some exit). It does no file I/O itself.

use std::collections::HashMap;

use serde::Deserialize;

use crate::descriptor::MAX_ENCODED_LEN;
use crate::listing::ListedRelay;
use crate::{Error, SignedDescriptor};

/// The directory file format version this crate writes and reads.
pub const DIRECTORY_VERSION: u64 = 1;

/// The most descriptors one directory may hold.
pub const MAX_DIRECTORY_ENTRIES: usize = 10_000;

/// The longest directory text accepted: room for [`MAX_DIRECTORY_ENTRIES`] maximal descriptors
/// (hex, quotes, separators, indentation) plus 64 KiB of other whitespace. About 64 MB.
pub const MAX_DIRECTORY_TEXT_LEN: usize =
    MAX_DIRECTORY_ENTRIES * (2 * MAX_ENCODED_LEN + 8) + 65_536;

/// A set of listed relays with distinct identities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    /// The relays, in file or snapshot order.
    relays: Vec<ListedRelay>,
}

/// The file's shape, before the descriptors are decoded.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    version: u64,
    descriptors: Vec<String>,
}

impl Directory {
    /// An operator-vouched directory of `descriptors` (each becomes [`ListedRelay::vouched`]:
    /// weight = claimed bandwidth, Guard, Exit if its policy allows some exit), refused if there
    /// are more than [`MAX_DIRECTORY_ENTRIES`] or two share an identity.
    pub fn new(descriptors: Vec<SignedDescriptor>) -> Result<Self, Error> {
        Self::from_relays(descriptors.into_iter().map(ListedRelay::vouched).collect())
    }

    /// A directory of `relays` as they are, refused if there are more than
    /// [`MAX_DIRECTORY_ENTRIES`] or two share an identity.
    pub fn from_relays(relays: Vec<ListedRelay>) -> Result<Self, Error> {
        check_count(relays.len())?;
        let mut seen: HashMap<[u8; 32], usize> = HashMap::with_capacity(relays.len());
        for (index, r) in relays.iter().enumerate() {
            if let Some(&first) = seen.get(r.identity()) {
                return Err(Error::DuplicateIdentity { index, first });
            }
            seen.insert(*r.identity(), index);
        }
        Ok(Self { relays })
    }

    /// The relays of a verified snapshot: distinct identities (sorted strictly) and at most
    /// `MAX_SNAPSHOT_DESCRIPTORS`, the directory limit, so what `from_relays` checks holds.
    pub(crate) fn from_verified(relays: Vec<ListedRelay>) -> Self {
        Self { relays }
    }

    /// The listed relays, in order.
    pub fn relays(&self) -> &[ListedRelay] {
        &self.relays
    }

    /// The relays' descriptors, in order.
    pub fn descriptors(&self) -> Vec<&SignedDescriptor> {
        self.relays.iter().map(|r| &r.descriptor).collect()
    }

    /// How many relays are listed.
    pub fn len(&self) -> usize {
        self.relays.len()
    }

    /// Whether no relay is listed.
    pub fn is_empty(&self) -> bool {
        self.relays.is_empty()
    }

    /// The file text: pretty-printed JSON with one descriptor per line. Only the descriptors are
    /// written: read back, each relay is [`ListedRelay::vouched`] (registry flags and
    /// measurements are not part of the file).
    pub fn to_text(&self) -> String {
        let entries: Vec<String> = self
            .relays
            .iter()
            .map(|r| format!("    \"{}\"", hex::encode(r.descriptor.encode())))
            .collect();
        let list = if entries.is_empty() {
            "[]".to_owned()
        } else {
            format!("[\n{}\n  ]", entries.join(",\n"))
        };
        format!("{{\n  \"version\": {DIRECTORY_VERSION},\n  \"descriptors\": {list}\n}}\n")
    }

    /// Parses and checks a directory file: [`Error::DirectoryFormat`] for text that is too long,
    /// not the expected JSON shape, the wrong version or too many entries;
    /// [`Error::DirectoryEntry`] naming the first entry that is not valid hex or not a valid
    /// signed descriptor; [`Error::DuplicateIdentity`] if two entries share an identity.
    /// Freshness is not checked: see [`Directory::fresh`].
    pub fn from_text(text: &str) -> Result<Self, Error> {
        if text.len() > MAX_DIRECTORY_TEXT_LEN {
            return Err(Error::DirectoryFormat(format!(
                "{} bytes, more than the limit of {MAX_DIRECTORY_TEXT_LEN}",
                text.len()
            )));
        }
        // serde would also take a struct from a JSON array; the format is an object.
        if !text.trim_start().starts_with('{') {
            return Err(Error::DirectoryFormat("expected a JSON object".into()));
        }
        let file: DirectoryFile =
            serde_json::from_str(text).map_err(|e| Error::DirectoryFormat(e.to_string()))?;
        if file.version != DIRECTORY_VERSION {
            return Err(Error::DirectoryFormat(format!(
                "unsupported version {} (expected {DIRECTORY_VERSION})",
                file.version
            )));
        }
        check_count(file.descriptors.len())?;
        let descriptors = file
            .descriptors
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let entry_error = |error| Error::DirectoryEntry {
                    index,
                    error: Box::new(error),
                };
                let bytes = hex::decode(entry).map_err(|_| {
                    entry_error(Error::Malformed {
                        what: "directory entry is not hex",
                    })
                })?;
                SignedDescriptor::decode(&bytes).map_err(entry_error)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Self::new(descriptors)
    }

    /// The descriptors that pass [`SignedDescriptor::check_fresh`] at `now_unix`, in order.
    pub fn fresh(&self, now_unix: u64) -> Vec<&SignedDescriptor> {
        self.fresh_relays(now_unix)
            .into_iter()
            .map(|r| &r.descriptor)
            .collect()
    }

    /// The relays whose descriptors pass [`SignedDescriptor::check_fresh`] at `now_unix`, in
    /// order.
    pub fn fresh_relays(&self, now_unix: u64) -> Vec<&ListedRelay> {
        self.relays
            .iter()
            .filter(|r| r.descriptor.check_fresh(now_unix).is_ok())
            .collect()
    }
}

fn check_count(n: usize) -> Result<(), Error> {
    if n > MAX_DIRECTORY_ENTRIES {
        return Err(Error::DirectoryFormat(format!(
            "{n} descriptors, more than the limit of {MAX_DIRECTORY_ENTRIES}"
        )));
    }
    Ok(())
}
