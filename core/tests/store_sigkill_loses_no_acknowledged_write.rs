//! A writer process killed with SIGKILL at random moments (mid-write, mid-fsync, during a
//! background snapshot or compaction) loses no write it acknowledged: round after round a
//! child process (this test binary, re-run with an environment variable) opens the same
//! directory on the real disk, writes with `FsyncPolicy::Always` (snapshots and compactions
//! running in the background and every 7 writes) and prints each write's id once the write
//! returned Ok; the parent kills it, reopens the directory and finds every
//! printed id.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use session_ha::store::verify_dir;
use session_ha::{FsyncPolicy, Store, StoreConfig, WriteMode};

const DIR_VAR: &str = "SESSION_HA_SIGKILL_CHILD_DIR";
const FROM_VAR: &str = "SESSION_HA_SIGKILL_CHILD_FROM";
const ROUNDS: u64 = 24;

fn config(background: bool) -> StoreConfig {
    let mut c = StoreConfig::new("us-east-1");
    c.fsync = FsyncPolicy::Always;
    c.write_mode = WriteMode::WaitDurable;
    c.segment_size = 2048;
    c.tick_interval = None;
    c.snapshot_interval = background.then(|| Duration::from_millis(5));
    c.compaction.max_chain = 3;
    c
}

fn put(store: &Store, id: u64) -> session_ha::Result<u64> {
    store.put(
        format!("s{}", id % 40).as_str(),
        format!("w{id}"),
        id.to_string(),
    )
}

/// The child: when run by the parent (the variables are set), writes from the given id on
/// and prints every acknowledged id, until it is killed. In a plain test run, does nothing.
#[test]
fn child_process_writes_until_killed() {
    let (Some(dir), Some(from)) = (std::env::var_os(DIR_VAR), std::env::var_os(FROM_VAR)) else {
        return;
    };
    let from: u64 = from.to_str().unwrap().parse().unwrap();
    let (store, _) = Store::open(Path::new(&dir), config(true)).unwrap();
    let mut out = std::io::stdout().lock();
    for id in from.. {
        put(&store, id).unwrap();
        writeln!(out, "ack {id}").unwrap();
        out.flush().unwrap();
        // Snapshots in line with the writes too, so that every run takes some, however
        // fast the disk.
        if id % 7 == 0 {
            store.snapshot().unwrap();
        }
    }
}

/// xorshift64*: enough randomness for kill moments, from a printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// Runs one child from `from`; kills it after `kill_after` acknowledged ids and a pause of
/// `pause_us`; returns every id it printed.
fn round(dir: &Path, from: u64, kill_after: u64, pause_us: u64) -> Vec<u64> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process_writes_until_killed",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .env(FROM_VAR, from.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    let mut killed = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ack ") {
            acked.push(id.parse::<u64>().unwrap());
        }
        if acked.len() as u64 == kill_after {
            std::thread::sleep(Duration::from_micros(pause_us));
            child.kill().unwrap();
            killed = true;
            break;
        }
    }
    // What the child printed before it died counts too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(id) = line.strip_prefix("ack ") {
            acked.push(id.parse::<u64>().unwrap());
        }
    }
    let status = child.wait().unwrap();
    if !killed {
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        panic!("the child stopped by itself ({status}) after {acked:?}: {err}");
    }
    acked
}

#[test]
fn every_write_printed_before_a_sigkill_is_there_after_recovery() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let mut all = Vec::new();
    let mut snapshots = 0;
    for r in 0..ROUNDS {
        let from = all.last().map_or(1, |l| l + 1);
        let kill_after = 1 + rng.below(30);
        let pause_us = rng.below(4000);
        let acked = round(&dir, from, kill_after, pause_us);
        assert!(acked.len() as u64 >= kill_after, "round {r}: {acked:?}");
        all.extend(acked);

        let (store, report) = Store::open(&dir, config(false))
            .unwrap_or_else(|e| panic!("seed {seed}, round {r}: reopen failed: {e}"));
        assert!(
            report.fallbacks.is_empty(),
            "seed {seed}, round {r}: {:?}",
            report.fallbacks
        );
        snapshots = snapshots.max(report.manifest_generation);
        let lost: Vec<u64> = all
            .iter()
            .copied()
            .filter(|&id| {
                store
                    .get_field(
                        format!("s{}", id % 40).as_bytes(),
                        format!("w{id}").as_bytes(),
                    )
                    .unwrap()
                    != Some(id.to_string().into())
            })
            .collect();
        assert!(
            lost.is_empty(),
            "seed {seed}, round {r} (killed after {kill_after} + {pause_us} us): lost {lost:?}"
        );
        common::store::assert_dots_known(&store, &format!("seed {seed}, round {r}"));
        store.close().unwrap();
    }
    assert!(snapshots > 0, "no background snapshot ever ran");
    let v = verify_dir(&session_ha::fs::OsFs, &dir).unwrap();
    assert!(v.is_intact(), "seed {seed}: {:?}", v.problems);
}
