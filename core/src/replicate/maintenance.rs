//! Periodic work of a [`Replica`] ([`Replica::tick`]): expiry of sessions whose deadline
//! passed, resending to peers that stopped acknowledging, and tombstone collection by causal
//! stability (see `gc.rs`); and membership removal.

use super::change::Change;
use super::gc::Tomb;
use super::replica::Replica;
use crate::causal::{VersionVector, GIVEN_UP};
use crate::clock::ReplicaId;
use crate::crdt::{OpKind, SessionId};
use crate::error::{Error, Result};

impl Replica {
    /// Periodic maintenance; call it every few hundred ms (the store and the Erlang server
    /// do). Returns the changes it made (ends of expired sessions) to make durable.
    pub fn tick(&mut self) -> Vec<Change> {
        let mut changes = self.expire_due();
        let now = self.now_ms();
        let resend_after = self.config.resend_after_ms;
        for peer in self.peers.values_mut() {
            if peer.in_flight() > 0 && now.saturating_sub(peer.last_progress_ms) >= resend_after {
                peer.rewind(now);
            }
        }
        self.collect_garbage(&mut changes);
        changes.shrink_to_fit();
        changes
    }

    /// Ends every session whose deadline has passed (each end is an op, replicated like any
    /// other, so the session is gone everywhere).
    /// A fenced replica ends nothing: it may not hold its own newest seq yet, and an op now
    /// could take a dot a peer already holds (I2). Its reads are refused meanwhile, and what
    /// came due is ended once the fence lifts.
    pub fn expire_due(&mut self) -> Vec<Change> {
        if self.fence.is_some() {
            return Vec::new();
        }
        let now = self.now_ms();
        let due: Vec<SessionId> = self
            .expiry
            .iter()
            .take_while(|(deadline, _)| *deadline <= now)
            .map(|(_, id)| id.clone())
            .collect();
        let mut changes = Vec::new();
        for id in due {
            if self
                .sessions
                .get(&id)
                .is_some_and(|s| !s.is_ended() && s.is_expired(now))
            {
                changes.push(Change::Op(self.commit_local(id, OpKind::End)));
                self.expired_total += 1;
            }
        }
        changes
    }

    /// Removes `id` from membership for good: its frames are refused from now on, and
    /// tombstones no longer wait for it (once every member confirmed the removal). A region
    /// rebuilt after removal must come back as a new incarnation.
    ///
    /// # Errors
    /// [`Error::OwnFrame`] when `id` is this replica.
    pub fn remove_member(&mut self, id: ReplicaId) -> Result<Change> {
        if id == self.id {
            return Err(Error::OwnFrame);
        }
        self.mark_removed(id);
        Ok(Change::Removed(id))
    }

    pub(crate) fn mark_removed(&mut self, id: ReplicaId) {
        if id == self.id || self.removed.contains_key(&id) {
            return;
        }
        // What the other members hold of it (its own vector is its unreplicated writes).
        let reported = self
            .peers
            .iter()
            .filter(|(p, _)| **p != id)
            .map(|(_, p)| p.acked.get(id));
        let top = reported.max().unwrap_or(0);
        self.retired_held
            .raise(id, top.checked_sub(GIVEN_UP).unwrap_or(top));
        let last = self.peers.remove(&id).map(|p| p.acked).unwrap_or_default();
        self.removed.insert(id, Some(last));
    }

    /// Adopts removals member `from` reports: an operator's retirement, or a region's own
    /// earlier incarnation, spreading through the cluster. (Only an admitted member's
    /// message gets here: a stranger's list removes nothing.) A report that names this
    /// replica is recorded for the status: its peers no longer take its frames.
    pub(crate) fn adopt_removals(
        &mut self,
        from: ReplicaId,
        removed: &[ReplicaId],
        changes: &mut Vec<Change>,
    ) {
        for &id in removed {
            if id == self.id {
                self.removed_by = Some(from);
            } else if !self.removed.contains_key(&id) {
                self.mark_removed(id);
                changes.push(Change::Removed(id));
            }
        }
        self.log_retired_held(changes);
    }

