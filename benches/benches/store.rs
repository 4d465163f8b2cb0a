//! The durable [`Store`] on the real disk (a temp directory on the root file system):
//!
//! - `store_always/*`: `Store::put` with `FsyncPolicy::Always` and `WriteMode::WaitDurable`
//!   from 1 and 8 concurrent writer threads (each put waits for its fsync, so the 8-writer
//!   case measures group commit through the store's lock, codec and log);
//! - `store_queued/*`: `Store::put` with `EveryMillis(10)` and `WriteMode::Queued` from 1 and
//!   2 writer threads; each run ends with `wait_durable` of its last write, timed, so the
//!   number is sustained durable throughput;
//! - `store_snapshot/*`: an incremental snapshot of 1,000, 10,000 and 100,000 dirty sessions
//!   in a store of 1,000,000 (the dirtying puts are setup, not measured);
//! - `store_recovery/*`: `Store::open` of 1,000,000 sessions from a base snapshot (plus a
//!   one-session delta) and a WAL tail of 100,000 one-field puts;
//! - `store_verify/*`: `verify_dir` of that directory, as bytes of files read per second;
//! - `latency`: not criterion but a plain timing harness (criterion reports means, not tails):
//!   p50/p99 of `put` with `Always` from one writer, alone, while incremental snapshots of
//!   100,000 dirty sessions run, and while a compaction (a new base of every session) runs.
//!
//! Sessions have 8 fields of 64 incompressible bytes and 36-byte UUID-shaped ids; every
//! measured put overwrites one 64-byte field of an existing session.
//!
//! Run: `cargo bench -p session-ha-benches --bench store` (a few minutes; building the
//! 1,000,000-session store is setup and takes about half of it). `SESSION_HA_BENCH_SESSIONS`
//! sets the size of the big store; under `--test` (the smoke check) it is 10,000 and every
//! size shrinks with it.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput};
use session_ha::fs::OsFs;
use session_ha::store::{verify_dir, CompactionPolicy};
use session_ha::{FsyncPolicy, SessionId, Store, StoreConfig, WriteMode};
use session_ha_benches::replicas::{field_key, session_id, EAST};
use session_ha_benches::Rng;

/// Fields per session.
const FIELDS: usize = 8;
/// Bytes per field value.
const VALUE_LEN: usize = 64;
/// Sessions in the store of the throughput benches.
const HOT_SESSIONS: u64 = 10_000;
/// Sessions in the big store, unless `SESSION_HA_BENCH_SESSIONS` says otherwise.
const BIG_SESSIONS: u64 = 1_000_000;
/// Sessions in the big store under `--test`.
const TEST_SESSIONS: u64 = 10_000;

/// Whether criterion runs in `--test` mode (every bench once, as a smoke check).
fn test_mode() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// Sessions in the big store.
fn big_sessions() -> u64 {
    if let Some(n) = std::env::var("SESSION_HA_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    if test_mode() {
        TEST_SESSIONS
    } else {
        BIG_SESSIONS
    }
}

/// A compaction policy that never asks for a new base by itself: the benches decide.
fn never_compact() -> CompactionPolicy {
    CompactionPolicy {
        max_chain: usize::MAX,
        max_delta_percent: u64::MAX,
        max_base_age: Duration::from_secs(1 << 40),
    }
}

/// A store configuration with no background thread (snapshots only on request).
fn config(fsync: FsyncPolicy, write_mode: WriteMode) -> StoreConfig {
    StoreConfig {
        fsync,
        write_mode,
        snapshot_interval: None,
        tick_interval: None,
        compaction: never_compact(),
        ..StoreConfig::new(EAST)
    }
}

fn open(dir: &Path, fsync: FsyncPolicy, mode: WriteMode) -> Store {
    Store::open(dir, config(fsync, mode))
        .expect("the bench's temp directory opens")
        .0
}

/// Ids, keys and a pool of values made once, so the measured loops only clone `Bytes`.
struct Data {
    ids: Vec<SessionId>,
    keys: Vec<Bytes>,
    values: Vec<Bytes>,
}

impl Data {
    fn new(sessions: u64) -> Data {
        let mut rng = Rng::new(0x5707e);
        Data {
            ids: (0..sessions).map(session_id).collect(),
            keys: (0..FIELDS).map(field_key).collect(),
            values: (0..1024).map(|_| rng.bytes(VALUE_LEN)).collect(),
        }
    }

