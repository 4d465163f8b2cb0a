//! Giving up a retired origin's history: once every member confirmed an origin's removal
//! and this replica holds all of that origin's changes any member holds, the origin's
//! vector entry becomes a mark ([`GIVEN_UP`] plus the seq it is held up to) under which
//! every seq counts as seen. Writes that never left the retired region can come back later
//! (in a backup restored as a new incarnation, or from the region's own disk); under the
//! mark they are removals to every copy, not news, so they cannot bring back a session the
//! cluster ended and collected meanwhile (I4). The mark travels in vectors (frames, acks,
//! transfers) and is logged as a [`Change::Adopt`]; `docs/DECISIONS.md` ("A retired
//! incarnation's unreplicated writes") gives the rule and its price.
//!
//! What a member holds of a retired origin beyond its vector entry travels in its acks'
//! gaps (no message format changed: a run to `MAX_SEQ` is a valid gap to every build):
//!
//! ```text
//!  held of retired origin X:  1 2 3 . 5 6 . . 9          vector entry 3
//!  ack gaps of X:             [4..=4] [7..=8] [10..=MAX_SEQ]
//!  mark when every member's ack shows the same:  GIVEN_UP + 9  (4, 7, 8 count as seen)
//! ```
//!
//! What any member was reported to hold is the *floor*: no mark is set while a seq of it is
//! missing here, even after that member is gone (its backup may bring those changes back).
//! It is kept per retired origin as the highest seq held in order (`retired_held`, logged
//! as [`Change::RetiredHeld`]) and the runs held out of order, read from the same gaps
//! (`retired_runs`, logged as [`Change::RetiredRuns`]); both are kept in snapshots:
//!
//! ```text
//!  ack of a member: vector entry 3, gaps [4..=4] [7..=8] [10..=MAX_SEQ]
//!  runs noted (held out of order):  5..=6, 9..=9
//! ```

