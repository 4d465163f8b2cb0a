//! What must hold when a region reopens, given how it stopped (`region::Stop`) and what
//! opening reported (`node::Recovery`):
//!
//! - **durability**: nothing its disk held durably is gone, unless something that may lose
//!   durable data happened (damage, a power cut under `Never`, a restore, a refused open);
//!   and opening recovers exactly what the dry run of the same disk said it would;
//! - **I3**: after a clean close, damage that loses records is refused (or moved aside) and
//!   `verify` does not call it intact; after a crash, the log reaches the end the manifest
//!   recorded at the last open or snapshot (a loss beyond it may go unseen: the peers are the
//!   record, `docs/INVARIANTS.md` I2 case 4);
//! - **I2**: a region whose recovery knew it lost records (a reported cut, a refused open, a
//!   power cut under `Never` that took written records) comes back as a new incarnation. One
//!   that comes back under the same id without own ops a peer may hold must not use their
//!   dots again (a different op under a dot the model holds is reported where ops are
//!   learnt). The ops a stop took before anyone saw them, and after a loss recovery could not
//!   see those only the client saw, leave the model (their dots may be used again);
//! - **I5**: a write whose log failed before it was durable is present exactly when recovery
//!   found its record, and its value stays invisible otherwise.

use session_ha::causal::GIVEN_UP;
use session_ha::{Dot, ReplicaId, VersionVector};

use super::node::Recovery;
use super::params::Invariant;
use super::region::Stop;
use super::world::World;

/// A reopen, for the checks.
#[derive(Debug)]
pub struct Reopen {
    /// How the region stopped.
    pub stop: Stop,
    /// What opening reported.
    pub rec: Recovery,
    /// The first, `Strict` open refused (damage) and the store was rebuilt.
    pub refused: bool,
    /// Before opening a damaged directory: whether `verify` called it intact, and what a
    /// recovery of it would hold.
    pub verified: Option<(bool, Option<(VersionVector, u128)>)>,
}

/// `vv` as what it covers: a given-up origin's mark counts every seq of it as seen (the
/// changes above the seq held were dropped by design, not lost).
fn covering(vv: &VersionVector) -> VersionVector {
    vv.iter()
        .map(|(o, s)| {
            (
                o,
                if vv.given_up(o).is_some() {
                    GIVEN_UP - 1
                } else {
                    s
                },
            )
        })
        .collect()
}

/// The first entry of `held` that `now` does not cover: `(origin, first seq lost)`.
fn excess_of(held: &VersionVector, now: &VersionVector) -> Option<(ReplicaId, u64)> {
    held.iter()
        .find(|(origin, seq)| now.get(*origin) < *seq)
        .map(|(origin, _)| (origin, now.get(origin) + 1))
}

impl World {
    /// The checks and the bookkeeping after region `at` reopened.
    ///
    /// # Errors
    /// What the reopen broke (see the module header).
    pub(crate) fn after_reopen(&mut self, at: usize, r: &Reopen) -> Result<(), String> {
        let now = self.now();
        let (vv, root, gone, cover) = self.nodes[at]
            .inspect(|replica| {
                // As in the step checks: a fenced replica's deadlines may be stale.
                let fenced = replica.fence().is_some();
                let gone: Vec<_> = replica
                    .sessions()
                    .filter(|(_, s)| s.is_ended() || (!fenced && s.is_expired(now)))
                    .map(|(id, _)| id.clone())
                    .collect();
                let root = replica.digests().root().0;
                let raw = replica.version_vector();
                (raw.held(), root, gone, covering(raw))
            })
            .ok_or_else(|| self.fail(format!("r{at} is down right after opening")))?;
        let (stop, rec) = (&r.stop, &r.rec);
        let lossy = stop.never_cut
            || stop.damage.is_some()
            || stop.restored
            || rec.quarantined
            || r.refused;
        let truth = stop.truth.clone().unwrap_or_default();
        if !lossy && !cover.dominates(&truth) {
            return Err(self.fail(format!(
                "r{at} reopened without records its disk held: recovered {vv:?}, the disk held {truth:?}"
            )));
        }
        if !lossy && rec.id == stop.id {
            if let (Some(t), Some(t_root)) = (&stop.truth, stop.truth_root) {
                if *t != vv || t_root != root {
                    return Err(self.fail(format!(
                        "r{at} recovered {vv:?} (digest {root:x}), but the dry run of the same disk said {t:?} (digest {t_root:x})"
                    )));
                }
            }
        }
        self.log_end_is_known(at, r, &cover, &truth)?;
        self.one_dot_one_op(at, r, &vv, &truth, lossy)?;
        self.settle_pending_writes(at, stop.id, &vv);
        let region = &mut self.regions[at];
        if rec.id != stop.id {
            region.ever_durable = VersionVector::new();
            region.opened_after_give_up = self.given_up_seen.clone();
        }
        region.ever_durable.merge(&vv);
        region.truth_at_calls = None;
        region.claims = VersionVector::new();
        region.log_failed = false;
        region.recorded_end = vv.clone();
        region.last_vv = vv;
        region.gone_seen = gone.into_iter().collect();
        Ok(())
    }

