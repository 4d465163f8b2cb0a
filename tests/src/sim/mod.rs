//! A deterministic multi-region simulator for the replication core.
//!
//! One seed gives one run: 3 to 5 [`session_ha::Replica`]s sharing one manual clock, a
//! network that carries encoded messages and drops, duplicates, delays and reorders them,
//! partitions that heal, and (in most seeds) a replica that dies for good and is later
//! removed from membership. A run has two phases:
//! 1. *chaos*: each step advances time, may start or heal a partition, makes random local
//!    writes on running replicas, lets them send frames and heartbeats, delivers what is
//!    due, and ticks some of them; the invariants of [`check::step_invariants`] are checked
//!    after every step;
//! 2. *settling*: every link heals, the network turns reliable, writes stop, the survivors
//!    remove the dead replica, and rounds of ticks, frames and acks run until the survivors
//!    agree; then [`check::quiescent`] asserts convergence, no loss of acknowledged writes,
//!    tombstone collection, and the oracle of [`model`].
//!
//! Every failure message names the seed; `SIM_SEED=<n>` replays one, `SIM_TRACE=1` prints
//! every event of it.

pub mod check;
pub mod model;
pub mod moves;
pub mod network;
pub mod params;
pub mod rng;
pub mod trace;
pub mod world;
pub mod writes;

use network::Faults;
pub use params::Params;
pub use world::World;
use writes::SessionPool;

/// Rounds the settling phase may take before the run counts as not converging.
const SETTLE_ROUNDS: u32 = 80;

/// What a run did, for the caller's summary.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Counts of events by kind.
    pub stats: std::collections::BTreeMap<&'static str, u64>,
    /// Settling rounds it took to converge.
    pub settle_rounds: u32,
}

/// Runs one seed and checks it.
///
/// # Errors
/// The first broken invariant or the failed quiescence assertions, naming the seed.
pub fn run(params: Params, trace: bool) -> Result<Summary, String> {
    let (world, settle_rounds) = simulate(params, trace)?;
    check::quiescent(&world)?;
    Ok(Summary {
        stats: world.stats,
        settle_rounds,
    })
}

/// Runs the chaos and settling phases of one seed (checking the per-step invariants) and
/// returns the world and the settling rounds taken, for the caller to check.
///
/// # Errors
/// The first broken per-step invariant, or an engine call that failed, naming the seed.
pub fn simulate(params: Params, trace: bool) -> Result<(World, u32), String> {
    let mut world = World::new(params, trace)?;
    let mut pool = SessionPool::default();
    world.log(|| format!("{:?}", world.params));
    chaos(&mut world, &mut pool)?;
    let settle_rounds = settle(&mut world)?;
    Ok((world, settle_rounds))
}

fn chaos(world: &mut World, pool: &mut SessionPool) -> Result<(), String> {
    let mut heal_at = None;
    for step in 0..world.params.steps {
        world.step = step;
        let dt = world.rng.below(30);
        world.time.advance(dt);
        if let Some((victim, at)) = world.params.death {
            if at == step {
                world.kill(victim);
            }
        }
        if world.params.removal_at == Some(step) {
            remove_everywhere(world, 700)?;
        }
        match heal_at {
            Some(t) if world.now() >= t => {
                world.heal(500)?;
                heal_at = None;
            }
            None if world.rng.chance(world.params.partition_pm) => {
                world.start_partition();
                heal_at = Some(world.now() + world.rng.range(50, 800));
            }
            _ => {}
        }
        for _ in 0..world.rng.range(0, world.params.writes_per_step) {
            let live = world.live();
            let at = live[world.rng.index(live.len())];
            writes::random_write(world, pool, at)?;
        }
        world.send_round(600, 150)?;
        world.deliver_due()?;
        for at in world.live() {
            if world.rng.chance(300) {
                world.tick(at)?;
            }
        }
        check::step_invariants(world)?;
    }
    Ok(())
}

/// Survivors remove the dead replica: the first always, each other one with probability
/// `each_pm` (the rest learn it from their peers).
fn remove_everywhere(world: &mut World, each_pm: u64) -> Result<(), String> {
    for (n, at) in world.live().into_iter().enumerate() {
        if n == 0 || world.rng.chance(each_pm) {
            world.remove_dead(at)?;
        }
    }
    Ok(())
}

fn settle(world: &mut World) -> Result<u32, String> {
    world.heal(500)?;
    world.net.faults = Faults::default();
    if world.dead().is_some() && world.params.removal_at.is_none() {
        remove_everywhere(world, 500)?;
    }
    let resend = world.params.config.resend_after_ms;
    let mut calm = 0;
    for round in 0..SETTLE_ROUNDS {
        world.step = world.params.steps + round;
        // In-flight messages from the chaos phase may carry a delay: let them land.
        let dt = resend + world.rng.below(resend + 1);
        world.time.advance(dt);
        for at in world.live() {
            world.tick(at)?;
        }
        for _ in 0..8 {
            world.send_round(1000, 0)?;
            if world.deliver_due()? == 0 && world.net.in_flight() == 0 {
                break;
            }
        }
        world.send_round(1000, 1000)?;
        while world.deliver_due()? > 0 {}
        check::step_invariants(world)?;
        if check::settled(world) {
            calm += 1;
            if calm == 3 {
                return Ok(round + 1);
            }
        } else {
            calm = 0;
        }
    }
    Ok(SETTLE_ROUNDS)
}
