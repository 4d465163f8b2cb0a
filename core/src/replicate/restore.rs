//! Rebuilding a [`Replica`] from durable state: snapshot entries, then replayed changes.

use super::replica::Replica;
use crate::causal::{add_run, CausalContext, Dot};
use crate::clock::ReplicaId;
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

    /// Restores what a snapshot saved beyond sessions: the causal context, the clock,
    /// membership (members and removed ones) and the catch-up fence. The op log starts empty
    /// above the restored vector: a peer that needs older ops gets a state transfer.
    #[doc(hidden)]
    pub fn restore_meta(&mut self, meta: &crate::snapshot::SnapshotMeta) {
        self.clock.observe(meta.clock);
        self.ctx = meta.context.clone();
        let vv = self.ctx.vv().clone();
        self.log.raise_floor(&vv, meta.clock);
        // A dot held out of order came with an effect, not an op (see `see_dots_of`): the
        // log never holds it, so its floor rises past it here as it did when it came, or
        // the ops below it, once they arrive, would close a vector the log has a hole in.
        let tops: Vec<Dot> = self.ctx.cloud_tops().collect();
        for top in tops {
            self.log.raise_floor_to(top.replica, top.seq, meta.clock);
        }
        for &id in &meta.removed {
            self.mark_removed(id);
        }
        for (id, name) in &meta.members {
            // A member that is removed stays removed.
            let _ = self.add_member(*id, name);
        }
        self.fence = meta.fence;
        self.retired_held.merge(&meta.retired_held);
        self.retired_held_logged.merge(&meta.retired_held);
        for &run in &meta.retired_runs {
            add_run(&mut self.retired_runs, run);
            add_run(&mut self.retired_runs_logged, run);
        }
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::ManualTime;
    use crate::replicate::ReplicaConfig;

    fn replica(region: &str) -> Replica {
        let time = Arc::new(ManualTime::new(1_000));
        Replica::new(region, 0, ReplicaConfig::default(), time)
    }

    #[test]
    fn held_dots_outside_the_context_are_seen_and_logged_so_replay_sees_them_too() {
        // A state as a snapshot may hold it: a write of `other` its context does not cover.
        let mut other = replica("other");
        other.set_add("s", "tags", "x").unwrap();
        let state = other.session_state(b"s").cloned().unwrap();
        let dot = Dot {
            replica: other.id(),
            seq: 1,
        };

        let mut r = replica("r");
        r.restore_session("s".into(), state.clone());
        assert!(!r.context().contains(dot));
        let changes = r.see_held_dots();
        assert!(r.context().contains(dot), "the held add counts as seen");
        assert_eq!(changes.len(), 1, "the session is logged: {changes:?}");
        assert!(r.see_held_dots().is_empty(), "nothing left to see");

        let mut replayed = replica("r");
        replayed.restore_session("s".into(), state);
        for c in &changes {
            replayed.replay(c);
        }
        assert!(
            replayed.context().contains(dot),
            "replaying the log sees it too"
        );
    }
}
