//! Rebuilding a [`Replica`] from durable state (snapshot entries, then replayed changes), and
//! holding back its own ops from peers until they are durable, so that a crash can never make
//! it reuse a sequence number a peer already saw.

use super::replica::Replica;
use crate::causal::CausalContext;
use crate::clock::{ReplicaId, Timestamp};
use crate::crdt::{SessionId, SessionState};

impl Replica {
    /// What this replica has seen (contiguous vector and out-of-order dots).
    pub fn context(&self) -> &CausalContext {
        &self.ctx
    }

    /// Replicas removed from membership.
    pub fn removed_members(&self) -> Vec<ReplicaId> {
        self.removed.keys().copied().collect()
    }

    /// Restores the causal context, clock and removed members saved in a snapshot. The op
    /// log starts empty above the restored vector: a peer that needs older ops gets a state
    /// transfer.
    #[doc(hidden)]
    pub fn restore_meta(
        &mut self,
        context: CausalContext,
        clock: Timestamp,
        removed: &[ReplicaId],
    ) {
        self.clock.observe(clock);
        self.ctx = context;
        let vv = self.ctx.vv().clone();
        self.log.raise_floor(&vv, clock);
        for &id in removed {
            self.mark_removed(id);
        }
        self.own_durable = self.ctx.vv().get(self.id);
    }

    /// Puts a session's state as a snapshot holds it (replacing what was there).
    #[doc(hidden)]
    ///
    /// The session's digest is set aside and the digest tree built once, from all of them in
    /// order, by [`Replica::finish_restore`]: a million random inserts into the tree were a
    /// fifth of a recovery's time.
    pub fn restore_session(&mut self, id: SessionId, state: SessionState) {
        let before =
            self.sessions
                .get(&id)
                .and_then(|s| if s.is_ended() { None } else { s.expires_at });
        let after = if state.is_ended() {
            None
        } else {
            state.expires_at
        };
        self.tombstones.record_state(&id, &state);
        let digest = crate::digest::session_digest(&id, &state);
        self.sessions.insert(id.clone(), state);
        if before != after {
            if let Some(d) = before {
                self.expiry.remove(&(d, id.clone()));
            }
            if let Some(d) = after {
                self.expiry.insert((d, id.clone()));
            }
        }
        self.restored_digests.push((id, digest));
    }

    /// Builds the digest tree from the sessions restored since the last call (see
    /// [`Replica::restore_session`]); call it once the snapshots are loaded.
    #[doc(hidden)]
    pub fn finish_restore(&mut self) {
        let mut restored = std::mem::take(&mut self.restored_digests);
        // The last word on an id wins: a delta's state over the base's, a collection over both.
        restored.reverse();
        restored.sort_by(|a, b| a.0.cmp(&b.0));
        restored.dedup_by(|later, earlier| later.0 == earlier.0);
        self.digest.load(restored);
    }

    /// Drops a session a later snapshot says was collected.
    #[doc(hidden)]
    pub fn forget_session(&mut self, id: &SessionId) {
        if let Some(st) = self.sessions.remove(id) {
            if let (Some(d), false) = (st.expires_at, st.is_ended()) {
                self.expiry.remove(&(d, id.clone()));
            }
            self.restored_digests
                .push((id.clone(), crate::digest::Digest(0)));
            self.digest.update(id, crate::digest::Digest(0));
            self.dirty.insert(id.clone());
        }
    }

    /// From now on, this replica's own ops are shipped to peers only once
    /// [`Replica::release_own_ops_through`] says they are durable.
    pub fn hold_own_ops_until_durable(&mut self) {
        self.hold_own = true;
        self.own_durable = self.ctx.vv().get(self.id);
    }

    /// This replica's own ops up to `seq` are durable and may be shipped.
    pub fn release_own_ops_through(&mut self, seq: u64) {
        self.own_durable = self.own_durable.max(seq);
    }

    /// Highest own seq that may be shipped.
    pub(crate) fn own_ship_limit(&self) -> u64 {
        if self.hold_own {
            self.own_durable
        } else {
            u64::MAX
        }
    }
}
