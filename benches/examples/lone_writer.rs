//! One caller making durable writes one at a time, against the disk's own fdatasync, in the
//! same run: the latency a gen_server writing one session at a time sees.
//!
//! Run: `cargo run --release -p session-ha-benches --example lone_writer [-- WRITES]`
//! (default 2,000 per case), in a temporary directory on the disk under `TMPDIR`.
//!
//! Cases, each WRITES writes after 100 unmeasured ones:
//!
//! - `fdatasync`: a plain file, append 100 bytes and `fdatasync` (the disk's floor);
//! - `wal always`, `wal every_ms 10`: `Wal::append` of 100 bytes, then `wait_durable`;
//! - `store always`, `store every_ms 10`: `Store::put` of one 64-byte field in the default
//!   durable write mode (it returns once the record is durable).
//!
//! Prints p50, p99 and writes/s per case, and each case's p50 and p99 over the fdatasync
//! case's.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use session_ha::fs::OsFs;
use session_ha::wal::{Wal, WalConfig};
use session_ha::{FsyncPolicy, Store, StoreConfig};

const WARMUP: usize = 100;

/// Latencies of `n` calls of `op` (after the warm-up), sorted.
fn measure(n: usize, mut op: impl FnMut(usize)) -> Vec<Duration> {
    for i in 0..WARMUP {
        op(i);
    }
    let mut took: Vec<Duration> = (0..n)
        .map(|i| {
            let started = Instant::now();
            op(WARMUP + i);
            started.elapsed()
        })
        .collect();
    took.sort();
    took
}

/// The `q` quantile of sorted latencies.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[at]
}

/// The plain-file floor: append 100 bytes, fdatasync.
fn fdatasync_case(dir: &Path, n: usize) -> Vec<Duration> {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("plain.log"))
        .expect("the plain file opens");
    let record = [7u8; 100];
    measure(n, |_| {
        f.write_all(&record).expect("append");
        f.sync_data().expect("fdatasync");
    })
}

/// `Wal::append` + `wait_durable` under `fsync`.
fn wal_case(dir: &Path, n: usize, fsync: FsyncPolicy) -> Vec<Duration> {
    let (wal, _) = Wal::open(
        Arc::new(OsFs),
        dir,
        WalConfig::with_fsync(fsync),
        0,
        |_, _| Ok(()),
    )
    .expect("the WAL opens");
    let record = [7u8; 100];
    let took = measure(n, |_| {
        let seq = wal.append(&record).expect("append");
        wal.wait_durable(seq).expect("durable");
    });
    wal.close().expect("close");
    took
}

/// `Store::put` (durable) under `fsync`.
fn store_case(dir: &Path, n: usize, fsync: FsyncPolicy) -> Vec<Duration> {
    let config = StoreConfig {
        fsync,
        snapshot_interval: None,
        tick_interval: None,
        ..StoreConfig::new("us-east-1")
    };
    let (store, _) = Store::open(dir, config).expect("the store opens");
    let value = [7u8; 64];
    let took = measure(n, |i| {
        let session = format!("session-{:08}", i % 1000);
        store
            .put(session.as_str(), "f0", Bytes::copy_from_slice(&value))
            .expect("durable put");
    });
    store.close().expect("close");
    took
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("WRITES is a number"))
        .unwrap_or(2_000);
    let root = tempfile::tempdir().expect("a temporary directory");
    println!(
        "one caller, {n} durable writes per case, in {}",
        root.path().display()
    );
    let every = FsyncPolicy::EveryMillis(10);
    let cases: Vec<(&str, Vec<Duration>)> = vec![
        ("fdatasync", fdatasync_case(root.path(), n)),
        (
            "wal always",
            wal_case(&root.path().join("w1"), n, FsyncPolicy::Always),
        ),
        (
            "wal every_ms 10",
            wal_case(&root.path().join("w2"), n, every),
        ),
        (
            "store always",
            store_case(&root.path().join("s1"), n, FsyncPolicy::Always),
        ),
        (
            "store every_ms 10",
            store_case(&root.path().join("s2"), n, every),
        ),
    ];
    let floor = (quantile(&cases[0].1, 0.5), quantile(&cases[0].1, 0.99));
    println!("| case | p50 µs | p99 µs | writes/s | p50 / fdatasync p50 | p99 / fdatasync p99 |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, took) in &cases {
        let (p50, p99) = (quantile(took, 0.5), quantile(took, 0.99));
        let total: Duration = took.iter().sum();
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} |",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            took.len() as f64 / total.as_secs_f64(),
            p50.as_secs_f64() / floor.0.as_secs_f64(),
            p99.as_secs_f64() / floor.1.as_secs_f64(),
        );
    }
}
