//! I4 for a retired region that returns, over random schedules: a writes and ends sessions,
//! some of it never replicated; it is backed up at a random point and lost; b retires it,
//! writes and ends more, and collects. Then a comes back, from that backup or from its own
//! disk, as a new incarnation. Whatever a held is either held by b too or given up with the
//! retirement, so its return changes nothing at b, and a ends up serving exactly what b
//! serves: no session b ended or never had is live again anywhere.
//!
//! Replay one schedule: `RETURN_SEED=<n> cargo test -p session-ha --test
//! a_retired_regions_return_changes_nothing_over_random_schedules`.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;

use common::pair::{pair, restored_from, settle, sync_all, Node};
use session_ha::fs::Vfs;
use session_ha::FsyncPolicy;

const SESSIONS: [&str; 5] = ["s0", "s1", "s2", "s3", "s4"];
const STEPS: u64 = 12;

/// splitmix64: the same schedule for the same seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One random write or end at `n`; refusals (a write to an ended session) are fine.
fn act(rng: &mut Rng, n: &Node, step: u64) {
    let s = SESSIONS[rng.below(SESSIONS.len() as u64) as usize];
    if rng.below(4) == 0 {
        let _ = n.s().end(s);
    } else {
        let key = format!("k{}", rng.below(3));
        let _ = n.s().put(s, key, format!("v{step}"));
    }
}

/// What a client reads of every session.
fn served(n: &Node) -> Vec<String> {
    SESSIONS
        .iter()
        .map(|s| format!("{s}: {:?}", n.s().get(s.as_bytes()).unwrap()))
        .collect()
}

fn run(seed: u64, from_backup: bool) {
    let (time, mut a, b) = pair(FsyncPolicy::Always);
    let mut rng = Rng(seed);
    let backup_at = rng.below(STEPS);
    let backup = Path::new("/backups/a.backup");
    let mut restored = None;
    for step in 0..STEPS {
        let who = if rng.below(2) == 0 { &a } else { &b };
        act(&mut rng, who, step);
        if rng.below(2) == 0 {
            sync_all(&[&a, &b]);
        } else {
            a.sync();
            b.sync();
        }
        if from_backup && step == backup_at {
            a.fs.create_dir_all(Path::new("/backups")).unwrap();
            a.s().backup(backup).unwrap();
            restored = Some(restored_from(&a, backup, FsyncPolicy::Always));
        }
    }
    let a_id = a.id();
    a.power_cut();
    b.s().remove_member(a_id).unwrap();
    for step in STEPS..STEPS + 4 {
        act(&mut rng, &b, step);
    }
    settle(&time, &[&b], 8, 31_000);
    let retired = b.s().status().replica.retired;
    assert!(
        retired
            .iter()
            .any(|r| r.id == a_id && r.given_up_at.is_some()),
        "seed {seed}: b gave a up: {retired:?}"
    );
    let before = served(&b);
    let mut back = match restored {
        Some(r) => r,
        None => a,
    };
    back.open().unwrap();
    let region = back.s().region().to_string();
    b.s().add_peer(back.id(), &region).unwrap();
    settle(&time, &[&back, &b], 6, 1_000);
    let how = if from_backup { "backup" } else { "own disk" };
    assert!(
        back.s().status().replica.fence.is_none(),
        "seed {seed} ({how}): the returning node caught up"
    );
    assert_eq!(
        served(&b),
        before,
        "seed {seed} ({how}): a's return changed b"
    );
    assert_eq!(
        served(&back),
        before,
        "seed {seed} ({how}): a serves otherwise"
    );
}

#[test]
fn a_retired_region_back_from_a_backup_or_its_disk_changes_nothing() {
    let seeds = match std::env::var("RETURN_SEED") {
        Ok(s) => {
            let n = s.parse().unwrap();
            n..n + 1
        }
        Err(_) => 0..150,
    };
    for seed in seeds {
        run(seed, true);
        run(seed, false);
    }
}
