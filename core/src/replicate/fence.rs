//! The catch-up fence: a replica whose state may be older than what the cluster already
//! collected (a restored backup, a new incarnation after a crash or a lost suffix) or that
//! lacks part of its own history (a peer holds more of it) refuses reads and writes until it
//! has caught up with a member. See I4 and I2 in `docs/INVARIANTS.md`.
//!
//! Catching up means: the replica's vector dominates the vector of the first ack a member
//! sent it *after* the fence was raised (the ack names this replica and its current boot, so
//! an old one in flight does not count) while that member was not catching up itself (its
//! ack says so: a member fenced after its own crash may lack ends the cluster collected).
//! The first such ack is a fixed target, reached even while that member keeps writing.
//! Every tombstone collected anywhere was acknowledged by every member, so it is below every
//! unfenced member's vector: catching up with any one of them brings every end back. When
//! every member is catching up (all of them crashed), the fence lifts once the replica holds
//! everything every member acknowledged to this run: together they hold all there is. A
//! fence raised at open is logged as well as put in the manifest, so replaying older fence
//! records cannot undo it. Frames lift nothing: they do not say whether their sender is
//! fenced.

use serde::{Deserialize, Serialize};

use super::change::Change;
use super::replica::Replica;
use crate::causal::{CausalContext, Gap, VersionVector, GIVEN_UP};
use crate::clock::ReplicaId;
use crate::error::{Error, Result};

/// Why a replica is fenced.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum FenceReason {
    /// Restored from a backup: its state is as old as the backup.
    Restored,
    /// It restarted after a crash (or recovery lost part of the log), so its state may be
    /// older than what it had acknowledged or the cluster collected; it continues as a new
    /// incarnation.
    LostTail,
    /// Its directory was damaged beyond every fallback and moved aside: it starts empty and
    /// is refilled by its peers.
    Rebuilt,
    /// A peer holds more of this replica's own history than it does.
    HistoryRegression {
        /// The peer.
        peer: ReplicaId,
        /// The highest own seq held here.
        ours: u64,
        /// The highest own seq the peer holds.
        theirs: u64,
    },
}

impl std::fmt::Display for FenceReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FenceReason::Restored => write!(f, "restored from a backup"),
            FenceReason::LostTail => {
                write!(f, "restarted after a crash, the end of its log may be lost")
            }
            FenceReason::Rebuilt => write!(f, "rebuilt empty after damage, refilled by peers"),
            FenceReason::HistoryRegression { peer, ours, theirs } => write!(
                f,
                "peer {peer} holds this replica's ops up to {theirs}, it holds {ours}"
            ),
        }
    }
}

impl Replica {
    /// Why reads and writes are refused, if they are.
    pub fn fence(&self) -> Option<FenceReason> {
        self.fence
    }

    /// Refuses while fenced.
    ///
    /// # Errors
    /// [`Error::CatchingUp`].
    pub fn check_unfenced(&self) -> Result<()> {
        match self.fence {
            Some(reason) => Err(Error::CatchingUp(reason)),
            None => Ok(()),
        }
    }

    /// Raises the fence (also on replay of a logged [`Change::Fence`]); returns the change
    /// to log.
    pub fn raise_fence(&mut self, reason: FenceReason) -> Change {
        self.fence = Some(reason);
        // Only acks sent after the fence went up count towards lifting it.
        for p in self.peers.values_mut() {
            p.acked_this_run = None;
            p.catch_up_target = None;
        }
        Change::Fence(reason)
    }

    /// Sets the fence as a manifest recorded it (recovery).
    pub(crate) fn set_fence(&mut self, fence: Option<FenceReason>) {
        self.fence = fence;
    }

    /// Lifts the fence by hand (an operator who knows no member is left to catch up with).
    /// Returns the change to log, if the replica was fenced.
    pub fn lift_fence(&mut self) -> Option<Change> {
        self.fence.take().map(|_| Change::Unfence)
    }