    /// Overwrites one field of session `n % sessions` (the field and value vary with `n`).
    fn put(&self, store: &Store, n: u64) -> u64 {
        let i = n as usize;
        store
            .put(
                self.ids[i % self.ids.len()].clone(),
                self.keys[(i / 7) % FIELDS].clone(),
                self.values[i % self.values.len()].clone(),
            )
            .expect("the store accepts the write")
    }
}

/// Writes every session of `data` with its 8 fields (queued, then waits for the last), then
/// compacts: the store holds a base snapshot of them all and an empty WAL tail.
fn fill(store: &Store, data: &Data) {
    let mut last = 0;
    for (n, id) in data.ids.iter().enumerate() {
        let fields = data
            .keys
            .iter()
            .enumerate()
            .map(|(j, k)| {
                (
                    k.clone(),
                    data.values[(n * FIELDS + j) % data.values.len()].clone(),
                )
            })
            .collect();
        last = store
            .put_fields(id.clone(), fields)
            .expect("the store accepts the write");
    }
    store
        .wait_durable(last)
        .expect("the log makes the writes durable");
    store.compact().expect("the store compacts");
}

/// A temp directory holding a store of `data`'s sessions, closed.
fn filled_dir(data: &Data) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("a temp directory");
    let store = open(tmp.path(), FsyncPolicy::EveryMillis(10), WriteMode::Queued);
    fill(&store, data);
    store.close().expect("the store closes");
    tmp
}

/// Drops the WAL segments the last snapshot made unnecessary, so long runs do not fill the
/// disk (not measured).
fn trim(store: &Store) {
    store.snapshot().expect("the store snapshots");
}

fn always(c: &mut Criterion) {
    let data = Data::new(HOT_SESSIONS);
    let tmp = filled_dir(&data);
    let store = open(tmp.path(), FsyncPolicy::Always, WriteMode::WaitDurable);
    let mut g = c.benchmark_group("store_always");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(8));
    let next = Mutex::new(0u64);

    g.throughput(Throughput::Elements(1));
    g.bench_function("1_writer_put", |b| {
        b.iter_custom(|iters| {
            let mut n = *next.lock().expect("not poisoned");
            let start = Instant::now();
            for _ in 0..iters {
                black_box(data.put(&store, n));
                n += 1;
            }
            let took = start.elapsed();
            *next.lock().expect("not poisoned") = n;
            trim(&store);
            took
        })
    });

    let writers = 8u64;
    g.throughput(Throughput::Elements(writers));
    g.bench_function("8_writers_put", |b| {
        b.iter_custom(|iters| {
            let base = *next.lock().expect("not poisoned");
            let barrier = Barrier::new(writers as usize + 1);
            let start = std::thread::scope(|s| {
                for w in 0..writers {
                    let (data, store, barrier) = (&data, &store, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        // Writer w writes sessions w, w + 8, w + 16, ...: never the same one.
                        for i in 0..iters {
                            black_box(data.put(store, base + (i * writers) + w));
                        }
                    });
                }
                barrier.wait();
                Instant::now()
            });
            let took = start.elapsed();
            *next.lock().expect("not poisoned") = base + iters * writers;
            trim(&store);
            took
        })
    });
    g.finish();
    store.close().expect("the store closes");
}

fn queued(c: &mut Criterion) {
    let data = Data::new(HOT_SESSIONS);
    let tmp = filled_dir(&data);
    let store = open(tmp.path(), FsyncPolicy::EveryMillis(10), WriteMode::Queued);
    let mut g = c.benchmark_group("store_queued");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(6));
    let next = Mutex::new(0u64);

    for writers in [1u64, 2] {
        g.throughput(Throughput::Elements(writers));
        g.bench_function(format!("{writers}_writer_put_every_10ms"), |b| {
            b.iter_custom(|iters| {
                let base = *next.lock().expect("not poisoned");
                let barrier = Barrier::new(writers as usize + 1);
                let (start, last) = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..writers)
                        .map(|w| {
                            let (data, store, barrier) = (&data, &store, &barrier);
                            s.spawn(move || {
                                barrier.wait();
                                let mut last = 0;
                                for i in 0..iters {
                                    last = data.put(store, base + (i * writers) + w);
                                }
                                last
                            })
                        })
                        .collect();
                    barrier.wait();
                    let start = Instant::now();
                    let last = handles
                        .into_iter()
                        .map(|h| h.join().expect("a writer does not panic"))
                        .max()
                        .unwrap_or(0);
                    (start, last)
                });
                store
                    .wait_durable(last)
                    .expect("the log makes the writes durable");
                let took = start.elapsed();
                *next.lock().expect("not poisoned") = base + iters * writers;
                trim(&store);
                took
            })
        });
    }
    g.finish();
    store.close().expect("the store closes");
}

