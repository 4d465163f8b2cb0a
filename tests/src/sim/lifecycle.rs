//! Regions stopping and starting: a disk that dies at one of its next calls, power cuts
//! (with torn writes), clean restarts, at-rest damage while a region is down, restores from a
//! backup, a region lost for good; and what must hold when a region reopens:
//!
//! - nothing its disk held durably is gone, unless something that may lose durable data
//!   happened (damage, a power cut under `Never`, a restore): durability, and I1's other
//!   half (the store reported durable only what its disk held);
//! - **I3**: after a clean close, damage that loses records is refused (or moved aside) and
//!   `verify` does not call it intact; after a crash, a cut is reported;
//! - **I2**: a region that comes back under the same id holds every own op anyone saw; the
//!   ops a crash took before anyone saw them leave the model (their dots may be used again);
//! - **I5**: a write whose log failed before it was durable is present exactly when
//!   recovery found its record, and its value stays invisible otherwise;
//! - and opening the store recovers what the dry run (`recovered_state`) said it would.

use session_ha::fs::Fault;
use session_ha::{Dot, FsyncPolicy, RecoveryMode, VersionVector};

use super::check;
use super::node::{Damage, Recovery};
use super::params::Invariant;
use super::region::{Phase, Stop};
use super::world::World;

const DAMAGES: [Damage; 5] = [
    Damage::FlipLastRecord,
    Damage::CutLastSegment,
    Damage::EraseLastSegment,
    Damage::EraseWal,
    Damage::FlipNewestSnapshot,
];

