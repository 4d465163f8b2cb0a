//! Giving up a retired origin's history: once every member confirmed an origin's removal
//! and this replica holds all of that origin's changes any member holds, the origin's
//! vector entry becomes a mark ([`GIVEN_UP`] plus the seq it is held up to) under which
//! every seq counts as seen. Writes that never left the retired region can come back later
//! (in a backup restored as a new incarnation, or from the region's own disk); under the
//! mark they are removals to every copy, not news, so they cannot bring back a session the
//! cluster ended and collected meanwhile (I4). The mark travels in vectors (frames, acks,
//! transfers) and is logged as a [`Change::Adopt`]; `docs/DECISIONS.md` ("A retired
//! incarnation's unreplicated writes") gives the rule and its price.

use super::change::Change;
use super::replica::Replica;
use crate::causal::{VersionVector, GIVEN_UP};
use crate::clock::ReplicaId;

impl Replica {
    /// Gives up the history of every retired origin this replica holds all of: its vector
    /// entry becomes [`GIVEN_UP`] plus the seq it is held up to, so each of its seqs counts
    /// as seen. A write that never left the retired region, coming back later in a restored
    /// backup or from the region's own disk, is then a removal to every copy here, not news:
    /// it cannot bring back a session ended and collected meanwhile (I4).
    ///
    /// A member's holdings of a retired origin no longer grow but from other members (the
    /// origin's frames are refused), so this replica holds all of it once every member has
    /// reported the retirement and acknowledged no more of it than is held here. Changes
    /// held out of order do not show in a vector: while this replica or a member (its
    /// latest ack) has a gap in the origin, nothing of it is given up. Neither while any
    /// retirement is unconfirmed (that member may have handed changes to another after its
    /// last ack here), nor while an origin is neither a member nor retired (a member whose
    /// record was lost), as for collection. Collection does not wait for this: an origin
    /// not given up is not protected. A member already at the mark ships the origin's ops up
    /// to the seq it holds like any others, and this replica gives up on its own once it
    /// holds them; holding more (given-up changes, as a restored backup of the retired
    /// region does) it waits for that member's state transfer, which takes them away.
    pub(crate) fn give_up_retired(&mut self, changes: &mut Vec<Change>) {
        self.log_retired_held(changes);
        // Nor first below what a member held of it at some time this run: that member may
        // have lost it since (its disk died, it came back from an older backup), and a
        // backup of it may bring those changes back, acknowledged ends among them. Giving
        // up below them would drop them then (a lost end is a session live again). A member
        // that gave it up already decided for the cluster: this replica follows its mark
        // at the seq held, whatever it heard (two marks would never let collection's
        // frontier pass). An origin no one gives up stays unprotected, as one with a gap.
        if !self.unknown_origins().is_empty() || self.removed.values().any(Option::is_some) {
            return;
        }
        let mut vv = VersionVector::new();
        for &id in self.removed.keys() {
            let held = self.ctx.vv().get(id);
            let follows = || {
                self.peers
                    .values()
                    .any(|p| p.acked.given_up(id) == Some(held))
            };
            if held >= GIVEN_UP
                || self.ctx.cloud_tops().any(|d| d.replica == id)
                || (self.retired_held.get(id) > held && !follows())
            {
                continue;
            }
            let waits = self.peers.values().any(|p| {
                let theirs = p.acked.get(id);
                // A member that gave it up at another seq: below it, its ops are on their
                // way here; above it, this replica holds given-up changes, which only that
                // member's state transfer takes away.
                let differs = p.acked.given_up(id).is_some_and(|h| h != held);
                differs
                    || (theirs < GIVEN_UP && theirs > held)
                    || p.gapped.contains(&id)
                    || !p.removed_view.contains(&id)
            });
            if !waits {
                vv.raise(id, GIVEN_UP + held);
            }
        }
        if !vv.is_empty() {
            self.adopt(&vv);
            changes.push(Change::Adopt(vv));
        }
    }

    /// Puts what was heard of retired origins' holdings and is not on record yet into
    /// `changes`, with the change that raised it: a replica that restarts (or loses power)
    /// must not forget a lost member's holdings and give up below them.
    pub(crate) fn log_retired_held(&mut self, changes: &mut Vec<Change>) {
        if self.retired_held != self.retired_held_logged {
            self.retired_held_logged = self.retired_held.clone();
            changes.push(Change::RetiredHeld(self.retired_held.clone()));
        }
    }

    /// Per retired origin, the highest seq another member was reported to hold of it (for
    /// snapshots).
    pub(crate) fn retired_held(&self) -> &VersionVector {
        &self.retired_held
    }

    /// Notes what member `from`'s vector (an ack's, a frame's) says it holds of each retired
    /// origin but itself (see [`Replica::give_up_retired`]).
    pub(crate) fn note_retired_held(&mut self, from: ReplicaId, vv: &VersionVector) {
        for &id in self.removed.keys().filter(|&&id| id != from) {
            let s = vv.get(id);
            self.retired_held
                .raise(id, s.checked_sub(GIVEN_UP).unwrap_or(s));
        }
    }
}
