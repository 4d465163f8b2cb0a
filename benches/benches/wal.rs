//! WAL throughput on the real disk: records/s with 64-byte bodies under `Always` with 1, 8 and
//! 16 concurrent writers (each appends and waits for its record, so the many-writer cases
//! measure group commit), and under `EveryMillis(10)` with appends that do not wait (the final
//! `wait_durable` of each run is timed too, so the number is sustained durable throughput).
//!
//! Run: `cargo bench -p session-ha-benches --bench wal`
#![allow(clippy::unwrap_used)] // a benchmark that cannot set up should stop loudly

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use session_ha::fs::OsFs;
use session_ha::wal::{FsyncPolicy, Wal, WalConfig};

const BODY: [u8; 64] = [0x5a; 64];

fn open(policy: FsyncPolicy) -> (tempfile::TempDir, Wal) {
    // tempfile's default directory is on the root file system of the benchmark machine.
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(
        Arc::new(OsFs::new()),
        dir.path(),
        WalConfig::with_fsync(policy),
        0,
        |_, _| Ok(()),
    )
    .unwrap();
    (dir, wal)
}

/// Keeps the disk from filling up between runs: drops every segment but the active one.
fn trim(wal: &Wal) {
    wal.remove_segments_before(wal.durable_seq()).unwrap();
}

fn always(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_always");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));

    let (_dir, wal) = open(FsyncPolicy::Always);
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_writer_append_wait", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let seq = wal.append(&BODY).unwrap();
                wal.wait_durable(seq).unwrap();
            }
            let took = start.elapsed();
            trim(&wal);
            took
        })
    });

    for writers in [8u64, 16] {
        g.throughput(Throughput::Elements(writers));
        g.bench_function(format!("{writers}_writers_append_wait"), |b| {
            b.iter_custom(|iters| {
                let barrier = Barrier::new(writers as usize + 1);
                // The scope returns once every writer has finished; timing starts when they
                // start.
                let start = std::thread::scope(|s| {
                    for _ in 0..writers {
                        s.spawn(|| {
                            barrier.wait();
                            for _ in 0..iters {
                                let seq = wal.append(&BODY).unwrap();
                                wal.wait_durable(seq).unwrap();
                            }
                        });
                    }
                    barrier.wait();
                    Instant::now()
                });
                let took = start.elapsed();
                trim(&wal);
                took
            })
        });
    }
    g.finish();
    wal.close().unwrap();
}

fn every_millis(c: &mut Criterion) {
    let mut g = c.benchmark_group("wal_every_10ms");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let (_dir, wal) = open(FsyncPolicy::EveryMillis(10));
    g.throughput(Throughput::Elements(1));
    g.bench_function("1_writer_append_no_wait", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut last = 0;
            for _ in 0..iters {
                last = wal.append(&BODY).unwrap();
            }
            wal.wait_durable(last).unwrap();
            let took = start.elapsed();
            trim(&wal);
            took
        })
    });
    g.finish();
    wal.close().unwrap();
}

criterion_group!(benches, always, every_millis);
criterion_main!(benches);
