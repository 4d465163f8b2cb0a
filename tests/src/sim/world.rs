//! The world: the regions (a store on its own simulated disk, through the adapter in
//! `node.rs`, and what the simulator tracks beside it, `region.rs`), the one manual clock they
//! share, the network between them, the model of every op made, and the bookkeeping shared
//! by the moves: log failures, durable client writes, replies released once durable, and the
//! ops the engine makes on its own. The moves are in `moves.rs`, `writes.rs` and
//! `lifecycle.rs`; trace descriptions in `trace.rs`.

use std::collections::{BTreeMap, BTreeSet};

use session_ha::{Dot, ManualTime, Op, OpKind, ReplicaId, SessionId, TimeSource};

use super::model::Model;
use super::network::Network;
use super::node::{Node, NodeConfig};
use super::params::{Invariant, Params};
use super::region::{Phase, Region};
use super::rng::Rng;

/// Simulated time at which every run starts (Unix ms).
pub const START_MS: u64 = 1_700_000_000_000;

/// Everything one simulated run holds.
pub struct World {
    /// What this run simulates.
    pub params: Params,
    /// The run's randomness.
    pub rng: Rng,
    /// The clock every store reads.
    pub time: ManualTime,
    /// The regions' stores and disks, by index.
    pub nodes: Vec<Node>,
    /// What the simulator tracks per region, by index.
    pub regions: Vec<Region>,
    /// The network.
    pub net: Network,
    /// Every op made.
    pub model: Model,
    /// Sessions whose end some region collected: never live anywhere again (I4).
    pub collected: BTreeSet<SessionId>,
    /// Retired origins some region has been seen to give up (a `GIVEN_UP` mark in its
    /// vector): an incarnation that opens later may drop a restored copy's changes past
    /// the mark.
    pub given_up_seen: BTreeSet<ReplicaId>,
    /// Retired origins given up over a gap, as the checks saw them.
    pub give_ups: super::give_ups::GiveUps,
    /// The step being run (chaos steps, then settling rounds).
    pub step: u32,
    /// Print every event to stderr (`SIM_TRACE=1`).
    pub trace: bool,
    /// Counts of what happened, for the summary.
    pub stats: BTreeMap<&'static str, u64>,
    /// Counter making every written value unique.
    pub next_value: u64,
    /// Violations found where they cannot be returned at once (a message read on its way
    /// out); the step's checks report the first.
    pub errors: Vec<String>,
    /// A session whose state on every region is traced after every step (`SIM_WATCH=<id>`
    /// with `SIM_TRACE=1`).
    pub watch: Option<SessionId>,
    /// Violations of invariants skipped by `SIM_SKIP`, counted (and named in any failure).
    pub skipped_violations: BTreeMap<Invariant, u64>,
}

impl World {
    /// The ids the regions run under now, the dead region's left out (what it held is
    /// gone with it).
    pub fn running_ids(&self) -> BTreeSet<ReplicaId> {
        let dead = self.dead();
        (0..self.nodes.len())
            .filter(|&k| Some(k) != dead)
            .filter_map(|k| self.nodes[k].id())
            .collect()
    }

    /// A world for `params`: every region opened on an empty disk and meshed with the others.
    ///
    /// # Errors
    /// When a store cannot be created.
    pub fn new(params: Params, trace: bool) -> Result<World, String> {
        let time = ManualTime::new(START_MS);
        let nodes = (0..params.replicas)
            .map(|i| {
                let config = NodeConfig {
                    replica: params.config.clone(),
                    fsync: params.fsync,
                    write_mode: params.write_modes[i],
                    segment_size: params.segment_size,
                };
                Node::new(i, config, time.clone(), params.seed)
            })
            .collect();
        let n = params.replicas;
        let mut world = World {
            rng: Rng::new(params.seed),
            net: Network::new(params.faults),
            params,
            time,
            nodes,
            regions: (0..n).map(|_| Region::new()).collect(),
            model: Model::default(),
            collected: BTreeSet::new(),
            given_up_seen: BTreeSet::new(),
            give_ups: super::give_ups::GiveUps::default(),
            step: 0,
            trace,
            stats: BTreeMap::new(),
            next_value: 0,
            errors: Vec::new(),
            skipped_violations: BTreeMap::new(),
            watch: trace
                .then(|| std::env::var("SIM_WATCH").ok())
                .flatten()
                .map(|s| SessionId::from(s.as_str())),
        };
        for i in 0..n {
            world.start(i)?;
        }
        for i in 0..n {
            world.register_peers(i);
        }
        Ok(world)
    }