    /// Origins in our vector that are neither us, peers, nor removed.
    pub(crate) fn unknown_origins(&self) -> Vec<ReplicaId> {
        self.ctx
            .vv()
            .iter()
            .map(|(r, _)| r)
            .filter(|r| {
                *r != self.id && !self.peers.contains_key(r) && !self.removed.contains_key(r)
            })
            .collect()
    }

    /// Forgets the stable ends whose retention has passed. The queue is in the order the
    /// ends became stable, close to their age order; one that is due behind a younger one
    /// waits for it, which only delays collection.
    ///
    /// Once a session is forgotten, the op log no longer supplies anything at or below the
    /// stable frontier: an old op of that session (a touch concurrent with its end) would
    /// bring it back at a replica that never saw the end, a new incarnation or a restored
    /// one. Every member holds everything below the frontier, so only such a replica needs
    /// it, and it gets a state transfer instead, which does not hold the session (I4).
    fn forget_retained_ends(&mut self) {
        let now = self.now_ms();
        let mut newest_end = None;
        while let Some((due, _)) = self.retained_ends.front() {
            if *due > now {
                break;
            }
            let Some((_, sid)) = self.retained_ends.pop_front() else {
                break;
            };
            if let Some(stamp) = self.sessions.get(&sid).and_then(|s| s.ended) {
                self.sessions.remove(&sid);
                self.abort_transfers_past(&sid);
                self.dirty.insert(sid);
                newest_end = newest_end.max(Some(stamp.ts));
            }
        }
        if let Some(ts) = newest_end {
            let frontier = self.stability.frontier().clone();
            self.log.raise_floor(&frontier, ts);
        }
    }

    /// Advances the stable frontier and forgets the tombstones at or below it; gives up
    /// confirmed-removed origins first (its changes go to `changes`).
    fn collect_garbage(&mut self, changes: &mut Vec<Change>) {
        // A removal is confirmed once every member reports it.
        let mut confirmed = false;
        for (id, last) in self.removed.iter_mut() {
            if last.is_some() && self.peers.values().all(|p| p.removed_view.contains(id)) {
                *last = None;
                confirmed = true;
            }
        }
        if confirmed {
            // Epochs recorded while the removed replica counted may wait for ops only it
            // ever held; they would block every later epoch for good.
            self.stability.forget_epochs();
        }
        self.give_up_retired(changes);
        // A confirmed-removed origin makes no more ops: an entry of it whose tombstone is
        // gone from its session (overwritten, or merged away) may wait for a dot no
        // vector will ever cover, lost with the origin's disk.
        for (id, last) in &self.removed {
            if last.is_none() {
                self.tombstones.prune_gone(*id, &self.sessions);
            }
        }
        // Only what is durable here counts as held here (I1): a crash cannot take back
        // an op whose tombstone was collected on the strength of it.
        let own = self.durable_vv().clone();
        let (s, m) = if self.unknown_origins().is_empty() {
            let acked = self
                .peers
                .values()
                .map(|p| &p.acked)
                .chain(self.removed.values().flatten());
            let mut s = own.clone();
            let mut m = VersionVector::new();
            for v in acked {
                s = s.meet(v);
                m.merge(v);
            }
            (s, m)
        } else {
            (VersionVector::new(), VersionVector::new())
        };
        self.stability.advance(&own, s, m);
        let frontier = self.stability.frontier().clone();
        for (dot, sid, tomb) in self.tombstones.take_stable(&frontier) {
            let Some(state) = self.sessions.get_mut(&sid) else {
                continue;
            };
            match &tomb {
                Tomb::End => {
                    if let Some(stamp) = state.ended {
                        let due = stamp
                            .ts
                            .millis()
                            .saturating_add(self.config.end_retention_ms);
                        self.retained_ends.push_back((due, sid));
                    }
                }
                Tomb::Field { key, stamp } => {
                    state.collect_field(key, *stamp);
                    self.dirty.insert(sid);
                }
                Tomb::SetRemove { key, adds } => {
                    // The removed adds must be known here, or a late copy of one would be
                    // taken for new once its tombstone is gone.
                    if adds.iter().all(|d| self.ctx.contains(*d)) {
                        state.collect_set_removal(key, adds);
                        self.dirty.insert(sid);
                    } else {
                        self.tombstones.restore(dot, sid, tomb);
                    }
                }
            }
        }
        self.forget_retained_ends();
    }
}