/// The big store: `sessions` sessions in a base snapshot, built once, on first use.
struct Big {
    tmp: tempfile::TempDir,
    data: Data,
}

impl Big {
    fn build() -> Big {
        let sessions = big_sessions();
        let started = Instant::now();
        let data = Data::new(sessions);
        let tmp = filled_dir(&data);
        eprintln!(
            "setup: {sessions} sessions of {FIELDS} x {VALUE_LEN} B written and compacted in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Big { tmp, data }
    }

    fn dir(&self) -> PathBuf {
        self.tmp.path().to_path_buf()
    }

    fn sessions(&self) -> u64 {
        self.data.ids.len() as u64
    }
}

fn big(slot: &mut Option<Big>) -> &Big {
    slot.get_or_insert_with(Big::build)
}

/// Sizes of the dirty sets: 0.1 %, 1 % and 10 % of the store.
fn dirty_sizes(sessions: u64) -> [u64; 3] {
    [sessions / 1000, sessions / 100, sessions / 10]
}

fn snapshots(c: &mut Criterion, slot: &mut Option<Big>) {
    let sessions = big_sessions();
    let mut g = c.benchmark_group("store_snapshot");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    let mut store: Option<Store> = None;
    let mut offset = 0u64;
    for dirty in dirty_sizes(sessions) {
        g.throughput(Throughput::Elements(dirty));
        g.bench_function(format!("incremental_{dirty}_dirty_of_{sessions}"), |b| {
            let big = big(slot);
            let store = store.get_or_insert_with(|| {
                open(&big.dir(), FsyncPolicy::EveryMillis(10), WriteMode::Queued)
            });
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    // Dirty `dirty` distinct sessions spread over the whole store.
                    let stride = big.sessions() / dirty;
                    let mut last = 0;
                    for k in 0..dirty {
                        last = big.data.put(store, k * stride + offset % stride);
                    }
                    offset += 1;
                    store
                        .wait_durable(last)
                        .expect("the log makes the writes durable");
                    let start = Instant::now();
                    let report = store.snapshot().expect("the store snapshots");
                    took += start.elapsed();
                    assert!(!report.base, "an incremental snapshot, not a new base");
                    assert_eq!(report.sessions, dirty, "exactly the dirty sessions");
                }
                took
            })
        });
    }
    g.finish();
    if let Some(store) = store {
        store.close().expect("the store closes");
    }
}

/// Records in the WAL tail the recovery bench replays: 10 % of the sessions.
fn tail_records(sessions: u64) -> u64 {
    sessions / 10
}

/// Leaves the big store as recovery finds it after a crash between snapshots: a base
/// snapshot of every session, a one-session delta (so the previous manifest generation is
/// the bare base, as after any delta), and a WAL tail of one-field puts.
fn prepare_recovery(big: &Big) -> u64 {
    let store = open(&big.dir(), FsyncPolicy::EveryMillis(10), WriteMode::Queued);
    store.compact().expect("the store compacts");
    big.data.put(&store, 0);
    store.snapshot().expect("the store snapshots");
    let tail = tail_records(big.sessions());
    let mut last = 0;
    for n in 0..tail {
        last = big.data.put(&store, n * 7 + 1);
    }
    store
        .wait_durable(last)
        .expect("the log makes the writes durable");
    store.close().expect("the store closes");
    tail
}

fn recovery(c: &mut Criterion, slot: &mut Option<Big>, prepared: &mut bool) {
    let sessions = big_sessions();
    let tail = tail_records(sessions);
    let mut g = c.benchmark_group("store_recovery");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(sessions));
    g.bench_function(
        format!("open_{sessions}_sessions_base_and_{tail}_wal_records"),
        |b| {
            let big = big(slot);
            if !*prepared {
                prepare_recovery(big);
                *prepared = true;
            }
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    let (store, report) = Store::open(
                        big.dir(),
                        config(FsyncPolicy::Always, WriteMode::WaitDurable),
                    )
                    .expect("the store recovers");
                    took += start.elapsed();
                    assert_eq!(report.sessions as u64, big.sessions());
                    assert_eq!(report.wal.records_replayed, tail);
                    assert_eq!(report.snapshots.len(), 2, "the base and one delta");
                    // Closing and freeing the replica are not measured.
                    store.close().expect("the store closes");
                    drop(store);
                }
                took
            })
        },
    );
    g.finish();
}

