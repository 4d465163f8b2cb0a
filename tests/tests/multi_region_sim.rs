//! The multi-region simulation over many seeds: whatever the network does (drops,
//! duplicates, delays, partitions) and whichever replica dies, the survivors converge to
//! identical state, lose no acknowledged write, never resurrect an ended session, and
//! collect every tombstone once the dead replica is removed.
//!
//! `SIM_SEEDS=<n>` runs more seeds (`SIM_FROM=<k>` starts at seed k instead of 0),
//! `SIM_SEED=<n>` replays one (with `SIM_TRACE=1` to print every event), `SIM_STEPS=<n>`
//! changes the chaos steps per seed.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use session_ha_tests::sim::{run, Params};

/// Seeds in a plain `cargo test`, split over this many test functions so they run in
/// parallel.
const DEFAULT_SEEDS: u64 = 1_000;
const SHARDS: u64 = 4;
const DEFAULT_STEPS: u32 = 100;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {v:?}"))
    })
}

fn steps() -> u32 {
    env_u64("SIM_STEPS").map_or(DEFAULT_STEPS, |s| s as u32)
}

fn run_shard(shard: u64) {
    if let Some(seed) = env_u64("SIM_SEED") {
        if shard == 0 {
            let trace = std::env::var("SIM_TRACE").is_ok_and(|v| v == "1");
            let params = Params::for_seed(seed, steps());
            eprintln!("{params:?}");
            let summary = run(params, trace).unwrap_or_else(|e| panic!("{e}"));
            eprintln!("{summary:?}");
        }
        return;
    }
    let from = env_u64("SIM_FROM").unwrap_or(0);
    let seeds = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let mut failures = Vec::new();
    let mut seed = from + shard;
    while seed < from + seeds {
        if let Err(e) = run(Params::for_seed(seed, steps()), false) {
            failures.push(e);
        }
        seed += SHARDS;
    }
    assert!(
        failures.is_empty(),
        "{} of the seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn survivors_converge_without_loss_or_resurrection_shard_0() {
    run_shard(0);
}

#[test]
fn survivors_converge_without_loss_or_resurrection_shard_1() {
    run_shard(1);
}

#[test]
fn survivors_converge_without_loss_or_resurrection_shard_2() {
    run_shard(2);
}

#[test]
fn survivors_converge_without_loss_or_resurrection_shard_3() {
    run_shard(3);
}
