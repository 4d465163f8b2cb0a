//! What encryption at rest costs, plain and encrypted side by side in one run, on the real
//! disk:
//!
//! - `encryption_wal/{plain,encrypted}_{64,1024}B_never`: WAL appends under
//!   `FsyncPolicy::Never` (no fsync: the CPU cost of framing, sealing and writing), each run
//!   ending with `wait_durable` of its last record, timed;
//! - `encryption_store/{plain,encrypted}_put_always`: `Store::put` of one 64-byte field,
//!   `Always`, `WaitDurable`, one thread (the fsync-bound path writes take by default);
//! - `encryption_store/{plain,encrypted}_put_queued`: the same with `EveryMillis(10)` and
//!   `Queued`, each run ending with `wait_durable` of its last put;
//! - `encryption_snapshot/{plain,encrypted}_base_20000`: `Store::compact` (a new base) of
//!   20,000 sessions of four 64-byte fields.
//!
//! Run: `cargo bench -p session-ha-benches --bench encryption` (about 2 minutes), and again
//! with `SESSION_HA_BENCH_ENCRYPTED_FIRST=1` for the other order.
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use session_ha::fs::OsFs;
use session_ha::wal::{FsyncPolicy, Wal, WalConfig};
use session_ha::{KeyRing, Store, StoreConfig, WriteMode};

/// The value every put writes.
const VALUE: &[u8] = &[0x61; 64];

fn keys() -> KeyRing {
    KeyRing::new([0x42; 32], []).unwrap()
}

/// Plain then encrypted; encrypted first when `SESSION_HA_BENCH_ENCRYPTED_FIRST` is set, so
/// that two runs in both orders show what running second (a warm page cache, a settled CPU
/// clock) is worth on a shared machine.
fn variants() -> [(&'static str, Option<KeyRing>); 2] {
    let plain = ("plain", None);
    let encrypted = ("encrypted", Some(keys()));
    if std::env::var_os("SESSION_HA_BENCH_ENCRYPTED_FIRST").is_some() {
        [encrypted, plain]
    } else {
        [plain, encrypted]
    }
}

fn open_wal(dir: &Path, encryption: Option<KeyRing>) -> Wal {
    let config = WalConfig {
        encryption,
        ..WalConfig::with_fsync(FsyncPolicy::Never)
    };
    Wal::open(Arc::new(OsFs::new()), dir, config, 0, |_, _| Ok(()))
        .unwrap()
        .0
}

fn wal(c: &mut Criterion) {
    let mut g = c.benchmark_group("encryption_wal");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for len in [64usize, 1024] {
        let body = vec![0x5a; len];
        for (name, encryption) in variants() {
            let dir = tempfile::tempdir().unwrap();
            let wal = open_wal(dir.path(), encryption);
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("{name}_{len}B_never"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    let mut last = 0;
                    for _ in 0..iters {
                        last = wal.append(&body).unwrap();
                    }
                    wal.wait_durable(last).unwrap();
                    let took = start.elapsed();
                    wal.remove_segments_before(wal.durable_seq()).unwrap();
                    took
                })
            });
            wal.close().unwrap();
        }
    }
    g.finish();
}

fn open_store(dir: &Path, fsync: FsyncPolicy, mode: WriteMode, keys: Option<KeyRing>) -> Store {
    let config = StoreConfig {
        fsync,
        write_mode: mode,
        snapshot_interval: None,
        tick_interval: None,
        encryption: keys,
        ..StoreConfig::new("bench-region")
    };
    Store::open(dir, config).unwrap().0
}

/// Keeps the log short between runs: a snapshot covers it, and covered segments go.
fn trim(store: &Store) {
    store.snapshot().unwrap();
}

fn store(c: &mut Criterion) {
    let mut g = c.benchmark_group("encryption_store");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (fsync, mode, label) in [
        (FsyncPolicy::Always, WriteMode::WaitDurable, "put_always"),
        (
            FsyncPolicy::EveryMillis(10),
            WriteMode::Queued,
            "put_queued",
        ),
    ] {
        for (name, keys) in variants() {
            let dir = tempfile::tempdir().unwrap();
            let store = open_store(dir.path(), fsync, mode, keys);
            let mut n = 0u64;
            g.throughput(Throughput::Elements(1));
            g.bench_function(format!("{name}_{label}"), |b| {
                b.iter_custom(|iters| {
                    let start = Instant::now();
                    let mut last = 0;
                    for _ in 0..iters {
                        n += 1;
                        let id = format!("session-{}", n % 1000);
                        last = store.put(id.as_str(), "field", VALUE).unwrap();
                    }
                    store.wait_durable(last).unwrap();
                    let took = start.elapsed();
                    trim(&store);
                    took
                })
            });
            store.close().unwrap();
        }
    }
    g.finish();
}

fn snapshot(c: &mut Criterion) {
    const SESSIONS: u64 = 20_000;
    let mut g = c.benchmark_group("encryption_snapshot");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for (name, keys) in variants() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(
            dir.path(),
            FsyncPolicy::EveryMillis(10),
            WriteMode::Queued,
            keys,
        );
        let mut last = 0;
        for i in 0..SESSIONS {
            let id = format!("session-{i}");
            for f in ["a", "b", "c", "d"] {
                last = store.put(id.as_str(), f, VALUE).unwrap();
            }
        }
        store.wait_durable(last).unwrap();
        g.throughput(Throughput::Elements(SESSIONS));
        g.bench_function(format!("{name}_base_{SESSIONS}"), |b| {
            b.iter(|| store.compact().unwrap())
        });
        store.close().unwrap();
    }
    g.finish();
}

criterion_group!(benches, wal, store, snapshot);
criterion_main!(benches);
