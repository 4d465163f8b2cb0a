//! Causality: [`Dot`]s name single changes, [`VersionVector`]s summarise which changes a
//! replica holds, and [`CausalContext`] adds the changes that arrived out of order (the "dot
//! cloud") so that duplicates are recognised and gaps can be reported.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::clock::ReplicaId;

/// One change: the `seq`-th change made by `replica` (seq starts at 1, contiguous).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that made the change.
    pub replica: ReplicaId,
    /// Its sequence number at that replica.
    pub seq: u64,
}

/// Vector entries from here up mark an origin whose history was given up: a retired origin
/// once every member confirmed its retirement and a replica held everything any member held
/// of it. The entry is `GIVEN_UP + h`, `h` being the seq up to which that history is held
/// (no replica makes 2^62 changes, so every real seq is below it): every seq of the origin
/// counts as seen (and, where absent, removed), so a write that never left the retired
/// region, coming back in a backup or from its old disk, is never taken for news (I4; see
/// `docs/DECISIONS.md`, "A retired incarnation's unreplicated writes").
pub const GIVEN_UP: u64 = 1 << 62;

/// Per origin replica, the highest sequence number such that every change up to it is held.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct VersionVector(BTreeMap<ReplicaId, u64>);

impl VersionVector {
    /// The empty vector.
    pub fn new() -> VersionVector {
        VersionVector::default()
    }

    /// Highest contiguous seq held from `replica` (0 when none).
    pub fn get(&self, replica: ReplicaId) -> u64 {
        self.0.get(&replica).copied().unwrap_or(0)
    }

    /// Whether the change `dot` is covered.
    pub fn contains(&self, dot: Dot) -> bool {
        dot.seq <= self.get(dot.replica)
    }

    /// Raises the entry for `replica` to at least `seq`.
    pub fn raise(&mut self, replica: ReplicaId, seq: u64) {
        if seq > 0 {
            let e = self.0.entry(replica).or_insert(0);
            *e = (*e).max(seq);
        }
    }

    /// Lowers the entry for `replica` to at most `seq`.
    pub fn lower_to(&mut self, replica: ReplicaId, seq: u64) {
        if let Some(e) = self.0.get_mut(&replica) {
            *e = (*e).min(seq);
            if *e == 0 {
                self.0.remove(&replica);
            }
        }
    }

    /// Pointwise maximum with `other`.
    pub fn merge(&mut self, other: &VersionVector) {
        for (&r, &s) in &other.0 {
            self.raise(r, s);
        }
    }

    /// Pointwise minimum with `other` (an origin missing from either side counts as 0).
    pub fn meet(&self, other: &VersionVector) -> VersionVector {
        let mut out = BTreeMap::new();
        for (&r, &s) in &self.0 {
            let m = s.min(other.get(r));
            if m > 0 {
                out.insert(r, m);
            }
        }
        VersionVector(out)
    }

    /// Whether every entry of `other` is covered by this vector.
    pub fn dominates(&self, other: &VersionVector) -> bool {
        other.0.iter().all(|(&r, &s)| self.get(r) >= s)
    }

    /// Number of changes this vector covers that `other` does not; an origin given up on
    /// either side ([`GIVEN_UP`]) has nothing left to send, so it counts 0.
    pub fn count_ahead_of(&self, other: &VersionVector) -> u64 {
        self.0
            .iter()
            .filter(|&(&r, &s)| s < GIVEN_UP && other.get(r) < GIVEN_UP)
            .map(|(&r, &s)| s.saturating_sub(other.get(r)))
            .sum()
    }

    /// For an origin whose history was given up ([`GIVEN_UP`]), the seq up to which it is
    /// held; `None` for any other.
    pub fn given_up(&self, replica: ReplicaId) -> Option<u64> {
        self.get(replica).checked_sub(GIVEN_UP)
    }

    /// What this vector says is held: a given-up origin at the seq it is held up to.
    pub fn held(&self) -> VersionVector {
        self.iter()
            .map(|(r, s)| (r, s.checked_sub(GIVEN_UP).unwrap_or(s)))
            .collect()
    }

    /// `(origin, seq)` entries in origin order.
    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.0.iter().map(|(&r, &s)| (r, s))
    }

    /// Number of origins with a non-zero entry.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no origin has an entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Drops zero entries (a decoded vector may carry them); keeps equality structural.
    pub(crate) fn normalize(&mut self) {
        self.0.retain(|_, s| *s > 0);
    }
}

impl FromIterator<(ReplicaId, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (ReplicaId, u64)>>(iter: I) -> Self {
        let mut vv = VersionVector::new();
        for (r, s) in iter {
            vv.raise(r, s);
        }
        vv
    }
}

