//! A deterministic multi-region simulator for the durable store.
//!
//! One seed gives one run: 3 to 5 regions, each a real `session_ha::Store` on its own
//! in-memory fault-injecting disk (`FaultyFs`), sharing one manual clock; an inline WAL
//! writer, so no thread runs and the simulator decides when logs are written and synced
//! under the seed's fsync policy (`Always`, `EveryMillis`, `Never`); a network that carries
//! encoded messages and drops, duplicates, delays and reorders them; partitions that heal.
//! Regions get disks that die at any call (then lose power, with torn writes), power cuts,
//! clean restarts, at-rest damage of their newest records, segments or snapshots while
//! down, backups and restores, snapshots and compactions, maintenance (expiry, tombstone
//! collection), digest comparisons with repair frames; in some seeds a region dies for good
//! and is removed from membership. A run has two phases:
//! 1. *chaos*: each step advances time, runs the lifecycle moves (`lifecycle.rs`), then a
//!    random interleaving of client writes, log pumps, frames sent, messages delivered,
//!    maintenance, snapshots and repairs; the invariants of [`check::step_invariants`]
//!    (I1, I4, I5; I2 and I3 where ops are learnt and regions reopen) are checked after
//!    every step;
//! 2. *settling*: every link heals, the network turns reliable, every region but the dead
//!    one comes back on a healthy disk, writes stop, the survivors remove the dead region,
//!    and rounds of maintenance, frames and acks run until the survivors agree; then
//!    [`quiescence::quiescent`] asserts convergence and the oracle of [`model`].
//!
//! Every store call goes through the adapter in [`node`]. A failure message names the seed
//! and ends with the one command that replays it; `SIM_TRACE=1` prints every event.

pub mod check;
pub mod give_ups;
pub mod lifecycle;
pub mod model;
pub mod moves;
pub mod network;
pub mod node;
pub mod params;
pub mod quiescence;
pub mod region;
pub mod reopen;
pub mod rng;
pub mod trace;
pub mod world;
pub mod writes;

use network::{Envelope, Faults};
pub use params::Params;
pub use world::World;
use writes::SessionPool;

/// Chaos steps per seed unless `SIM_STEPS` says otherwise.
pub const DEFAULT_STEPS: u32 = 60;

/// Rounds the settling phase may take before the run counts as not converging.
const SETTLE_ROUNDS: u32 = 80;
/// Settling rounds after which the operator retires, at each survivor, the dead region's
/// ids that still block its collection (retirements spread by themselves before that).
const OPERATOR_AFTER_ROUNDS: u32 = 20;

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
    let (mut world, settle_rounds) = simulate(params, trace)?;
    quiescence::quiescent(&mut world)?;
    Ok(Summary {
        stats: world.stats,
        settle_rounds,
    })
}

/// Runs the chaos and settling phases of one seed (checking the per-step invariants) and
/// returns the world and the settling rounds taken, for the caller to check.
///
/// # Errors
/// The first broken per-step invariant, or a store call that failed, naming the seed.
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
                world.kill_for_good(victim);
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
        world.lifecycle()?;
        step_moves(world, pool)?;
        world.cut_dying()?;
        check::step_invariants(world)?;
    }
    Ok(())
}

/// One move of a step.
enum Move {
    Write,
    Pump(usize),
    Send(usize),
    Deliver(Envelope),
    Tick(usize),
    Snapshot(usize, bool),
    Repair(usize, usize),
}

/// The moves of a chaos step, in a random interleaving (deliveries keep the order the
/// network gave them, so FIFO links stay FIFO).
fn step_moves(world: &mut World, pool: &mut SessionPool) -> Result<(), String> {
    let ev = world.params.events;
    let mut others = Vec::new();
    for _ in 0..world.rng.range(0, world.params.writes_per_step) {
        others.push(Move::Write);
    }
    let live = world.live();
    for &at in &live {
        others.push(Move::Pump(at));
        if world.rng.chance(500) {
            others.push(Move::Pump(at));
        }
        others.push(Move::Send(at));
        if world.rng.chance(ev.tick_pm) {
            others.push(Move::Tick(at));
        }
        if world.rng.chance(ev.snapshot_pm) {
            others.push(Move::Snapshot(at, world.rng.chance(100)));
        }
    }
    if live.len() >= 2 && world.rng.chance(ev.repair_pm) {
        let a = live[world.rng.index(live.len())];
        let b = live[world.rng.index(live.len())];
        others.push(Move::Repair(a, b));
    }
    world.rng.shuffle(&mut others);
    let mut delivers: std::collections::VecDeque<Envelope> = world.take_due().into();
    let mut others: std::collections::VecDeque<Move> = others.into();
    loop {
        let total = (delivers.len() + others.len()) as u64;
        if total == 0 {
            break;
        }
        let next = if world.rng.below(total) < delivers.len() as u64 {
            delivers.pop_front().map(Move::Deliver)
        } else {
            others.pop_front()
        };
        if let Some(m) = next {
            run_move(world, pool, m)?;
        }
    }
    Ok(())
}

