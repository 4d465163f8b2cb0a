//! Positive-negative counter: per replica, a grow-only total of increments and one of
//! decrements; the value is their difference. A change ships the origin's new totals, so
//! applying it twice is harmless. Each replica's totals carry the seq of the op that set
//! them (its dot), so a causal merge can tell a contribution the other side has seen and
//! dropped from one it never saw.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Merge;
use crate::causal::Dot;
use crate::clock::ReplicaId;

/// A PN counter.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PnCounter {
    /// Increments per replica.
    pub p: BTreeMap<ReplicaId, u64>,
    /// Decrements per replica.
    pub n: BTreeMap<ReplicaId, u64>,
    /// Per replica, the seq of its counter op that set its totals (absent: not known, as in
    /// states read from format-1 files).
    pub seqs: BTreeMap<ReplicaId, u64>,
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

    /// Applies the totals `(p, n)` that op `dot` (of this counter) carries.
    pub fn apply_op(&mut self, dot: Dot, p: u64, n: u64) {
        self.apply_totals(dot.replica, p, n);
        let e = self.seqs.entry(dot.replica).or_insert(0);
        *e = (*e).max(dot.seq);
    }

    /// The dots of the ops behind each replica's totals (known ones only).
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.seqs
            .iter()
            .map(|(&replica, &seq)| Dot { replica, seq })
    }

    /// Drops `replica`'s contribution (a causal merge found it removed).
    pub fn drop_replica(&mut self, replica: ReplicaId) {
        self.p.remove(&replica);
        self.n.remove(&replica);
        self.seqs.remove(&replica);
    }

    /// Whether no replica contributes.
    pub fn is_empty(&self) -> bool {
        self.p.is_empty() && self.n.is_empty()
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
        for (&r, &seq) in &other.seqs {
            let e = self.seqs.entry(r).or_insert(0);
            *e = (*e).max(seq);
        }
    }
}
