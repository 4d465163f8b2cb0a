//! What one seed simulates: how many regions, how hostile the network and the disks are,
//! which fsync policy the stores run, how small the engine's buffers are, how often regions
//! crash, restart, are damaged, backed up and restored, and whether one dies for good.
//! Everything derives from the seed.

use session_ha::{FsyncPolicy, ReplicaConfig, WriteMode};

use super::network::Faults;
use super::rng::Rng;

/// The invariants of `docs/INVARIANTS.md` the simulator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// Acks are on disk.
    I1,
    /// One dot, one op.
    I2,
    /// The log's end is known.
    I3,
    /// No resurrection.
    I4,
    /// Refused means invisible.
    I5,
}

impl Invariant {
    /// Every invariant.
    pub const ALL: [Invariant; 5] = [
        Invariant::I1,
        Invariant::I2,
        Invariant::I3,
        Invariant::I4,
        Invariant::I5,
    ];

    /// Parses `"I1"` ... `"I5"`.
    pub fn parse(s: &str) -> Option<Invariant> {
        Invariant::ALL
            .into_iter()
            .find(|i| format!("{i:?}").eq_ignore_ascii_case(s.trim()))
    }
}

/// Per-mille rates of what happens to regions, per region and step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Events {
    /// The disk is planned to die at one of its next calls; the power goes a few steps later.
    pub disk_death_pm: u64,
    /// The power goes now.
    pub power_cut_pm: u64,
    /// A clean close, and a restart some steps later.
    pub restart_pm: u64,
    /// When a stopped region reopens: its files were damaged at rest first.
    pub damage_pm: u64,
    /// When a stopped region reopens: its directory is restored from its newest backup.
    pub restore_pm: u64,
    /// A backup is taken.
    pub backup_pm: u64,
    /// An incremental snapshot (a tenth of them a compaction).
    pub snapshot_pm: u64,
    /// Maintenance runs (expiry, resends, tombstone collection).
    pub tick_pm: u64,
    /// Two regions compare digests and repair what differs.
    pub repair_pm: u64,
}

/// The shape of one simulated run.
#[derive(Debug, Clone)]
pub struct Params {
    /// The seed everything derives from.
    pub seed: u64,
    /// Number of regions (3 to 5).
    pub replicas: usize,
    /// Steps of the chaos phase.
    pub steps: u32,
    /// Engine configuration (the same for every region).
    pub config: ReplicaConfig,
    /// The stores' fsync policy.
    pub fsync: FsyncPolicy,
    /// Whether client writes wait for durability, per region.
    pub write_modes: Vec<WriteMode>,
    /// WAL segment size.
    pub segment_size: u64,
    /// Network faults during the chaos phase.
    pub faults: Faults,
    /// Per-mille chance per step that a partition starts (when none is active).
    pub partition_pm: u64,
    /// What happens to regions.
    pub events: Events,
    /// Per-mille chance per region and step that the checks read its disk's ground truth
    /// (I1) when what it claimed outgrew what it was last seen to hold.
    pub truth_pm: u64,
    /// The region that dies for good and the step at which it dies.
    pub death: Option<(usize, u32)>,
    /// Step at which the survivors start removing the dead region (during chaos), if any;
    /// otherwise they remove it when the chaos ends.
    pub removal_at: Option<u32>,
    /// Most local writes per step.
    pub writes_per_step: u64,
    /// Nothing happens to disks or regions (`SIM_CALM=1`, see [`Params::calm`]).
    pub calm: bool,
    /// Invariants not checked (`SIM_SKIP`): to look past a violation already known, e.g. to
    /// see what else a core breaks. Empty in every normal run.
    pub skipped: Vec<Invariant>,
}

