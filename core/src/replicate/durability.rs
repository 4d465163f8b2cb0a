//! What of a replica's state is durable: the *durable vector* (I1 in `docs/INVARIANTS.md`).
//!
//! A replica applies changes in memory; its store logs them and later learns they are
//! durable. The replica records which entries of its vector each change raised, the store
//! says which WAL record holds them ([`Replica::note_logged`]) and how far the log is durable
//! ([`Replica::note_durable`]), and the durable vector follows:
//!
//! ```text
//!  apply op / adopt      raised: [(origin, seq)]           (since the last note_logged)
//!  note_logged(lsn)      pending += (lsn, origin, seq)     one entry per origin raised
//!  note_durable(lsn)     pending ≤ lsn popped ──► durable vector raised
//! ```
//!
//! Log order is apply order (one lock), so per origin the pending seqs rise with the lsn.
//! A replica not under a store (no tracking) counts everything as durable at once.

use std::collections::VecDeque;

use crate::causal::VersionVector;
use crate::clock::ReplicaId;

/// The durable part of a replica's vector.
#[derive(Debug, Default)]
pub(crate) struct Durability {
    tracking: bool,
    durable: VersionVector,
    raised: Vec<(ReplicaId, u64)>,
    pending: VecDeque<(u64, ReplicaId, u64)>,
    logged_lsn: u64,
    durable_lsn: u64,
}

impl Durability {
    /// From now on, changes count as durable only once the store says so; everything in
    /// `held` (what recovery rebuilt) is durable, up to record `lsn`.
    pub(crate) fn start(&mut self, held: &VersionVector, lsn: u64) {
        self.tracking = true;
        self.durable = held.clone();
        self.raised.clear();
        self.pending.clear();
        self.logged_lsn = lsn;
        self.durable_lsn = lsn;
    }

    /// Notes that the entry of `origin` was raised to `seq` in memory.
    pub(crate) fn raised(&mut self, origin: ReplicaId, seq: u64) {
        if !self.tracking {
            return;
        }
        match self.raised.iter_mut().find(|(o, _)| *o == origin) {
            Some(e) => e.1 = e.1.max(seq),
            None => self.raised.push((origin, seq)),
        }
    }

    /// The changes made since the last call are in WAL record `lsn`.
    pub(crate) fn logged(&mut self, lsn: u64) {
        if !self.tracking {
            return;
        }
        self.logged_lsn = self.logged_lsn.max(lsn);
        for (origin, seq) in self.raised.drain(..) {
            self.pending.push_back((lsn, origin, seq));
        }
    }

    /// Records up to `lsn` are durable.
    pub(crate) fn durable_through(&mut self, lsn: u64) {
        if !self.tracking || lsn <= self.durable_lsn {
            return;
        }
        self.durable_lsn = lsn;
        while let Some(&(at, origin, seq)) = self.pending.front() {
            if at > lsn {
                break;
            }
            self.durable.raise(origin, seq);
            self.pending.pop_front();
        }
    }

    /// The durable vector (`None`: not tracking, everything held counts).
    pub(crate) fn vector(&self) -> Option<&VersionVector> {
        self.tracking.then_some(&self.durable)
    }

    /// The last record holding changes of this replica.
    pub(crate) fn logged_lsn(&self) -> u64 {
        self.logged_lsn
    }

    /// Whether changes were applied that no record holds yet (they must not be seen).
    pub(crate) fn has_unlogged(&self) -> bool {
        self.tracking && !self.raised.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ReplicaId = ReplicaId(1);
    const B: ReplicaId = ReplicaId(2);

    #[test]
    fn the_durable_vector_follows_the_records_that_became_durable() {
        let mut d = Durability::default();
        d.start(&VersionVector::new(), 0);
        d.raised(A, 1);
        d.raised(A, 2);
        d.raised(B, 7);
        d.logged(1);
        d.raised(A, 3);
        d.logged(2);
        assert_eq!(d.vector().map(|v| v.get(A)), Some(0));
        d.durable_through(1);
        let v = d.vector().cloned().unwrap_or_default();
        assert_eq!((v.get(A), v.get(B)), (2, 7));
        d.durable_through(2);
        assert_eq!(d.vector().map(|v| v.get(A)), Some(3));
        assert_eq!(d.logged_lsn(), 2);
    }

    #[test]
    fn without_tracking_nothing_is_pending() {
        let mut d = Durability::default();
        d.raised(A, 1);
        assert!(d.vector().is_none());
        assert!(!d.has_unlogged());
    }
}