    /// After a member's ack addressed to this replica's current boot: lifts the fence when
    /// this replica has caught up (see the module doc).
    pub(crate) fn maybe_lift_fence(&mut self, changes: &mut Vec<Change>) {
        let Some(reason) = self.fence else {
            return;
        };
        let fits = match reason {
            // Whichever member brought the history back: the one that reported it may have
            // died since, and another may hold it too.
            FenceReason::HistoryRegression { theirs, .. } => self.ctx.vv().get(self.id) >= theirs,
            FenceReason::Restored | FenceReason::LostTail | FenceReason::Rebuilt => true,
        };
        // A member catching up itself may lack ends the cluster collected: only the ack of
        // one that was not counts alone. When every member is catching up (a cluster-wide
        // power cut), what they hold together is all there is: the fence lifts once this
        // replica holds everything every member acknowledged this run.
        let caught_up = self.peers.values().any(|p| {
            p.catch_up_target
                .as_ref()
                .is_some_and(|target| holds_what(&self.ctx, target))
        }) || (!self.peers.is_empty()
            && self.peers.values().all(|p| {
                p.acked_this_run
                    .as_ref()
                    .is_some_and(|theirs| holds_what(&self.ctx, theirs))
            }));
        if fits && caught_up {
            self.fence = None;
            changes.push(Change::Unfence);
        }
    }

    /// Whether `peer` holds more of this replica's own history than it does, by its vector
    /// or by the gaps its ack reports (a gap in its holdings of our ops ends where it holds
    /// one again: a dot it has seen out of order, as an effect in a merged copy); if so
    /// raises the fence (see I2). A replica fenced so cannot take that history back when
    /// the ops before such a dot are gone: the fence holds, and the next open continues as
    /// a new incarnation (`store/open.rs`).
    pub(crate) fn check_history(
        &mut self,
        peer: ReplicaId,
        vv: &VersionVector,
        gaps: &[Gap],
        changes: &mut Vec<Change>,
    ) {
        // A last run (to `MAX_SEQ`, sent for retired origins only) holds nothing after it.
        let beyond_gap = gaps
            .iter()
            .filter(|g| g.origin == self.id && g.to < crate::replicate::MAX_SEQ)
            .map(|g| g.to.saturating_add(1))
            .max()
            .unwrap_or(0);
        let (ours, theirs) = (self.ctx.vv().get(self.id), vv.get(self.id).max(beyond_gap));
        let worse = match self.fence {
            Some(FenceReason::HistoryRegression { theirs: t, .. }) => theirs > t,
            _ => true,
        };
        if theirs > ours && worse {
            let reason = FenceReason::HistoryRegression { peer, ours, theirs };
            changes.push(self.raise_fence(reason));
        }
    }
}

/// Whether a replica that has seen `ctx` holds what a member at `theirs` holds. Where the member gave
/// an origin up, exactly the seq it holds it to: less is not caught up, and more is
/// given-up changes, which the member's state transfer takes away first (served, they could
/// bring back a session the cluster collected). The replica gives the origin up itself once
/// it holds that much, which a fenced one does not do: requiring the mark here would wait
/// for good.
fn holds_what(ctx: &CausalContext, theirs: &VersionVector) -> bool {
    let held = ctx.vv();
    theirs
        .iter()
        .all(|(origin, seq)| match theirs.given_up(origin) {
            Some(h) => {
                let mine = held.get(origin);
                // Changes held out of order are above `h` too: given up as well.
                mine.checked_sub(GIVEN_UP).unwrap_or(mine) == h
                    && !ctx.cloud_tops().any(|d| d.replica == origin)
            }
            None => held.get(origin) >= seq,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_up_origin_is_caught_up_at_exactly_the_seq_held() {
        let (gone, live) = (ReplicaId(1), ReplicaId(2));
        let member: VersionVector = [(gone, GIVEN_UP + 3), (live, 5)].into_iter().collect();
        let at =
            |g: u64, l: u64| CausalContext::from_vv([(gone, g), (live, l)].into_iter().collect());
        // Holding the origin to the seq the member gave it up at (seed 66613: an empty
        // replica and a member that gave origins up at 0 waited for good on the marks).
        assert!(holds_what(&at(3, 5), &member));
        assert!(holds_what(&at(GIVEN_UP + 3, 5), &member));
        // Short of it, or short of a live origin: not yet.
        assert!(!holds_what(&at(2, 5), &member));
        assert!(!holds_what(&at(3, 4), &member));
        // More than the member held is given-up changes, in the vector or out of order:
        // the member's transfer takes them away before this replica may serve.
        assert!(!holds_what(&at(4, 5), &member));
        let mut ahead = at(3, 5);
        ahead.insert(crate::causal::Dot {
            replica: gone,
            seq: 5,
        });
        assert!(!holds_what(&ahead, &member));
        let at_zero: VersionVector = [(gone, GIVEN_UP)].into_iter().collect();
        assert!(holds_what(&CausalContext::default(), &at_zero));
    }
}