use super::change::Change;
use super::message::MAX_SEQ;
use super::replica::Replica;
use crate::causal::{add_run, Dot, Gap, SeqRun, VersionVector, GIVEN_UP};
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
    /// held out of order (with a gap below them: ops lost with a region's disk whose effects
    /// survived in repaired copies) do not show in a vector; acks report them as gaps, the
    /// last run of a retired origin included ([`Replica::holding_gaps`]). With any, the
    /// origin is given up at the highest seq held, its gaps counting as seen (the ops in
    /// them are held by no member: gone, like any write of the region no member holds), and
    /// only once every member's latest ack shows exactly what this replica holds: a member
    /// with a change above the mark would lose it at the next merge. Neither while any
    /// retirement is unconfirmed (that member may have handed changes to another after its
    /// last ack here), nor while an origin is neither a member nor retired (a member whose
    /// record was lost), as for collection. Collection does not wait for this: an origin
    /// not given up is not protected. A member already at the mark ships the origin's ops up
    /// to the seq it holds like any others, and this replica gives up on its own once it
    /// holds them; holding more, or some of it out of order (given-up changes, as a restored
    /// backup of the retired region holds, or what the member gave up over a gap), it waits
    /// for that member's state transfer, which takes them away and brings the mark.
    pub(crate) fn give_up_retired(&mut self, changes: &mut Vec<Change>) {
        self.log_retired_held(changes);
        // Nor first below what a member held of it at some time this run: that member may
        // have lost it since (its disk died, it came back from an older backup), and a
        // backup of it may bring those changes back, acknowledged ends among them. Giving
        // up below them would drop them then (a lost end is a session live again). A member
        // that gave it up already decided for the cluster: this replica follows its mark
        // at the seq held, whatever it heard (two marks would never let collection's
        // frontier pass). An origin no one gives up stays unprotected.
        if !self.unknown_origins().is_empty() || self.removed.values().any(Option::is_some) {
            return;
        }
        let mut vv = VersionVector::new();
        for &id in self.removed.keys() {
            let held = self.ctx.vv().get(id);
            if held >= GIVEN_UP {
                continue;
            }
            // Held out of order too: given up at the highest seq held, the gaps below it
            // counting as seen, once every member holds exactly the same (its ack's gaps of
            // the origin, last run included, are this replica's).
            let gaps = self.holding_gaps(id);
            let top = self
                .ctx
                .cloud_tops()
                .find(|d| d.replica == id)
                .map_or(held, |d| d.seq);
            let follows = || {
                self.peers
                    .values()
                    .any(|p| p.acked.given_up(id) == Some(top))
            };
            // The floor is what some member held at some time, in order and out of order: a
            // seq of it in a gap here would count as seen.
            let holds_floor = holds(held, &gaps, 1, self.retired_held.get(id))
                && self
                    .retired_runs
                    .iter()
                    .filter(|r| r.origin == id)
                    .all(|r| holds(held, &gaps, r.from, r.to));
            if !holds_floor && !follows() {
                continue;
            }
            let waits = self.peers.values().any(|p| {
                let theirs = p.acked.get(id);
                // A member that gave it up at another seq: below it, its ops are on their
                // way here; above it, this replica holds given-up changes, which only that
                // member's state transfer takes away. Holding some of it out of order here,
                // even at the member's seq, that transfer brings the mark (following it
                // at once let two regions part for good in simulator seed 3345).
                if let Some(h) = p.acked.given_up(id) {
                    return h != top || !gaps.is_empty() || !p.removed_view.contains(&id);
                }
                let same_gaps = p
                    .retired_gaps
                    .iter()
                    .filter(|g| g.origin == id)
                    .eq(gaps.iter());
                let gapped = p.gapped.contains(&id) || !gaps.is_empty();
                theirs > held
                    || (gapped && (theirs != held || !same_gaps))
                    || !p.removed_view.contains(&id)
            });
            if !waits {
                vv.raise(id, GIVEN_UP + top);
            }
        }
        if !vv.is_empty() {
            self.adopt(&vv);
            changes.push(Change::Adopt(vv));
        }
    }

    /// What this replica holds of `origin` beyond its vector entry, as its acks tell it: the
    /// runs missing below the changes held out of order and, when there are any, a last run
    /// from past the highest one to [`MAX_SEQ`] (nothing is held after it). Empty when
    /// nothing is held out of order.
    pub(crate) fn holding_gaps(&self, origin: ReplicaId) -> Vec<Gap> {
        let mut gaps: Vec<Gap> = self
            .ctx
            .gaps()
            .into_iter()
            .filter(|g| g.origin == origin)
            .collect();
        let top = self.ctx.cloud_tops().find(|d| d.replica == origin);
        gaps.extend(top.and_then(last_run));
        gaps
    }

    /// The gaps an ack reports: every origin's, and for each retired origin held out of
    /// order also the last run ([`Replica::holding_gaps`]), so that members can tell they
    /// hold exactly the same of it. (A build that does not send the last run is never taken
    /// to hold the same: the origin then waits, as it did before.)
    pub(crate) fn ack_gaps(&self) -> Vec<Gap> {
        let mut gaps = self.ctx.gaps();
        let retired = self
            .ctx
            .cloud_tops()
            .filter(|top| self.removed.contains_key(&top.replica));
        gaps.extend(retired.filter_map(last_run));
        gaps.sort_by_key(|g| (g.origin, g.from));
        gaps
    }

    /// Puts what was heard of retired origins' holdings and is not on record yet into
    /// `changes`, with the change that raised it: a replica that restarts (or loses power)
    /// must not forget a lost member's holdings and give up below them.
    pub(crate) fn log_retired_held(&mut self, changes: &mut Vec<Change>) {
        if self.retired_held != self.retired_held_logged {
            self.retired_held_logged = self.retired_held.clone();
            changes.push(Change::RetiredHeld(self.retired_held.clone()));
        }
        if self.retired_runs != self.retired_runs_logged {
            self.retired_runs_logged = self.retired_runs.clone();
            changes.push(Change::RetiredRuns(self.retired_runs.clone()));
        }
    }

    /// Per retired origin, the runs of seqs another member was reported to hold out of
    /// order (for snapshots).
    pub(crate) fn retired_runs(&self) -> &[SeqRun] {
        &self.retired_runs
    }

    /// Notes what member `from`'s ack says it holds of each retired origin out of order: the
    /// runs between its vector entry, the gaps it reports and the origin's last run. An ack
    /// without the last run (an older build's) tells no top, and nothing is noted from it;
    /// such a member is never taken to hold the same, and the origin waits for it.
    pub(crate) fn note_retired_runs(&mut self, from: ReplicaId, vv: &VersionVector, gaps: &[Gap]) {
        for &id in self.removed.keys().filter(|&&id| id != from) {
            let entry = vv.get(id);
            let mut of_origin: Vec<&Gap> = gaps.iter().filter(|g| g.origin == id).collect();
            of_origin.sort_by_key(|g| g.from);
            if entry >= GIVEN_UP || of_origin.last().map(|g| g.to) != Some(MAX_SEQ) {
                continue;
            }
            let mut next = entry.saturating_add(1);
            for g in of_origin {
                if g.from > next {
                    let run = SeqRun {
                        origin: id,
                        from: next,
                        to: g.from - 1,
                    };
                    add_run(&mut self.retired_runs, run);
                }
                next = next.max(g.to.saturating_add(1));
            }
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

/// Whether a replica holding its origin's seqs up to `held` in order, and out of order all
/// but `gaps` (the last run included, see [`Replica::holding_gaps`]), holds every seq from
/// `from` to `to`.
fn holds(held: u64, gaps: &[Gap], from: u64, to: u64) -> bool {
    let first = from.max(held.saturating_add(1));
    to <= held || (!gaps.is_empty() && !gaps.iter().any(|g| g.from <= to && first <= g.to))
}

/// The run from past `top`, the highest change of its origin held out of order, to
/// [`MAX_SEQ`]: nothing of the origin is held after it (none when `top` is `MAX_SEQ`).
fn last_run(top: Dot) -> Option<Gap> {
    (top.seq < MAX_SEQ).then(|| Gap {
        origin: top.replica,
        from: top.seq + 1,
        to: MAX_SEQ,
    })
}
