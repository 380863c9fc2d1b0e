//! Declared relay families, with the both-ways rule: two relays are one family only when each
//! lists the other in its signed descriptor.
//!
//! A one-sided declaration proves nothing (anyone may list any relay, and a relay claiming a
//! stranger must not be able to push that stranger off its clients' paths), so [`Families`]
//! keeps exactly the mutual pairs. The relation is pairwise and not made transitive: if A and
//! B list each other and B and C list each other but A and C do not, A and C are not related
//! (Tor's rule too). This module only answers "are these two related"; keeping them off one
//! path is the client's path selection.

use std::collections::{HashMap, HashSet};

use crate::{Descriptor, Directory};

/// The mutual family pairs among a set of descriptors.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Families {
    /// Each relay with at least one mutual member, and those members (sorted).
    related: HashMap<[u8; 32], Vec<[u8; 32]>>,
}

impl Families {
    /// The mutual pairs among `descriptors`: A and B are related when A's `family` lists B and
    /// B's lists A. Members that are not among `descriptors` never count. Linear in the total
    /// number of declared members (at most 32 per descriptor).
    pub fn new<'a>(descriptors: impl IntoIterator<Item = &'a Descriptor>) -> Self {
        let declared: HashMap<[u8; 32], HashSet<[u8; 32]>> = descriptors
            .into_iter()
            .map(|d| (d.identity, d.family.iter().copied().collect()))
            .collect();
        let mut related: HashMap<[u8; 32], Vec<[u8; 32]>> = HashMap::new();
        for (id, members) in &declared {
            let mut mutual: Vec<[u8; 32]> = members
                .iter()
                .filter(|m| *m != id && declared.get(*m).is_some_and(|back| back.contains(id)))
                .copied()
                .collect();
            if !mutual.is_empty() {
                mutual.sort_unstable();
                related.insert(*id, mutual);
            }
        }
        Self { related }
    }

    /// Whether `a` and `b` declared each other (never true for `a == b`).
    pub fn related(&self, a: &[u8; 32], b: &[u8; 32]) -> bool {
        self.members(a).binary_search(b).is_ok()
    }

    /// The relays that `identity` lists and that list it back, sorted; empty for a relay
    /// with no mutual member or not in the set.
    pub fn members(&self, identity: &[u8; 32]) -> &[[u8; 32]] {
        self.related.get(identity).map_or(&[], Vec::as_slice)
    }

    /// How many relays have at least one mutual member.
    pub fn len(&self) -> usize {
        self.related.len()
    }

    /// Whether no two relays are related.
    pub fn is_empty(&self) -> bool {
        self.related.is_empty()
    }
}

impl Directory {
    /// The mutual families among this directory's descriptors (see [`Families::new`]).
    pub fn families(&self) -> Families {
        Families::new(self.relays().iter().map(|r| r.descriptor.descriptor()))
    }
}