impl World {
    /// The lifecycle moves at the start of a step: regions whose downtime is over reopen;
    /// running ones may get a dying disk, lose power, restart or back up.
    ///
    /// # Errors
    /// What a reopen finds broken.
    pub fn lifecycle(&mut self) -> Result<(), String> {
        let ev = self.params.events;
        for at in 0..self.nodes.len() {
            match self.regions[at].phase {
                Phase::Down { until } if until <= self.step => self.start(at)?,
                Phase::Up if self.regions[at].power_cut_at.is_none() => {
                    if self.rng.chance(ev.disk_death_pm) {
                        let fault = match self.rng.below(10) {
                            0..=6 => Fault::Eio,
                            7 | 8 => Fault::TornThenEio,
                            _ => Fault::NoSpace,
                        };
                        let after = self.rng.below(16);
                        self.log(|| {
                            format!("r{at}'s disk dies {after} calls from now ({fault:?})")
                        });
                        self.count("disk deaths planned");
                        self.nodes[at].plan_disk_death(after, fault);
                        self.regions[at].power_cut_at =
                            Some(self.step + self.rng.range(0, 3) as u32);
                    } else if self.rng.chance(ev.power_cut_pm) {
                        self.power_cut(at)?;
                    } else if self.rng.chance(ev.restart_pm) {
                        self.clean_stop(at)?;
                    } else if self.rng.chance(ev.backup_pm) {
                        self.backup(at)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Regions whose dying disk's time is up lose power.
    ///
    /// # Errors
    /// As [`World::power_cut`].
    pub fn cut_dying(&mut self) -> Result<(), String> {
        for at in 0..self.nodes.len() {
            if self.regions[at]
                .power_cut_at
                .is_some_and(|s| s <= self.step)
            {
                self.power_cut(at)?;
            }
        }
        Ok(())
    }

    fn downtime(&mut self) -> Phase {
        Phase::Down {
            until: self.step + 1 + self.rng.below(3) as u32,
        }
    }

    /// Region `at` loses power: its store is abandoned and its disk keeps what was synced
    /// (half the time with a torn prefix of what was not).
    ///
    /// # Errors
    /// I1 at the moment of the cut, or a write the store reported durable that its disk
    /// did not hold.
    pub fn power_cut(&mut self, at: usize) -> Result<(), String> {
        if !self.regions[at].is_up() {
            return Ok(());
        }
        check::durable_claims(self, at, true)?;
        let Some(id) = self.nodes[at].id() else {
            return Ok(());
        };
        let never = self.params.fsync == FsyncPolicy::Never;
        // Under `Never` written counts as durable: what was written before the cut.
        let written = if never {
            self.nodes[at].durable_truth().map_err(|e| self.fail(e))?
        } else {
            None
        };
        self.nodes[at].kill();
        let tear = self.rng.chance(500).then(|| self.rng.next_u64());
        self.log(|| {
            format!(
                "r{at} loses power{}",
                if tear.is_some() { " (torn)" } else { "" }
            )
        });
        self.count("power cuts");
        self.nodes[at].power_cut(tear);
        let truth = self.nodes[at].recoverable().map_err(|e| self.fail(e))?;
        let kept = truth.as_ref().map(|t| t.0.clone());
        let never_cut = never
            && written
                .as_ref()
                .is_some_and(|w| !kept.as_ref().is_some_and(|k| k.dominates(w)));
        // Whatever the store reported durable was on the disk at the cut.
        let durable_at_cut = if never { written } else { kept.clone() };
        let unheld = self.model.records().find(|r| {
            r.op.dot.replica == id
                && r.acked
                && !r.lost_ok
                && !durable_at_cut
                    .as_ref()
                    .is_some_and(|v| v.contains(r.op.dot))
        });
        if let Some(r) = unheld {
            return Err(self.fail(format!(
                "r{at}'s store reported r{at}:{} durable, but its disk did not hold it at the cut",
                r.op.dot.seq
            )));
        }
        self.stopped(
            at,
            Stop {
                clean: false,
                never_cut,
                id,
                truth: kept,
                truth_root: truth.map(|t| t.1),
                damage: None,
                restored: false,
            },
        );
        self.regions[at].truth_at_calls = None;
        Ok(())
    }

    /// Region `at` closes cleanly (if its log has failed, the close fails and the machine
    /// goes down as in a power cut).
    ///
    /// # Errors
    /// I1 at the moment of the stop.
    pub fn clean_stop(&mut self, at: usize) -> Result<(), String> {
        if !self.regions[at].is_up() {
            return Ok(());
        }
        check::durable_claims(self, at, true)?;
        let Some(id) = self.nodes[at].id() else {
            return Ok(());
        };
        let clean = self.nodes[at].close().is_ok();
        if !clean {
            self.nodes[at].power_cut(None);
        }
        self.log(|| format!("r{at} closes{}", if clean { "" } else { " (failed)" }));
        self.count("clean restarts");
        let truth = self.nodes[at].recoverable().map_err(|e| self.fail(e))?;
        self.stopped(
            at,
            Stop {
                clean,
                never_cut: false,
                id,
                truth_root: truth.as_ref().map(|t| t.1),
                truth: truth.map(|t| t.0),
                damage: None,
                restored: false,
            },
        );
        Ok(())
    }

    fn stopped(&mut self, at: usize, stop: Stop) {
        let phase = self.downtime();
        let r = &mut self.regions[at];
        if let Some(t) = &stop.truth {
            r.ever_durable.merge(t);
        }
        r.stop = Some(stop);
        r.phase = phase;
        r.power_cut_at = None;
        r.held.clear();
    }

    /// Region `at` is lost for good, with its disk.
    pub fn kill_for_good(&mut self, at: usize) {
        self.log(|| format!("r{at} dies for good"));
        self.nodes[at].kill();
        self.nodes[at].power_cut(None);
        let r = &mut self.regions[at];
        r.phase = Phase::Dead;
        r.held.clear();
        r.power_cut_at = None;
    }

    /// Region `at` reopens; during the chaos its files may first be damaged at rest or
    /// replaced by a restore of its newest backup.
    ///
    /// # Errors
    /// What the reopen finds broken (see the module header).
    pub fn start(&mut self, at: usize) -> Result<(), String> {
        let settling = self.step >= self.params.steps;
        let mut stop = self.regions[at].stop.clone();
        if let (Some(s), false) = (stop.as_mut(), settling) {
            let ev = self.params.events;
            if self.rng.chance(ev.damage_pm) {
                let what = self.rng.pick(&DAMAGES);
                let roll = self.rng.next_u64();
                if let Some(done) = self.nodes[at].damage(what, roll) {
                    self.log(|| format!("r{at} damaged at rest: {done}"));
                    self.count("damage at rest");
                    s.damage = Some(done);
                }
            }
            if let (true, Some(file)) = (
                self.rng.chance(ev.restore_pm),
                self.regions[at].backup.clone(),
            ) {
                self.nodes[at]
                    .restore(&file)
                    .map_err(|e| self.fail(format!("r{at} restore of {}: {e}", file.display())))?;
                self.log(|| format!("r{at} restored from {}", file.display()));
                self.count("restores");
                s.restored = true;
            }
        }
        let verified = match &stop {
            Some(s) if s.damage.is_some() && !s.restored => Some((
                self.nodes[at].verify_intact().map_err(|e| self.fail(e))?,
                self.nodes[at].recoverable().map_err(|e| self.fail(e))?,
            )),
            _ => None,
        };
        let rec = match self.nodes[at].open(RecoveryMode::Strict) {
            Ok(rec) => rec,
            Err(e) if matches!(e.kind(), "data_loss" | "corrupt") => {
                self.log(|| format!("r{at} refuses to open: {e}"));
                self.count("opens refused");
                self.nodes[at]
                    .open(RecoveryMode::RebuildFromPeers)
                    .map_err(|e| self.fail(format!("r{at} does not rebuild: {e}")))?
            }
            Err(e) => return Err(self.fail(format!("r{at} does not reopen: {e}"))),
        };
        self.log(|| format!("r{at} opens as {}: {}", rec.id, rec.summary));
        self.count("opens");
        self.regions[at].phase = Phase::Up;
        if let Some(stop) = &stop {
            self.after_reopen(at, stop, &rec, verified)?;
        }
        self.register_peers(at);
        self.hello(at)
    }

    /// Region `at` and every running region greet each other as the Erlang server does
    /// (`docs/DECISIONS.md`): a region that comes back under a new id has its earlier
    /// incarnations retired from membership by its peers, and retires theirs.
    ///
    /// # Errors
    /// A refusal that is not a failed log.
    pub fn hello(&mut self, at: usize) -> Result<(), String> {
        for k in self.live() {
            if k == at {
                continue;
            }
            for (x, y) in [(k, at), (at, k)] {
                for old in self.nodes[y].old_ids() {
                    let removed = self.nodes[x]
                        .inspect(|r| r.removed_members().contains(&old))
                        .unwrap_or(true);
                    if removed {
                        continue;
                    }
                    self.log(|| format!("r{x} retires r{y}'s old incarnation {old}"));
                    self.count("old incarnations retired");
                    match self.nodes[x].remove_member(old) {
                        Ok(()) => self.on_durable(x),
                        Err(e) => self.refused(x, "remove_member", &e)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// Region `at` registers every other region's store as a peer (as the transport
    /// introduces them).
    pub fn register_peers(&mut self, at: usize) {
        for k in 0..self.nodes.len() {
            if k == at || self.regions[k].phase == Phase::Dead {
                continue;
            }
            if let Some(id) = self.nodes[k].id() {
                // A retired or removed id is refused: that is right.
                let _ = self.nodes[at].add_peer(id, &self.nodes[k].region);
            }
        }
    }

    fn after_reopen(
        &mut self,
        at: usize,
        stop: &Stop,
        rec: &Recovery,
        verified: Option<(bool, Option<(VersionVector, u128)>)>,
    ) -> Result<(), String> {
        let (vv, root, gone) = self.nodes[at]
            .inspect(|r| {
                let now = self.time_now();
                let gone: Vec<_> = r
                    .sessions()
                    .filter(|(_, s)| s.is_ended() || s.is_expired(now))
                    .map(|(id, _)| id.clone())
                    .collect();
                (r.version_vector().clone(), r.digests().root().0, gone)
            })
            .ok_or_else(|| self.fail(format!("r{at} is down right after opening")))?;
        let lossy = stop.never_cut || stop.damage.is_some() || stop.restored || rec.quarantined;
        let truth = stop.truth.clone().unwrap_or_default();
        if !lossy && !vv.dominates(&truth) {
            return Err(self.fail(format!(
                "r{at} reopened without records its disk held: recovered {vv:?}, the disk held {truth:?}"
            )));
        }
        if let (Some(damage), Some((intact, dry))) = (&stop.damage, &verified) {
            let lost = !vv.dominates(&truth);
            let dry_lost = dry.as_ref().is_none_or(|d| !d.0.dominates(&truth));
            if stop.clean && lost && !rec.quarantined {
                let what = format!(
                    "I3 violated: after a clean close, damage ({damage}) lost records and the store opened anyway: recovered {vv:?}, the disk held {truth:?} ({})",
                    rec.summary
                );
                self.violation(Invariant::I3, what)?;
            }
            if stop.clean && dry_lost && *intact {
                let what = format!(
                    "I3 violated: after a clean close, damage ({damage}) loses records but verify calls the directory intact"
                );
                self.violation(Invariant::I3, what)?;
            }
            if !stop.clean && lost && !rec.reported_cut && rec.id == stop.id {
                let what = format!(
                    "I3 violated: after a crash, damage ({damage}) cut records silently: recovered {vv:?}, the disk held {truth:?} ({})",
                    rec.summary
                );
                self.violation(Invariant::I3, what)?;
            }
        }
        if !lossy && stop.damage.is_none() && rec.id == stop.id {
            if let (Some(t), Some(t_root)) = (&stop.truth, stop.truth_root) {
                if *t != vv || t_root != root {
                    return Err(self.fail(format!(
                        "r{at} recovered {vv:?} (digest {root:x}), but the dry run of the same disk said {t:?} (digest {t_root:x})"
                    )));
                }
            }
        }
        // A replica that lost records it held durably (damage, or written records a power cut
        // under `Never` took) may have lost history others saw: it must come back as a new
        // incarnation (I2), whatever origins the lost records were of.
        let lost_durable = stop.never_cut || (!stop.restored && !vv.dominates(&truth));
        if lost_durable && rec.id == stop.id {
            let what = match excess_of(&truth, &vv) {
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
                "I2 violated: r{at} came back as the same replica after losing records it held ({what}); peers that saw them believe it holds them, and its next writes may reuse dots"
            );
            self.violation(Invariant::I2, what)?;
        }
        let kept = vv.get(stop.id);
        for (dot, seen) in self.own_ops_after(stop.id, kept) {
            if seen && rec.id == stop.id {
                let how = self.model.get(dot).map_or("", |r| {
                    if r.acked {
                        "acknowledged to its client"
                    } else {
                        "carried by a frame"
                    }
                });
                let what = format!(
                    "I2 violated: r{at} came back as the same replica without its own op r{at}:{} ({how}); its next write reuses the dot",
                    dot.seq
                );
                self.violation(Invariant::I2, what)?;
            }
            if seen {
                if let Some(r) = self.model.get_mut(dot) {
                    r.lost_ok |= lossy;
                }
            } else {
                self.model.forget(dot);
            }
        }
        let r = &mut self.regions[at];
        let writes: Vec<_> = r.pending.drain(..).chain(r.unknown.drain(..)).collect();
        for w in writes {
            let Some(value) = w.value else { continue };
            if w.dot.replica == stop.id && vv.contains(w.dot) {
                self.model.make_visible(&value);
            } else if self.model.get(w.dot).is_some() {
                // Lost here, but seen beyond: it lives on where it was seen.
                self.model.make_visible(&value);
            } else {
                let why = format!("r{at}:{}'s record did not survive the stop", w.dot.seq);
                self.model.make_invisible(value, why);
            }
        }
        let r = &mut self.regions[at];
        if rec.id != stop.id {
            r.ever_durable = VersionVector::new();
        }
        r.ever_durable.merge(&vv);
        r.truth_at_calls = None;
        r.claims = VersionVector::new();
        r.log_failed = false;
        r.last_vv = vv;
        r.gone_seen = gone.into_iter().collect();
        Ok(())
    }

    fn time_now(&self) -> u64 {
        self.now()
    }
}

/// The first entry of `held` that `now` does not cover: `(origin, seq held)`.
fn excess_of(held: &VersionVector, now: &VersionVector) -> Option<(session_ha::ReplicaId, u64)> {
    held.iter()
        .find(|(origin, seq)| now.get(*origin) < *seq)
        .map(|(origin, _)| (origin, now.get(origin) + 1))
}
