//! Positive-negative counter: per replica, a grow-only total of increments and one of
//! decrements; the value is their difference. A change ships the origin's new totals, so
//! applying it twice is harmless.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Merge;
use crate::clock::ReplicaId;

/// A PN counter.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PnCounter {
    /// Increments per replica.
    pub p: BTreeMap<ReplicaId, u64>,
    /// Decrements per replica.
    pub n: BTreeMap<ReplicaId, u64>,
}

impl PnCounter {
    /// The counter's value (saturating at the bounds of `i64`).
    pub fn value(&self) -> i64 {
        let p: i128 = self.p.values().map(|&v| i128::from(v)).sum();
        let n: i128 = self.n.values().map(|&v| i128::from(v)).sum();
        (p - n).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }

    /// `replica`'s totals `(increments, decrements)`.
    pub fn totals(&self, replica: ReplicaId) -> (u64, u64) {
        (
            self.p.get(&replica).copied().unwrap_or(0),
            self.n.get(&replica).copied().unwrap_or(0),
        )
    }

    /// Raises `replica`'s totals to at least `(p, n)`.
    pub fn apply_totals(&mut self, replica: ReplicaId, p: u64, n: u64) {
        if p > 0 {
            let e = self.p.entry(replica).or_insert(0);
            *e = (*e).max(p);
        }
        if n > 0 {
            let e = self.n.entry(replica).or_insert(0);
            *e = (*e).max(n);
        }
    }
}

impl Merge for PnCounter {
    fn merge(&mut self, other: &Self) {
        for (&r, &p) in &other.p {
            self.apply_totals(r, p, 0);
        }
        for (&r, &n) in &other.n {
            self.apply_totals(r, 0, n);
        }
    }
}
