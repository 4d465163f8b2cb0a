//! What one seed simulates: how many replicas, how hostile the network is, how small the
//! engine's buffers are, whether and when a replica dies. Everything derives from the seed.

use session_ha::ReplicaConfig;

use super::network::Faults;
use super::rng::Rng;

/// The shape of one simulated run.
#[derive(Debug, Clone)]
pub struct Params {
    /// The seed everything derives from.
    pub seed: u64,
    /// Number of replicas (3 to 5).
    pub replicas: usize,
    /// Steps of the chaos phase.
    pub steps: u32,
    /// Engine configuration (the same for every replica).
    pub config: ReplicaConfig,
    /// Network faults during the chaos phase.
    pub faults: Faults,
    /// Per-mille chance per step that a partition starts (when none is active).
    pub partition_pm: u64,
    /// The replica that dies and the step at which it dies.
    pub death: Option<(usize, u32)>,
    /// Step at which the survivors start removing the dead replica (during chaos), if any;
    /// otherwise they remove it when the chaos ends.
    pub removal_at: Option<u32>,
    /// Most local writes per step.
    pub writes_per_step: u64,
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
        let faults = Faults {
            drop_pm: rng.pick(&[0, 20, 80, 200]),
            dup_pm: rng.pick(&[0, 30, 150]),
            max_delay_ms: rng.pick(&[0, 10, 60, 200]),
            reorder: rng.chance(700),
        };
        let death = rng
            .chance(650)
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
            faults,
            partition_pm: rng.pick(&[0, 10, 40]),
            death,
            removal_at,
            writes_per_step: rng.range(1, 4),
        }
    }
}