    /// Simulated time now.
    pub fn now(&self) -> u64 {
        self.time.now_ms()
    }

    /// A violation of `inv`: the failure, or (when `inv` is skipped) a count and a trace line.
    ///
    /// # Errors
    /// The failure message, when `inv` is checked.
    pub fn violation(
        &mut self,
        inv: Invariant,
        what: impl std::fmt::Display,
    ) -> Result<(), String> {
        if self.params.checks(inv) {
            return Err(self.fail(what));
        }
        *self.skipped_violations.entry(inv).or_default() += 1;
        self.log(|| format!("(skipped) {what}"));
        Ok(())
    }

    /// A failure message naming the seed, the step and the one command that replays it.
    pub fn fail(&self, what: impl std::fmt::Display) -> String {
        let p = &self.params;
        let skipped = if self.skipped_violations.is_empty() {
            String::new()
        } else {
            let counts: Vec<String> = self
                .skipped_violations
                .iter()
                .map(|(i, n)| format!("{i:?} x{n}"))
                .collect();
            format!(" [after skipped violations {}]", counts.join(", "))
        };
        format!(
            "seed {} ({} regions, {:?}, death {:?}), step {}, t+{}ms{skipped}: {what}\n  replay: {}",
            p.seed,
            p.replicas,
            p.fsync,
            p.death,
            self.step,
            self.now() - START_MS,
            replay_line(p)
        )
    }