/// Bytes of the files `verify_dir` read, from its report.
fn verified_bytes(dir: &Path) -> u64 {
    let report = verify_dir(&OsFs, dir).expect("the directory verifies");
    assert!(report.is_intact(), "{:?}", report.problems);
    report.manifests.iter().map(|f| f.bytes).sum::<u64>()
        + report.snapshots.iter().map(|f| f.bytes).sum::<u64>()
        + report.wal.segments.iter().map(|s| s.bytes).sum::<u64>()
}

fn verify(c: &mut Criterion, slot: &mut Option<Big>, prepared: &mut bool) {
    let sessions = big_sessions();
    let mut g = c.benchmark_group("store_verify");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    // The throughput must be set before the bench, so the directory is built here if a
    // filter selected this bench (criterion calls the routine only when it is selected).
    let selected = bench_selected(&format!("store_verify/verify_dir_{sessions}_sessions"));
    if selected {
        let big = big(slot);
        if !*prepared {
            prepare_recovery(big);
            *prepared = true;
        }
        let bytes = verified_bytes(&big.dir());
        eprintln!("setup: verify_dir reads {bytes} bytes");
        g.throughput(Throughput::Bytes(bytes));
    }
    g.bench_function(format!("verify_dir_{sessions}_sessions"), |b| {
        let dir = big(slot).dir();
        b.iter(|| {
            let report = verify_dir(&OsFs, &dir).expect("the directory verifies");
            assert!(report.is_intact());
            report
        })
    });
    g.finish();
}

/// The filters given on the command line (criterion's positional arguments).
fn filters() -> Vec<String> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a.starts_with("--") {
            // Options of criterion that take a value.
            if matches!(
                a.as_str(),
                "--save-baseline"
                    | "--baseline"
                    | "--load-baseline"
                    | "--profile-time"
                    | "--sample-size"
                    | "--warm-up-time"
                    | "--measurement-time"
                    | "--color"
                    | "--output-format"
                    | "--plotting-backend"
                    | "--noise-threshold"
                    | "--confidence-level"
                    | "--significance-level"
                    | "--nresamples"
                    | "--format"
                    | "--logfile"
            ) {
                args.next();
            }
        } else {
            out.push(a);
        }
    }
    out
}

/// Whether a bench of this id runs under the command line's filters (substring match, as
/// criterion does by default).
fn bench_selected(id: &str) -> bool {
    let f = filters();
    f.is_empty() || f.iter().any(|p| id.contains(p.as_str()))
}

// ----- latency under a snapshot and a compaction (plain harness) ----------------------------

/// Latencies, in nanoseconds, of puts made while `busy` was set (or all, if `busy` is none).
struct Latencies(Vec<u64>);

impl Latencies {
    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort_unstable();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
        Duration::from_nanos(v[i])
    }

    fn max(&self) -> Duration {
        Duration::from_nanos(self.0.iter().copied().max().unwrap_or(0))
    }
}

/// One writer putting until `stop`; keeps the latency of each put made while `busy` (all of
/// them when `busy` is none). Starts at put number `from`; returns the next number.
fn timed_writer(
    data: &Data,
    store: &Store,
    from: u64,
    stop: &AtomicBool,
    busy: Option<&AtomicBool>,
    out: &mut Vec<u64>,
) -> u64 {
    let mut n = from;
    while !stop.load(Ordering::Acquire) {
        let during = busy.is_none_or(|b| b.load(Ordering::Acquire));
        let start = Instant::now();
        data.put(store, n);
        let ns = start.elapsed().as_nanos() as u64;
        // Only puts that started and ended while the maintenance ran count.
        if during && busy.is_none_or(|b| b.load(Ordering::Acquire)) {
            out.push(ns);
        }
        n += 1;
    }
    n
}

/// Dirties `count` distinct sessions with 16 writer threads (setup for a heavy snapshot).
fn dirty_many(data: &Data, store: &Store, count: u64, round: u64) {
    let threads = 16u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut k = t;
                while k < count {
                    data.put(store, round * 7919 + k * (data.ids.len() as u64 / count));
                    k += threads;
                }
            });
        }
    });
}

