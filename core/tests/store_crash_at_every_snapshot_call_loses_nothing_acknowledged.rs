//! A power cut right before any I/O call of a snapshot (the first base, a delta whose
//! cleanup deletes superseded files, a compaction into a new base) loses no acknowledged
//! write: after the crash the store reopens from one of its two manifest generations, holds
//! every write acknowledged before the snapshot started, verifies intact, and carries on. A
//! snapshot that returned Ok is never undone by the crash.
//!
//! Each sweep runs the workload once to count the snapshot's calls, then for every call index
//! `i` runs it again with every call from `i` on failing (the power is gone from there), cuts
//! the power, and reopens.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{crash, cut_power_at, dir, image, open_on, store_config, Writes};
use common::within;
use session_ha::fs::{FaultyFs, Op};
use session_ha::store::verify_dir;
use session_ha::Store;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Snapshot,
    Compact,
}

fn run(store: &Store, step: Step) -> session_ha::Result<session_ha::store::SnapshotReport> {
    match step {
        Step::Snapshot => store.snapshot(),
        Step::Compact => store.compact(),
    }
}

/// The store's history before the snapshot under test: `steps` in order, each after a few
/// writes, then a few more writes.
fn prepare(fs: &FaultyFs, steps: &[Step]) -> (Store, Writes) {
    let (store, _) = open_on(fs, store_config()).unwrap();
    let mut w = Writes::default();
    for &s in steps {
        w.write_many(&store, 9).unwrap();
        run(&store, s).unwrap();
    }
    w.write_many(&store, 9).unwrap();
    (store, w)
}

/// What the sweep learns from a fault-free run: where the snapshot's calls start and end,
/// and the generation it installs.
struct Plan {
    start: u64,
    end: u64,
    log: Vec<(Op, std::path::PathBuf)>,
    generation: u64,
}

fn plan(history: &[Step], step: Step) -> Plan {
    let fs = FaultyFs::new();
    let (store, _) = prepare(&fs, history);
    let start = fs.calls(None);
    let report = run(&store, step).unwrap();
    let end = fs.calls(None);
    Plan {
        start,
        end,
        log: fs.call_log(),
        generation: report.generation,
    }
}

/// Cuts the power right before call `at` (an absolute index) of a run of `history` then
/// `step`, reopens, and checks. Returns the reopened store's recovery report.
fn crash_at(
    history: &[Step],
    step: Step,
    at: u64,
    tear: Option<u64>,
    what: &str,
) -> (FaultyFs, session_ha::store::RecoveryReport) {
    let fs = FaultyFs::new();
    let (store, w) = prepare(&fs, history);
    let before = store.status().snapshot.generation;
    cut_power_at(&fs, at);
    let result = run(&store, step);
    let fired = fs.faults_fired() > 0;
    crash(&fs, Some(store), tear);
    let (store, report) =
        open_on(&fs, store_config()).unwrap_or_else(|e| panic!("{what}: reopen failed: {e}"));
    w.check(&store, what);
    common::store::assert_dots_known(&store, what);
    assert_eq!(
        fired,
        result.is_err(),
        "{what}: a snapshot hit by the power cut must fail, and only then ({result:?})"
    );
    let gen = report.manifest_generation;
    assert!(
        gen == before || gen == before + 1,
        "{what}: recovered generation {gen}, the snapshot went from {before}"
    );
    if result.is_ok() {
        assert_eq!(
            gen,
            before + 1,
            "{what}: the snapshot returned Ok but the crash undid it ({report:?})"
        );
    }
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{what}: {:?}", v.problems);
    // The store carries on: more writes and a snapshot, then a clean reopen holds all.
    let mut w = w;
    w.write_many(&store, 4).unwrap();
    store.snapshot().unwrap();
    store.close().unwrap();
    drop(store);
    let (store, again) = open_on(&fs, store_config()).unwrap();
    assert!(again.fallbacks.is_empty(), "{what}: {:?}", again.fallbacks);
    w.check(&store, &format!("{what}, after carrying on"));
    drop(store);
    (fs, report)
}

