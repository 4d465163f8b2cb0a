//! The world: the replicas, the one manual clock they share, the network between them, the
//! model of every op made, and what the checks remember between steps. The moves of a step
//! are in `moves.rs`, trace descriptions in `trace.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use session_ha::{Change, ManualTime, OpKind, Replica, ReplicaId, SessionId, VersionVector};

use super::model::Model;
use super::network::Network;
use super::params::Params;
use super::rng::Rng;

/// Simulated time at which every run starts (Unix ms).
pub const START_MS: u64 = 1_700_000_000_000;

/// Everything one simulated run holds.
pub struct World {
    /// What this run simulates.
    pub params: Params,
    /// The run's randomness.
    pub rng: Rng,
    /// The clock every replica reads.
    pub time: ManualTime,
    /// The replicas, by index.
    pub replicas: Vec<Replica>,
    /// Whether each replica is still running.
    pub alive: Vec<bool>,
    /// The network.
    pub net: Network,
    /// Every op made.
    pub model: Model,
    /// The step being run (chaos steps, then settling rounds).
    pub step: u32,
    /// Per replica, the sessions it has seen ended or expired.
    pub gone_seen: Vec<BTreeSet<SessionId>>,
    /// Per replica, its version vector at the last check.
    pub last_vv: Vec<VersionVector>,
    /// Print every event to stderr (`SIM_TRACE=1`).
    pub trace: bool,
    /// Counts of what happened, for the summary.
    pub stats: BTreeMap<&'static str, u64>,
}

impl World {
    /// A fully meshed world for `params`.
    ///
    /// # Errors
    /// When the engine refuses to register a peer.
    pub fn new(params: Params, trace: bool) -> Result<World, String> {
        let time = ManualTime::new(START_MS);
        let mut replicas: Vec<Replica> = (0..params.replicas)
            .map(|i| {
                let clock = Arc::new(time.clone());
                Replica::new(&format!("r{i}"), 0, params.config.clone(), clock)
            })
            .collect();
        let ids: Vec<(ReplicaId, String)> = replicas
            .iter()
            .map(|r| (r.id(), r.name().to_string()))
            .collect();
        for r in &mut replicas {
            for (id, name) in &ids {
                if *id != r.id() {
                    r.add_peer(*id, name)
                        .map_err(|e| format!("add_peer: {e}"))?;
                }
            }
        }
        let n = params.replicas;
        Ok(World {
            rng: Rng::new(params.seed),
            net: Network::new(params.faults),
            params,
            time,
            replicas,
            alive: vec![true; n],
            model: Model::default(),
            step: 0,
            gone_seen: vec![BTreeSet::new(); n],
            last_vv: vec![VersionVector::new(); n],
            trace,
            stats: BTreeMap::new(),
        })
    }

    /// Simulated time now.
    pub fn now(&self) -> u64 {
        use session_ha::TimeSource;
        self.time.now_ms()
    }

    /// A failure message naming the seed and the step.
    pub fn fail(&self, what: impl std::fmt::Display) -> String {
        let p = &self.params;
        format!(
            "seed {} (replay with SIM_SEED={}; {} replicas, death {:?}, removal at {:?}), \
             step {}, t+{}ms: {what}",
            p.seed,
            p.seed,
            p.replicas,
            p.death,
            p.removal_at,
            self.step,
            self.now() - START_MS
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

    /// Indices of the running replicas.
    pub fn live(&self) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|&i| self.alive[i])
            .collect()
    }

    /// The index of replica `id`.
    pub fn index_of(&self, id: ReplicaId) -> Option<usize> {
        self.replicas.iter().position(|r| r.id() == id)
    }

    /// The replica that died, if one did.
    pub fn dead(&self) -> Option<usize> {
        (0..self.replicas.len()).find(|&i| !self.alive[i])
    }

    /// Records what a replica's call changed: the ends it made for expired sessions are ops
    /// like any other.
    ///
    /// # Errors
    /// When the engine made an op of its own that is not the end of a session whose deadline
    /// passed, or reused a dot.
    pub fn record_changes(&mut self, at: usize, changes: &[Change]) -> Result<(), String> {
        let own = self.replicas[at].id();
        for c in changes {
            if let Change::Op(op) = c {
                if op.dot.replica == own {
                    self.log(|| format!("r{at} expired {:?} as {:?}", op.session, op.dot));
                    // Only an end is made for a replica, and only once a deadline passed.
                    let due = self.model.ops().any(|o| {
                        o.session == op.session
                            && matches!(o.kind, OpKind::Touch { deadline_ms }
                                if deadline_ms <= self.now())
                    });
                    if !matches!(op.kind, OpKind::End) || !due {
                        return Err(self.fail(format!("r{at} made {op:?} on its own")));
                    }
                    self.count("expiry ends");
                    self.model.record(op).map_err(|e| self.fail(e))?;
                }
            }
        }
        Ok(())
    }
}
