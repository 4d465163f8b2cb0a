//! Add-wins set (an observed-remove set): every add is tagged with its dot; a remove deletes
//! only the dots it observed, so an add concurrent with a remove survives. Removed add dots
//! are kept as tombstones, each with the dot of the remove that removed it (so a late add of a
//! removed dot stays removed) until the remove is causally stable.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::Merge;
use crate::causal::Dot;

/// An add-wins set of byte strings.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AwSet {
    /// Live elements and the dots of the adds that put them there.
    pub entries: BTreeMap<Bytes, BTreeSet<Dot>>,
    /// Removed add dots (not yet collected), each with the dot of the remove.
    pub removed: BTreeMap<Dot, Dot>,
}

impl AwSet {
    /// Adds `elem` under `dot` (ignored when `dot` was removed).
    pub fn add(&mut self, elem: Bytes, dot: Dot) {
        if !self.removed.contains_key(&dot) {
            self.entries.entry(elem).or_default().insert(dot);
        }
    }

    /// Removes the adds `dots` of `elem`; `by` is the remove's own dot.
    pub fn remove(&mut self, elem: &Bytes, dots: &[Dot], by: Dot) {
        for &d in dots {
            let e = self.removed.entry(d).or_insert(by);
            *e = (*e).max(by);
        }
        if let Some(live) = self.entries.get_mut(elem) {
            for d in dots {
                live.remove(d);
            }
            if live.is_empty() {
                self.entries.remove(elem);
            }
        }
    }

    /// The dots currently keeping `elem` in the set.
    pub fn dots_of(&self, elem: &[u8]) -> Vec<Dot> {
        self.entries
            .get(elem)
            .map(|d| d.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Whether `elem` is in the set.
    pub fn contains(&self, elem: &[u8]) -> bool {
        self.entries.contains_key(elem)
    }

    /// The live elements in order.
    pub fn elements(&self) -> impl Iterator<Item = &Bytes> {
        self.entries.keys()
    }

    /// Forgets the removal tombstones of the add dots `dots` (they are causally stable).
    pub fn collect(&mut self, dots: &[Dot]) {
        for d in dots {
            self.removed.remove(d);
        }
    }
}

impl Merge for AwSet {
    fn merge(&mut self, other: &Self) {
        for (&d, &by) in &other.removed {
            let e = self.removed.entry(d).or_insert(by);
            *e = (*e).max(by);
        }
        for (elem, dots) in &other.entries {
            let live = self.entries.entry(elem.clone()).or_default();
            live.extend(dots.iter().copied());
        }
        let removed = &self.removed;
        self.entries.retain(|_, dots| {
            dots.retain(|d| !removed.contains_key(d));
            !dots.is_empty()
        });
    }
}
