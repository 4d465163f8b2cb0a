//! Regions stopping and starting: a disk that dies at one of its next calls, power cuts
//! (with torn writes), clean restarts, at-rest damage while a region is down, restores from a
//! backup, a region lost for good, and the greeting of regions that come back. At a power
//! cut, the store must have reported durable only what its disk held (I1); what must hold
//! when a region reopens is in `reopen.rs`.

use session_ha::fs::Fault;
use session_ha::{FsyncPolicy, RecoveryMode};

use super::check;
use super::node::Damage;
use super::region::{Phase, Stop};
use super::reopen::Reopen;
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
        let (rec, refused) = match self.nodes[at].open(RecoveryMode::Strict) {
            Ok(rec) => (rec, false),
            Err(e) if matches!(e.kind(), "data_loss" | "corrupt") => {
                self.log(|| format!("r{at} refuses to open: {e}"));
                self.count("opens refused");
                let rec = self.nodes[at]
                    .open(RecoveryMode::RebuildFromPeers)
                    .map_err(|e| self.fail(format!("r{at} does not rebuild: {e}")))?;
                (rec, true)
            }
            Err(e) => return Err(self.fail(format!("r{at} does not reopen: {e}"))),
        };
        self.log(|| format!("r{at} opens as {}: {}", rec.id, rec.summary));
        self.count("opens");
        self.regions[at].phase = Phase::Up;
        if let Some(stop) = stop {
            let reopen = Reopen {
                stop,
                rec,
                refused,
                verified,
            };
            self.after_reopen(at, &reopen)?;
        } else {
            let vv = self.nodes[at].inspect(|r| r.version_vector().held());
            self.regions[at].recorded_end = vv.unwrap_or_default();
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
            // Its hello makes it a member of every running region (a frame never does).
            if let Some(id) = self.nodes[at].id() {
                let _ = self.nodes[k].add_peer(id, &self.nodes[at].region);
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
}
