//! `verify_dir` (on a closed store), `Store::verify` (on an open one) and
//! `dry_run_recovery` only read: on the real disk every file keeps its bytes, and on
//! FaultyFs they make no call that could change anything. On an intact store verify finds
//! every file and no problem; on a store with a torn WAL tail, the dry run reports exactly
//! the bytes that opening then truncates.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::store::{dir, mutating, open_on, record_spans, segments, store_config, tree, Writes};
use session_ha::fs::{FaultyFs, OsFs};
use session_ha::store::{dry_run_recovery, verify_dir};
use session_ha::Store;

/// A base, a delta and a WAL tail.
fn history(store: &Store) -> Writes {
    let mut w = Writes::default();
    w.write_many(store, 10).unwrap();
    store.snapshot().unwrap();
    w.write_many(store, 10).unwrap();
    store.snapshot().unwrap();
    w.write_many(store, 5).unwrap();
    w
}

fn assert_intact_report(v: &session_ha::store::VerifyReport) {
    assert!(v.is_intact(), "{:?}", v.problems);
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
    assert!(v.generation.is_some());
    assert_eq!(v.manifests.len(), 2);
    assert_eq!(v.snapshots.len(), 2, "base and delta");
    assert!(v
        .snapshots
        .iter()
        .all(|c| c.error.is_none() && c.entries > 0));
    assert!(v.orphans.is_empty(), "{:?}", v.orphans);
    assert!(v.wal.records > 0 && v.wal.problems.is_empty());
}

#[test]
fn verify_on_the_real_disk_changes_no_byte() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let (store, _) = Store::open(&dir, store_config()).unwrap();
    history(&store);
    let before = tree(&dir);
    assert_intact_report(&store.verify().unwrap());
    assert_eq!(tree(&dir), before, "Store::verify changed files");
    store.close().unwrap();
    drop(store);

    let before = tree(&dir);
    let v = verify_dir(&OsFs, &dir).unwrap();
    assert_intact_report(&v);
    let plan = dry_run_recovery(&OsFs, &dir).unwrap();
    assert_eq!((plan.generation, plan.failure), (v.generation, None));
    assert_eq!(plan.bytes_to_truncate, 0);
    assert_eq!(
        tree(&dir),
        before,
        "verify_dir or the dry run changed files"
    );
}

#[test]
fn verify_and_the_dry_run_make_no_call_that_changes_anything() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    history(&store);
    let from = fs.calls(None) as usize;
    assert_intact_report(&store.verify().unwrap());
    let to = fs.calls(None) as usize;
    let log = fs.call_log();
    assert!(to > from, "verify read nothing");
    assert!(
        mutating(&log[from..to]).is_empty(),
        "{:?}",
        mutating(&log[from..to])
    );
    store.close().unwrap();
    drop(store);

    let from = fs.calls(None) as usize;
    assert_intact_report(&verify_dir(&fs, dir()).unwrap());
    dry_run_recovery(&fs, dir()).unwrap();
    let log = fs.call_log();
    assert!(
        mutating(&log[from..]).is_empty(),
        "{:?}",
        mutating(&log[from..])
    );
}

/// Appends the first `n` bytes of a copy of the last record to the last segment: what a
/// write cut by a crash leaves. Returns the segment.
fn tear_tail(dir: &Path, n: usize) -> PathBuf {
    let (_, seg) = segments(&OsFs, dir).pop().unwrap();
    let bytes = std::fs::read(&seg).unwrap();
    let (at, len) = *record_spans(&bytes).last().unwrap();
    assert!(n < len);
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(&bytes[at..at + n]).unwrap();
    seg
}

#[test]
fn the_dry_run_of_a_torn_tail_reports_what_opening_truncates_and_changes_nothing() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let (store, _) = Store::open(&dir, store_config()).unwrap();
    let w = history(&store);
    let last = store.durable_lsn();
    let covers = store.status().snapshot.covers_seq;
    store.close().unwrap();
    drop(store);
    let seg = tear_tail(&dir, 13);

    let before = tree(&dir);
    let plan = dry_run_recovery(&OsFs, &dir).unwrap();
    assert_eq!(plan.failure, None);
    assert!(plan.generation.is_some());
    assert_eq!(plan.bytes_to_truncate, 13);
    assert_eq!(plan.records_to_replay, last - covers);
    let v = verify_dir(&OsFs, &dir).unwrap();
    assert!(v.is_intact(), "a torn tail is no damage: {:?}", v.problems);
    assert!(
        v.warnings.iter().any(|w| w.contains("torn tail")),
        "{:?}",
        v.warnings
    );
    assert_eq!(tree(&dir), before, "the dry run or verify changed files");

    let (store, report) = Store::open(&dir, store_config()).unwrap();
    assert_eq!(report.wal.bytes_truncated, plan.bytes_to_truncate);
    assert_eq!(report.wal.records_replayed, plan.records_to_replay);
    assert_eq!(Some(report.manifest_generation), plan.generation);
    assert_eq!(report.wal.broken_files.len(), 1);
    assert!(report.wal.broken_files[0].starts_with(seg.parent().unwrap()));
    w.check(&store, "after the torn tail was cut");
}