impl Params {
    /// The parameters of `seed`, with `steps` chaos steps.
    pub fn for_seed(seed: u64, steps: u32) -> Params {
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let replicas = rng.range(3, 5) as usize;
        let config = ReplicaConfig {
            log_max_ops: rng.pick(&[3, 8, 32, 1_000_000]),
            frame_budget: rng.pick(&[150, 600, 4_096, 256 * 1024]),
            window: rng.pick(&[1, 2, 4, 8]),
            resend_after_ms: rng.pick(&[30, 100, 400]),
            end_retention_ms: 0,
            ..ReplicaConfig::default()
        };
        let fsync = match rng.below(3) {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EveryMillis(rng.pick(&[5, 10, 40, 150]) as u32),
            _ => FsyncPolicy::Never,
        };
        let waiting = rng.pick(&[0, 0, 300, 1000]);
        let write_modes = (0..replicas)
            .map(|_| {
                if rng.chance(waiting) {
                    WriteMode::WaitDurable
                } else {
                    WriteMode::Queued
                }
            })
            .collect();
        let faults = Faults {
            drop_pm: rng.pick(&[0, 20, 80, 200]),
            dup_pm: rng.pick(&[0, 30, 150]),
            max_delay_ms: rng.pick(&[0, 10, 60, 200]),
            reorder: rng.chance(700),
        };
        let lively = rng.chance(800);
        let events = Events {
            disk_death_pm: if lively { rng.pick(&[5, 15, 30]) } else { 0 },
            power_cut_pm: if lively { rng.pick(&[0, 5, 15]) } else { 0 },
            restart_pm: if lively { rng.pick(&[0, 5, 15]) } else { 0 },
            damage_pm: rng.pick(&[0, 150, 400]),
            restore_pm: rng.pick(&[0, 200, 500]),
            backup_pm: rng.pick(&[0, 10, 30]),
            snapshot_pm: rng.pick(&[5, 30, 100]),
            tick_pm: rng.pick(&[100, 300]),
            repair_pm: rng.pick(&[0, 20, 60]),
        };
        let death = rng
            .chance(400)
            .then(|| (rng.index(replicas), rng.range(0, u64::from(steps)) as u32));
        let removal_at = death
            .filter(|_| rng.chance(500))
            .map(|(_, at)| at + rng.range(1, 40) as u32)
            .filter(|at| *at < steps);
        Params {
            seed,
            replicas,
            steps,
            config,
            fsync,
            write_modes,
            segment_size: rng.pick(&[4_096, 16 << 10, 64 << 10]),
            faults,
            partition_pm: rng.pick(&[0, 10, 40]),
            events,
            truth_pm: rng.pick(&[10, 30, 80]),
            death,
            removal_at,
            writes_per_step: rng.range(1, 4),
            calm: false,
            skipped: Vec::new(),
        }
    }

    /// Whether invariant `i` is checked.
    pub fn checks(&self, i: Invariant) -> bool {
        !self.skipped.contains(&i)
    }

    /// These parameters without checking the invariants named in `list` (`"I1,I4"`).
    ///
    /// # Errors
    /// A name that is not an invariant.
    pub fn skipping(mut self, list: &str) -> Result<Params, String> {
        for name in list.split(',').filter(|n| !n.trim().is_empty()) {
            let i = Invariant::parse(name).ok_or_else(|| format!("no invariant {name:?}"))?;
            if !self.skipped.contains(&i) {
                self.skipped.push(i);
            }
        }
        self.skipped.sort();
        Ok(self)
    }

    /// The parameters of `seed` with nothing happening to the disks or the regions (no
    /// crash, restart, damage, backup, restore or death), `Always` syncs and no reading of
    /// disk truth between steps: runs that exercise the network and the stores' normal work
    /// only, for tests of the checks themselves.
    pub fn calm(seed: u64, steps: u32) -> Params {
        let mut p = Params::for_seed(seed, steps);
        p.fsync = FsyncPolicy::Always;
        p.events = Events {
            snapshot_pm: p.events.snapshot_pm,
            tick_pm: p.events.tick_pm,
            ..Events::default()
        };
        p.truth_pm = 0;
        p.death = None;
        p.removal_at = None;
        p.calm = true;
        p
    }
}