fn run_move(world: &mut World, pool: &mut SessionPool, m: Move) -> Result<(), String> {
    match m {
        Move::Write => {
            let live = world.live();
            if live.is_empty() {
                return Ok(());
            }
            let at = live[world.rng.index(live.len())];
            writes::random_write(world, pool, at)
        }
        Move::Pump(at) => {
            world.pump(at, false);
            Ok(())
        }
        Move::Send(at) => world.send_from(at, 600, 150),
        Move::Deliver(env) => world.deliver(env),
        Move::Tick(at) => world.tick(at),
        Move::Snapshot(at, compact) => world.snapshot(at, compact),
        Move::Repair(a, b) => world.repair(a, b),
    }
}

/// Survivors remove the dead region: the first always, each other one with probability
/// `each_pm` (the rest learn it from their peers).
fn remove_everywhere(world: &mut World, each_pm: u64) -> Result<(), String> {
    for (n, at) in world.live().into_iter().enumerate() {
        if n == 0 || world.rng.chance(each_pm) {
            world.remove_dead(at)?;
        }
    }
    Ok(())
}

/// The operator's step from the README's incident table ("a region will not come back, and
/// tombstones pile up"): a survivor whose collection is still blocked by an id of the dead
/// region retires it there. Needed when a retirement did not spread: a survivor restored
/// from a backup that predates it holds the old id as a member, and a peer that lost the
/// retirement to a crash has nothing to tell it.
fn retire_what_blocks(world: &mut World) -> Result<(), String> {
    let Some(dead) = world.dead() else {
        return Ok(());
    };
    for at in world.live() {
        let blocked = world.nodes[at]
            .inspect(|r| r.status().collection_blocked_by)
            .unwrap_or_default();
        if blocked.iter().any(|id| world.nodes[dead].had_id(*id)) {
            world.count("operator retirements after settling stalled");
            world.remove_dead(at)?;
        }
    }
    Ok(())
}

fn pump_all(world: &mut World) {
    for at in world.live() {
        world.pump(at, true);
    }
}

fn settle(world: &mut World) -> Result<u32, String> {
    world.step = world.params.steps;
    world.heal(500)?;
    world.net.faults = Faults::default();
    for at in 0..world.nodes.len() {
        if world.regions[at].power_cut_at.is_some() {
            world.power_cut(at)?;
        }
        if matches!(world.regions[at].phase, region::Phase::Down { .. }) {
            world.start(at)?;
        }
    }
    if world.dead().is_some() {
        // Again if it was done during the chaos: a restore may have taken a removal back.
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
        if round >= OPERATOR_AFTER_ROUNDS {
            retire_what_blocks(world)?;
        }
        for _ in 0..8 {
            pump_all(world);
            for at in world.live() {
                world.send_from(at, 1000, 0)?;
            }
            let delivered = world.deliver_due()?;
            pump_all(world);
            if delivered == 0 && world.net.in_flight() == 0 {
                break;
            }
        }
        for at in world.live() {
            world.send_from(at, 1000, 1000)?;
        }
        while world.deliver_due()? > 0 {
            pump_all(world);
        }
        pump_all(world);
        check::step_invariants(world)?;
        // An effect that only a repaired copy brought, whose op was lost with its origin's
        // disk, spreads by no op: where digests still differ once replication is done, the
        // operator repairs (the README's incident step), and the checks judge the result.
        for (a, b) in quiescence::differing_digests(world) {
            world.count("final repairs");
            world.repair(a, b)?;
        }
        if quiescence::settled(world) {
            calm += 1;
            if calm == 2 {
                return Ok(round + 1);
            }
        } else {
            calm = 0;
        }
    }
    Ok(SETTLE_ROUNDS)
}