fn sweep(history: &[Step], step: Step) {
    let p = plan(history, step);
    assert!(
        p.end - p.start >= 8,
        "the snapshot makes {} calls",
        p.end - p.start
    );
    for at in p.start..=p.end {
        for tear in [None, Some(at)] {
            let site = p.log.get(at as usize);
            let what = format!(
                "{step:?} after {history:?}, power cut before call {at} {site:?}, tear {tear:?}"
            );
            let history = history.to_vec();
            within(20, move || crash_at(&history, step, at, tear, &what));
        }
    }
}

#[test]
fn the_first_base_snapshot() {
    sweep(&[], Step::Snapshot);
}

#[test]
fn a_delta_whose_cleanup_deletes_superseded_files_and_segments() {
    sweep(
        &[Step::Snapshot, Step::Snapshot, Step::Compact],
        Step::Snapshot,
    );
}

#[test]
fn a_compaction_into_a_new_base() {
    sweep(&[Step::Snapshot, Step::Snapshot], Step::Compact);
}

/// Index (absolute) of the first call of kind `op` at or after `from` whose path satisfies
/// `pick`.
fn find(p: &Plan, from: u64, op: Op, pick: impl Fn(&std::path::Path) -> bool) -> u64 {
    (from..p.end)
        .find(|&i| {
            let (o, path) = &p.log[i as usize];
            *o == op && pick(path)
        })
        .unwrap_or_else(|| panic!("no {op:?} in the snapshot's calls"))
}

#[test]
fn a_crash_between_the_snapshot_rename_and_the_directory_fsync_keeps_the_old_generation() {
    let history = [Step::Snapshot];
    let p = plan(&history, Step::Snapshot);
    let rename = find(&p, p.start, Op::Rename, |f| {
        f.starts_with(dir().join("snap"))
    });
    let sync = rename + 1;
    assert_eq!(p.log[sync as usize], (Op::SyncDir, dir().join("snap")));
    let (fs, report) = crash_at(&history, Step::Snapshot, sync, None, "rename, no fsync");
    assert_eq!(report.manifest_generation, p.generation - 1);
    // The carry-on snapshot of crash_at wrote its own file; the interrupted one left nothing.
    let tmp_left = image(&fs)
        .keys()
        .any(|f| f.to_string_lossy().ends_with(".tmp"));
    assert!(!tmp_left, "{:?}", image(&fs).keys().collect::<Vec<_>>());
}

#[test]
fn a_crash_between_the_manifest_install_and_the_cleanup_keeps_the_new_generation() {
    let history = [Step::Snapshot, Step::Snapshot, Step::Compact];
    let p = plan(&history, Step::Snapshot);
    let rename = find(&p, p.start, Op::Rename, |f| {
        f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("MANIFEST"))
    });
    assert_eq!(
        p.log[rename as usize + 1],
        (Op::SyncDir, dir().to_path_buf())
    );
    let cleanup = rename + 2;
    assert!(
        cleanup < p.end,
        "the snapshot deletes something after installing"
    );

    // Crash right after the install, before any deletion: the new generation is live and
    // what it superseded is still on disk, as orphans that verify reports but that are harmless.
    let fs = FaultyFs::new();
    let (store, w) = prepare(&fs, &history);
    cut_power_at(&fs, cleanup);
    assert!(store.snapshot().is_err());
    crash(&fs, Some(store), None);
    let v = verify_dir(&fs, dir()).unwrap();
    assert!(v.is_intact(), "{:?}", v.problems);
    assert!(!v.orphans.is_empty(), "superseded files are still there");
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(report.manifest_generation, p.generation);
    assert!(report.fallbacks.is_empty(), "{:?}", report.fallbacks);
    w.check(&store, "after the install, before the cleanup");
    // The next snapshot finishes the cleanup.
    store.snapshot().unwrap();
    let v = store.verify().unwrap();
    assert!(v.is_intact() && v.orphans.is_empty(), "{v:?}");
}
