//! A replica continuing as a new incarnation: the way it keeps I2 (one dot, one op) after it
//! may have lost part of its own history (see `docs/INVARIANTS.md`).
//!
//! The replica keeps everything it holds; only its id changes, so every op it makes from
//! now on has dots no peer can have seen. The old id becomes an origin like any other (its
//! ops stay, and peers forward back whatever of them they hold) and is retired from
//! membership: its frames are refused, and tombstone collection stops waiting for it once
//! every member has confirmed the removal.

use super::fence::FenceReason;
use super::replica::Replica;
use crate::clock::ReplicaId;

impl Replica {
    /// Continues as incarnation `incarnation` of the same region; returns the old id, now
    /// retired. Counters start afresh under the new id (the old totals stay).
    pub fn reincarnate(&mut self, incarnation: u32) -> ReplicaId {
        let old = self.id;
        self.id = ReplicaId::from_region(&self.name, incarnation);
        let held = self.ctx.vv().clone();
        // Until every member confirmed the removal, it blocks collection as a member that
        // acknowledged everything held here.
        self.removed.insert(old, Some(held));
        self.peers.remove(&self.id);
        // A fence waiting for a peer's copy of the old id's history waits, under the new
        // id, for any member's: the old id is an origin like any other now.
        if matches!(self.fence, Some(FenceReason::HistoryRegression { .. })) {
            self.fence = Some(FenceReason::LostTail);
        }
        old
    }

    /// Retires an earlier incarnation of this replica, as a manifest records it (recovery).
    pub(crate) fn retire(&mut self, old: ReplicaId) {
        self.mark_removed(old);
    }
}