    /// Prints an event when tracing.
    pub fn log(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!(
                "[{:>4} t+{:>5}] {}",
                self.step,
                self.now() - START_MS,
                what()
            );
        }
    }

    /// Counts an event.
    pub fn count(&mut self, what: &'static str) {
        *self.stats.entry(what).or_insert(0) += 1;
    }

    /// Indices of the regions whose store is open.
    pub fn live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.regions[i].is_up())
            .collect()
    }

    /// The index of the region named `name` (`r<i>`).
    pub fn index_of_region(&self, name: &str) -> Option<usize> {
        let i: usize = name.strip_prefix('r')?.parse().ok()?;
        (i < self.nodes.len()).then_some(i)
    }

    /// The index of the region whose store has (or ever had) `id`.
    pub fn index_of(&self, id: ReplicaId) -> Option<usize> {
        self.nodes.iter().position(|n| n.had_id(id))
    }

    /// The region that died for good, if one did.
    pub fn dead(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| self.regions[i].phase == Phase::Dead)
    }

    /// This region's own sequence number now (0 when down).
    pub fn own_seq(&self, at: usize) -> u64 {
        self.nodes[at]
            .inspect(|r| r.version_vector().get(r.id()))
            .unwrap_or(0)
    }

    /// Bookkeeping after any call on region `at` failed because its log failed: the client
    /// writes not yet durable have an unknown outcome, and must stay invisible until it
    /// reopens (I5).
    pub fn on_log_failed(&mut self, at: usize, why: &str) {
        // What became durable before the failure is acknowledged first.
        self.on_durable(at);
        let r = &mut self.regions[at];
        if !r.log_failed {
            r.log_failed = true;
            self.log(|| format!("r{at}'s log failed: {why}"));
            self.count("log failures");
        }
        let pending = std::mem::take(&mut self.regions[at].pending);
        for w in pending {
            if let Some(v) = &w.value {
                let why = format!(
                    "r{at}:{} was not durable when r{at}'s log failed",
                    w.dot.seq
                );
                self.model.make_invisible(v.clone(), why);
            }
            self.regions[at].unknown.push(w);
        }
    }

    /// After region `at` made progress on its log: client writes now durable are
    /// acknowledged, and held replies now durable are sent.
    pub fn on_durable(&mut self, at: usize) {
        let durable = self.nodes[at].durable_lsn();
        let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.regions[at].pending)
            .into_iter()
            .partition(|w| w.lsn <= durable);
        self.regions[at].pending = rest;
        for w in done {
            if let Some(r) = self.model.get_mut(w.dot) {
                r.acked = true;
                r.seen = true;
            }
        }
        let (ready, held): (Vec<_>, Vec<_>) = std::mem::take(&mut self.regions[at].held)
            .into_iter()
            .partition(|h| h.lsn <= durable);
        self.regions[at].held = held;
        for h in ready {
            self.send(at, h.to, h.bytes);
        }
    }

    /// Records the ops region `at` made on its own during a call, given its own sequence
    /// number before it: the engine only ever ends a session whose deadline passed.
    ///
    /// # Errors
    /// When an end it made is not for a session some touch gave a deadline that passed, or
    /// it reuses a dot.
    pub fn record_engine_ops(&mut self, at: usize, before: u64) -> Result<(), String> {
        let found = self.nodes[at].inspect(|r| {
            let id = r.id();
            let after = r.version_vector().get(id);
            let ends: Vec<Op> = if after > before {
                r.sessions()
                    .filter_map(|(sid, s)| {
                        s.ended
                            .filter(|e| {
                                e.dot.replica == id && e.dot.seq > before && e.dot.seq <= after
                            })
                            .map(|e| Op {
                                dot: e.dot,
                                ts: e.ts,
                                session: sid.clone(),
                                kind: OpKind::End,
                            })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            (after.saturating_sub(before), ends)
        });
        let Some((made, ends)) = found else {
            return Ok(());
        };
        if made as usize > ends.len() {
            // An end hidden by a later end of the same session; frames carry it.
            self.count("engine ops not found in state");
        }
        for op in ends {
            if self.model.get(op.dot).is_some_and(|r| r.op == op) {
                // Its own history coming back from a peer (after a loss it could not see).
                continue;
            }
            self.check_engine_op(at, &op)?;
            self.log(|| format!("r{at} expired {:?} as r{at}:{}", op.session, op.dot.seq));
            self.count("expiry ends");
            self.record_op(&op, &format!("r{at} expired {:?}", op.session))?;
        }
        Ok(())
    }

    /// An op made by the engine itself must be the end of a session whose deadline passed.
    ///
    /// # Errors
    /// When it is not.
    pub fn check_engine_op(&self, at: usize, op: &Op) -> Result<(), String> {
        if !self.params.checks(Invariant::I2) {
            // Reused dots make the model's history unreliable.
            return Ok(());
        }
        let due = self.model.ops().any(|o| {
            o.session == op.session
                && matches!(o.kind, OpKind::Touch { deadline_ms } if deadline_ms <= self.now())
        });
        if !matches!(op.kind, OpKind::End) || !due {
            return Err(self.fail(format!("r{at} made {op:?} on its own")));
        }
        Ok(())
    }

    /// Records an op learnt from `context` (a write, an engine op, a frame).
    ///
    /// # Errors
    /// A dot naming two ops (I2), unless I2 is skipped: then the newer op replaces the
    /// older in the model.
    pub fn record_op(&mut self, op: &Op, context: &str) -> Result<(), String> {
        match self.model.record(op) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.violation(Invariant::I2, format!("I2 violated: {context}, but {e}"))?;
                self.model.forget(op.dot);
                self.model.record(op).map_err(|e| self.fail(e))
            }
        }
    }

    /// The dots of `origin`'s ops the model holds above `seq`, with whether each was seen.
    pub fn own_ops_after(&self, origin: ReplicaId, seq: u64) -> Vec<(Dot, bool)> {
        self.model
            .ops_of_after(origin, seq)
            .into_iter()
            .map(|d| (d, self.model.get(d).is_some_and(|r| r.seen)))
            .collect()
    }
}

/// The one command that replays the run of `p` (its seed, and its steps and skipped checks
/// when not the defaults).
pub fn replay_line(p: &Params) -> String {
    let mut env = format!("SIM_SEED={}", p.seed);
    if p.calm {
        env.push_str(" SIM_CALM=1");
    }
    if p.steps != super::DEFAULT_STEPS {
        env.push_str(&format!(" SIM_STEPS={}", p.steps));
    }
    if !p.skipped.is_empty() {
        let names: Vec<String> = p.skipped.iter().map(|i| format!("{i:?}")).collect();
        env.push_str(&format!(" SIM_SKIP={}", names.join(",")));
    }
    format!("{env} cargo test -p session-ha-tests --test multi_region_sim -- --nocapture")
}