/// Runs `work` on a thread while one writer puts; returns the latencies of the puts made
/// while `work` ran.
fn during(data: &Data, store: &Store, from: &mut u64, work: impl FnOnce()) -> (Vec<u64>, Duration) {
    let stop = AtomicBool::new(false);
    let busy = AtomicBool::new(false);
    let mut out = Vec::new();
    let mut took = Duration::ZERO;
    let start_at = *from;
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut v = Vec::new();
            let n = timed_writer(data, store, start_at, &stop, Some(&busy), &mut v);
            (n, v)
        });
        // Let the writer reach its steady state first.
        std::thread::sleep(Duration::from_millis(50));
        busy.store(true, Ordering::Release);
        let start = Instant::now();
        work();
        took = start.elapsed();
        busy.store(false, Ordering::Release);
        stop.store(true, Ordering::Release);
        let (n, v) = writer.join().expect("the writer does not panic");
        *from = n;
        out = v;
    });
    (out, took)
}

fn report_row(name: &str, l: &Latencies, base: &Latencies, note: &str) {
    let (p50, p99) = (l.quantile(0.50), l.quantile(0.99));
    println!(
        "| {name} | {} | {:.0} µs | {:.0} µs ({:.2}x) | {:.0} µs | {:.1} ms | {note} |",
        l.0.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        p99.as_secs_f64() / base.quantile(0.99).as_secs_f64().max(1e-9),
        l.quantile(0.999).as_secs_f64() * 1e6,
        l.max().as_secs_f64() * 1e3,
    );
}

fn latency(slot: &mut Option<Big>, prepared: &mut bool) {
    let quick = test_mode();
    let big = big(slot);
    if !*prepared {
        prepare_recovery(big);
        *prepared = true;
    }
    let store = open(&big.dir(), FsyncPolicy::Always, WriteMode::WaitDurable);
    let data = &big.data;
    let sessions = big.sessions();
    let snap_dirty = sessions / 10;
    let (base_secs, snap_rounds, compact_rounds) = if quick { (0.2, 1, 1) } else { (5.0, 5, 2) };
    let mut next = 0u64;

    println!("\nlatency of Store::put (FsyncPolicy::Always, WaitDurable), 1 writer, {sessions} sessions:\n");
    println!("| phase | puts | p50 | p99 (vs alone) | p99.9 | max | maintenance |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");

    // Alone.
    let stop = AtomicBool::new(false);
    let mut alone = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_secs_f64(base_secs));
            stop.store(true, Ordering::Release);
        });
        next = timed_writer(data, &store, next, &stop, None, &mut alone);
    });
    let alone = Latencies(alone);
    report_row("alone", &alone, &alone, &format!("none, {base_secs} s"));

    // While incremental snapshots of `snap_dirty` sessions run.
    let mut snap = Vec::new();
    let mut snap_times = Vec::new();
    for round in 0..snap_rounds {
        dirty_many(data, &store, snap_dirty, round + 1);
        let (v, took) = during(data, &store, &mut next, || {
            let r = store.snapshot().expect("the store snapshots");
            assert!(!r.base);
        });
        snap.extend(v);
        snap_times.push(took);
    }
    let snap = Latencies(snap);
    let snap_ms: Vec<String> = snap_times
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    report_row(
        "during an incremental snapshot",
        &snap,
        &alone,
        &format!(
            "{snap_rounds} snapshots of about {snap_dirty} dirty sessions, {} ms each",
            snap_ms.join(", ")
        ),
    );

    // While a compaction (a new base of every session) runs.
    let mut comp = Vec::new();
    let mut comp_times = Vec::new();
    for _ in 0..compact_rounds {
        let (v, took) = during(data, &store, &mut next, || {
            let r = store.compact().expect("the store compacts");
            assert!(r.base);
        });
        comp.extend(v);
        comp_times.push(took);
    }
    let comp = Latencies(comp);
    let comp_ms: Vec<String> = comp_times
        .iter()
        .map(|d| format!("{:.0}", d.as_secs_f64() * 1e3))
        .collect();
    report_row(
        "during a compaction",
        &comp,
        &alone,
        &format!(
            "{compact_rounds} compactions of {sessions} sessions, {} ms each",
            comp_ms.join(", ")
        ),
    );
    store.close().expect("the store closes");
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    always(&mut c);
    queued(&mut c);
    let mut slot = None;
    let mut prepared = false;
    snapshots(&mut c, &mut slot);
    recovery(&mut c, &mut slot, &mut prepared);
    verify(&mut c, &mut slot, &mut prepared);
    if bench_selected("latency") && !std::env::args().any(|a| a == "--list") {
        latency(&mut slot, &mut prepared);
    }
    c.final_summary();
}