/// A run of missing changes from one origin: seqs `from..=to` are not held although a later
/// change from the same origin is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Gap {
    /// The origin replica.
    pub origin: ReplicaId,
    /// First missing seq.
    pub from: u64,
    /// Last missing seq.
    pub to: u64,
}

/// A run of one origin's seqs, `from..=to`, that a replica holds (out of order: above its
/// vector entry).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct SeqRun {
    /// The origin replica.
    pub origin: ReplicaId,
    /// First seq held.
    pub from: u64,
    /// Last seq held.
    pub to: u64,
}

/// Adds `run` to `runs` (sorted by origin and seq, no two of an origin touching), merging
/// it with the runs it overlaps or touches. Returns whether `runs` changed.
pub(crate) fn add_run(runs: &mut Vec<SeqRun>, run: SeqRun) -> bool {
    let same = |r: &SeqRun| r.origin == run.origin;
    if runs
        .iter()
        .any(|r| same(r) && r.from <= run.from && run.to <= r.to)
    {
        return false;
    }
    let mut of_origin: Vec<SeqRun> = runs.iter().filter(|r| same(r)).copied().collect();
    of_origin.push(run);
    of_origin.sort();
    let mut merged: Vec<SeqRun> = Vec::with_capacity(of_origin.len());
    for r in of_origin {
        match merged.last_mut() {
            Some(last) if r.from <= last.to.saturating_add(1) => last.to = last.to.max(r.to),
            _ => merged.push(r),
        }
    }
    runs.retain(|r| !same(r));
    let at = runs.partition_point(|r| r.origin < run.origin);
    runs.splice(at..at, merged);
    true
}

/// What a replica has seen: its contiguous [`VersionVector`] plus the dots that arrived ahead
/// of a gap.
#[derive(Clone, Default, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalContext {
    vv: VersionVector,
    cloud: BTreeMap<ReplicaId, BTreeSet<u64>>,
}

impl CausalContext {
    /// Nothing seen.
    pub fn new() -> CausalContext {
        CausalContext::default()
    }

    /// A context that has seen exactly what `vv` covers.
    pub fn from_vv(vv: VersionVector) -> CausalContext {
        CausalContext {
            vv,
            cloud: BTreeMap::new(),
        }
    }

    /// The contiguous part.
    pub fn vv(&self) -> &VersionVector {
        &self.vv
    }

    /// Whether `dot` was seen.
    pub fn contains(&self, dot: Dot) -> bool {
        self.vv.contains(dot)
            || self
                .cloud
                .get(&dot.replica)
                .is_some_and(|c| c.contains(&dot.seq))
    }

    /// Records `dot` as seen; returns false when it already was.
    pub fn insert(&mut self, dot: Dot) -> bool {
        if self.contains(dot) {
            return false;
        }
        let next = self.vv.get(dot.replica) + 1;
        if dot.seq == next {
            self.vv.raise(dot.replica, dot.seq);
            self.compact(dot.replica);
        } else {
            self.cloud.entry(dot.replica).or_default().insert(dot.seq);
        }
        true
    }

    /// Adopts everything `vv` covers (after a complete state transfer).
    pub fn adopt(&mut self, vv: &VersionVector) {
        self.vv.merge(vv);
        let origins: Vec<ReplicaId> = self.cloud.keys().copied().collect();
        for r in origins {
            self.compact(r);
        }
    }

    fn compact(&mut self, replica: ReplicaId) {
        let Some(cloud) = self.cloud.get_mut(&replica) else {
            return;
        };
        let mut top = self.vv.get(replica);
        while let Some(&first) = cloud.first() {
            if first <= top {
                cloud.pop_first();
            } else if first == top + 1 {
                top = first;
                cloud.pop_first();
            } else {
                break;
            }
        }
        self.vv.raise(replica, top);
        if cloud.is_empty() {
            self.cloud.remove(&replica);
        }
    }

    /// The runs of changes missing below a change that is held.
    pub fn gaps(&self) -> Vec<Gap> {
        let mut out = Vec::new();
        for (&origin, seqs) in &self.cloud {
            let mut expect = self.vv.get(origin) + 1;
            for &s in seqs {
                if s > expect {
                    out.push(Gap {
                        origin,
                        from: expect,
                        to: s - 1,
                    });
                }
                expect = s + 1;
            }
        }
        out
    }