    /// I3 after damage at rest.
    fn log_end_is_known(
        &mut self,
        at: usize,
        r: &Reopen,
        vv: &VersionVector,
        truth: &VersionVector,
    ) -> Result<(), String> {
        let (stop, rec) = (&r.stop, &r.rec);
        let (Some(damage), Some((intact, dry))) = (&stop.damage, &r.verified) else {
            return Ok(());
        };
        let opened_anyway = !r.refused && !rec.quarantined;
        if stop.clean {
            if !vv.dominates(truth) && opened_anyway {
                let what = format!(
                    "I3 violated: after a clean close, damage ({damage}) lost records and the store opened anyway: recovered {vv:?}, the disk held {truth:?} ({})",
                    rec.summary
                );
                self.violation(Invariant::I3, what)?;
            }
            let dry_lost = dry.as_ref().is_none_or(|d| !d.0.dominates(truth));
            if dry_lost && *intact {
                let what = format!(
                    "I3 violated: after a clean close, damage ({damage}) loses records but verify calls the directory intact"
                );
                self.violation(Invariant::I3, what)?;
            }
        } else {
            let recorded = self.regions[at].recorded_end.clone();
            if !vv.dominates(&recorded) && opened_anyway {
                let what = format!(
                    "I3 violated: after a crash, damage ({damage}) lost records before the end the manifest recorded and the store opened anyway: recovered {vv:?}, the recorded end {recorded:?} ({})",
                    rec.summary
                );
                self.violation(Invariant::I3, what)?;
            }
        }
        Ok(())
    }

    /// I2 at a reopen, and the model's view of the ops the stop took.
    fn one_dot_one_op(
        &mut self,
        at: usize,
        r: &Reopen,
        vv: &VersionVector,
        truth: &VersionVector,
        lossy: bool,
    ) -> Result<(), String> {
        let (stop, rec) = (&r.stop, &r.rec);
        let same = rec.id == stop.id;
        let lost_durable = stop.never_cut || (!stop.restored && !vv.dominates(truth));
        // Recovery knew it may have lost a suffix: it must continue as a new incarnation.
        let known = stop.never_cut || rec.reported_cut || r.refused;
        if lost_durable && known && same {
            let what = match excess_of(truth, vv) {
                Some((origin, seq)) => {
                    let name = self.origin(Dot {
                        replica: origin,
                        seq,
                    });
                    format!("{name}:{seq} and what followed it")
                }
                None => "written records a power cut under Never took".to_string(),
            };
            let what = format!(
                "I2 violated: r{at} came back as the same replica after its recovery lost records it held ({what}; {}); peers that saw them believe it holds them, and its next writes may reuse dots",
                rec.summary
            );
            self.violation(Invariant::I2, what)?;
        }
        if lossy {
            // Ops of its earlier incarnations it held and no longer does (a restore of an
            // older backup): lost here, and lost for good unless a peer holds them.
            for old in self.nodes[at]
                .old_ids()
                .into_iter()
                .filter(|id| *id != stop.id)
            {
                for (dot, _) in self.own_ops_after(old, vv.get(old)) {
                    if let Some(o) = self.model.get_mut(dot) {
                        o.lost_ok = true;
                    }
                }
            }
        }
        let kept = vv.get(stop.id);
        for (dot, seen) in self.own_ops_after(stop.id, kept) {
            let shipped = self.model.get(dot).is_some_and(|o| o.shipped);
            if !seen {
                self.model.forget(dot);
            } else if same && !shipped && !known {
                // Only its client saw it, and a loss recovery could not see took it (a double
                // fault): nothing anywhere holds it any more.
                self.count("own ops lost to an unseen double fault");
                self.model.forget(dot);
            } else if let Some(o) = self.model.get_mut(dot) {
                // Peers may hold it: under the same id the replica must not use its dot again
                // before it took its history back (a different op under it is I2, checked
                // where ops are learnt).
                o.lost_ok |= lossy;
            }
        }
        Ok(())
    }

    /// The client writes that were not known durable when region `at` stopped: present
    /// exactly when recovery found their record; a lost value that nobody saw stays
    /// invisible (I5).
    fn settle_pending_writes(&mut self, at: usize, old_id: ReplicaId, vv: &VersionVector) {
        let r = &mut self.regions[at];
        let writes: Vec<_> = r.pending.drain(..).chain(r.unknown.drain(..)).collect();
        for w in writes {
            let Some(value) = w.value else { continue };
            if w.dot.replica == old_id && vv.contains(w.dot) {
                self.model.make_visible(&value);
            } else if self.model.get(w.dot).is_some() {
                // Lost here, but seen beyond: it lives on where it was seen.
                self.model.make_visible(&value);
            } else {
                let why = format!("r{at}:{}'s record did not survive the stop", w.dot.seq);
                self.model.make_invisible(value, why);
            }
        }
    }
}