    /// The highest dot held out of order of each origin that has any.
    pub fn cloud_tops(&self) -> impl Iterator<Item = Dot> + '_ {
        self.cloud
            .iter()
            .filter_map(|(&replica, seqs)| seqs.last().map(|&seq| Dot { replica, seq }))
    }

    /// Number of dots held out of order.
    pub fn cloud_len(&self) -> usize {
        self.cloud.values().map(BTreeSet::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(r: u64, seq: u64) -> Dot {
        Dot {
            replica: ReplicaId(r),
            seq,
        }
    }

    #[test]
    fn out_of_order_dots_fill_in_and_gaps_are_reported() {
        let mut cx = CausalContext::new();
        assert!(cx.insert(dot(1, 1)));
        assert!(cx.insert(dot(1, 4)));
        assert!(cx.insert(dot(1, 6)));
        assert!(!cx.insert(dot(1, 4)), "duplicate");
        assert_eq!(cx.vv().get(ReplicaId(1)), 1);
        assert_eq!(
            cx.gaps(),
            vec![
                Gap {
                    origin: ReplicaId(1),
                    from: 2,
                    to: 3
                },
                Gap {
                    origin: ReplicaId(1),
                    from: 5,
                    to: 5
                }
            ]
        );
        cx.insert(dot(1, 2));
        cx.insert(dot(1, 3));
        assert_eq!(cx.vv().get(ReplicaId(1)), 4);
        cx.insert(dot(1, 5));
        assert_eq!(cx.vv().get(ReplicaId(1)), 6);
        assert_eq!(cx.cloud_len(), 0);
        assert!(cx.gaps().is_empty());
    }

    #[test]
    fn adopting_a_vector_absorbs_the_cloud_below_and_next_to_it() {
        let mut cx = CausalContext::new();
        cx.insert(dot(2, 3));
        cx.insert(dot(2, 7));
        cx.adopt(&[(ReplicaId(2), 5)].into_iter().collect());
        assert_eq!(cx.vv().get(ReplicaId(2)), 5);
        assert!(cx.contains(dot(2, 7)));
        assert!(!cx.contains(dot(2, 6)));
    }

    #[test]
    fn meet_and_dominates() {
        let a: VersionVector = [(ReplicaId(1), 5), (ReplicaId(2), 2)].into_iter().collect();
        let b: VersionVector = [(ReplicaId(1), 3), (ReplicaId(3), 9)].into_iter().collect();
        let m = a.meet(&b);
        assert_eq!(m.get(ReplicaId(1)), 3);
        assert_eq!(m.get(ReplicaId(2)), 0);
        assert!(a.dominates(&m) && b.dominates(&m));
        assert!(!a.dominates(&b));
        assert_eq!(a.count_ahead_of(&b), 2 + 2);
    }

    #[test]
    fn a_given_up_origin_covers_every_seq_reads_as_held_and_counts_nothing_ahead() {
        let (gone, live) = (ReplicaId(1), ReplicaId(2));
        let marked: VersionVector = [(gone, GIVEN_UP + 3), (live, 4)].into_iter().collect();
        let behind: VersionVector = [(gone, 2), (live, 1)].into_iter().collect();
        assert!(marked.contains(Dot {
            replica: gone,
            seq: 1 << 40
        }));
        assert_eq!(marked.given_up(gone), Some(3));
        assert_eq!(marked.given_up(live), None);
        assert_eq!(marked.held(), [(gone, 3), (live, 4)].into_iter().collect());
        // Only the live origin's ops are pending either way.
        assert_eq!(marked.count_ahead_of(&behind), 3);
        assert_eq!(behind.count_ahead_of(&marked), 0);
        // A mark wins a merge: the origin stays given up.
        let mut m = behind.clone();
        m.merge(&marked);
        assert_eq!(m.given_up(gone), Some(3));
        let mut cx = CausalContext::new();
        cx.insert(dot(1, 5));
        cx.adopt(&marked);
        assert_eq!(
            cx.cloud_len(),
            0,
            "the mark covers what was held out of order"
        );
    }

    #[test]
    fn runs_added_merge_with_what_they_touch_and_stay_sorted() {
        let (a, b) = (ReplicaId(1), ReplicaId(2));
        let run = |origin, from, to| SeqRun { origin, from, to };
        let mut runs = Vec::new();
        assert!(add_run(&mut runs, run(b, 5, 6)));
        assert!(add_run(&mut runs, run(a, 9, 9)));
        assert!(add_run(&mut runs, run(a, 3, 4)));
        assert!(!add_run(&mut runs, run(a, 3, 3)), "held already");
        assert_eq!(runs, [run(a, 3, 4), run(a, 9, 9), run(b, 5, 6)]);
        assert!(
            add_run(&mut runs, run(a, 5, 8)),
            "fills the hole between two"
        );
        assert_eq!(runs, [run(a, 3, 9), run(b, 5, 6)]);
        assert!(add_run(&mut runs, run(b, 1, 2)));
        assert_eq!(runs, [run(a, 3, 9), run(b, 1, 2), run(b, 5, 6)]);
    }
}
