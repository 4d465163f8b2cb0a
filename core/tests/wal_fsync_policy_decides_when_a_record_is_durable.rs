//! What `wait_durable` promises under each fsync policy, checked against a power cut:
//! `Always` and `EveryMillis` only return once an fdatasync covered the record (and group
//! many records into one sync; under `EveryMillis` a waiter starts that sync at once), `Never` returns once written to the OS (a crash may lose it
//! until `sync`), and `close` syncs whatever the policy.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use common::{body, open_collect, within};
use session_ha::fs::{FaultyFs, Op};
use session_ha::wal::{FsyncPolicy, Wal, WalConfig};

const DIR: &str = "/wal";

fn open(fs: &FaultyFs, policy: FsyncPolicy) -> Wal {
    let config = WalConfig::with_fsync(policy);
    open_collect(Arc::new(fs.clone()), Path::new(DIR), config, 0)
        .unwrap()
        .0
}

fn after_crash(fs: &FaultyFs) -> Vec<u64> {
    fs.crash();
    let (wal, _, got) = open_collect(
        Arc::new(fs.clone()),
        Path::new(DIR),
        WalConfig::default(),
        0,
    )
    .unwrap();
    wal.close().unwrap();
    got.into_iter().map(|(s, _)| s).collect()
}

#[test]
fn always_every_acknowledged_record_survives_a_crash() {
    let fs = FaultyFs::new();
    let wal = open(&fs, FsyncPolicy::Always);
    for i in 1..=20 {
        let seq = wal.append(&body(i)).unwrap();
        wal.wait_durable(seq).unwrap();
        assert_eq!(wal.durable_seq(), seq);
    }
    let seg = wal.segments()[0].path.clone();
    assert_eq!(fs.peek_durable(&seg), fs.peek(&seg));
    drop(wal);
    assert_eq!(after_crash(&fs), (1..=20).collect::<Vec<_>>());
}

#[test]
fn every_millis_groups_many_records_into_few_syncs_and_acks_only_after_one() {
    let fs = FaultyFs::new();
    let wal = open(&fs, FsyncPolicy::EveryMillis(50));
    let syncs_before = fs.calls(Some(Op::SyncData));
    let started = Instant::now();
    let mut last = 0;
    for i in 1..=3000 {
        last = wal.append(&body(i)).unwrap();
    }
    wal.wait_durable(last).unwrap();
    let seg = wal.segments()[0].path.clone();
    assert_eq!(
        fs.peek_durable(&seg),
        fs.peek(&seg),
        "acknowledged before it was synced"
    );
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let syncs = fs.calls(Some(Op::SyncData)) - syncs_before;
    assert!(
        syncs <= elapsed_ms / 50 + 2,
        "{syncs} syncs in {elapsed_ms} ms with a 50 ms period"
    );
    drop(wal);
    assert_eq!(after_crash(&fs).len(), 3000);
}

#[test]
fn never_acks_once_written_and_a_crash_loses_it_until_sync() {
    let fs = FaultyFs::new();
    let wal = open(&fs, FsyncPolicy::Never);
    let syncs_before = fs.calls(Some(Op::SyncData));
    let seq = wal.append(b"written, not synced").unwrap();
    wal.wait_durable(seq).unwrap();
    assert_eq!(fs.calls(Some(Op::SyncData)), syncs_before);
    let seg = wal.segments()[0].path.clone();
    assert_ne!(fs.peek(&seg), fs.peek_durable(&seg));
    let seq2 = wal.append(b"synced").unwrap();
    wal.sync().unwrap();
    assert_eq!(fs.peek(&seg), fs.peek_durable(&seg));
    let seq3 = wal.append(b"lost").unwrap();
    wal.wait_durable(seq3).unwrap();
    fs.crash();
    drop(wal);
    let (wal, _, got) = open_collect(
        Arc::new(fs.clone()),
        Path::new(DIR),
        WalConfig::default(),
        0,
    )
    .unwrap();
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![seq, seq2]
    );
    wal.close().unwrap();
}

#[test]
fn close_syncs_whatever_the_policy() {
    for policy in [FsyncPolicy::Never, FsyncPolicy::EveryMillis(3_600_000)] {
        let fs = FaultyFs::new();
        let wal = open(&fs, policy);
        for i in 1..=5 {
            wal.append(&body(i)).unwrap();
        }
        wal.close().unwrap();
        assert_eq!(after_crash(&fs), vec![1, 2, 3, 4, 5], "{policy:?}");
    }
}

/// Group commit: under `EveryMillis` a waiter does not wait for the period's end; its wait
/// starts a sync at once (here the period is an hour), and that sync covered the record.
#[test]
fn a_waiter_under_a_long_period_starts_a_sync_at_once() {
    let fs = FaultyFs::new();
    let wal = Arc::new(open(&fs, FsyncPolicy::EveryMillis(3_600_000)));
    let seq = wal.append(b"x").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let seg = wal.segments()[0].path.clone();
    assert_ne!(
        fs.peek_durable(&seg),
        fs.peek(&seg),
        "nobody waits yet: the record is written, not synced"
    );
    let syncs_before = fs.calls(Some(Op::SyncData));
    let waiting = Arc::clone(&wal);
    within(10, move || waiting.wait_durable(seq)).unwrap();
    assert_eq!(fs.calls(Some(Op::SyncData)) - syncs_before, 1);
    assert_eq!(
        fs.peek_durable(&seg),
        fs.peek(&seg),
        "acknowledged unsynced"
    );
    drop(wal);
    assert_eq!(after_crash(&fs), vec![seq]);
}

/// Records nobody waits for are still synced by the period alone.
#[test]
fn unwaited_records_are_synced_within_the_period() {
    let fs = FaultyFs::new();
    let wal = open(&fs, FsyncPolicy::EveryMillis(5));
    let seq = wal.append(b"x").unwrap();
    let started = Instant::now();
    while wal.durable_seq() < seq {
        assert!(
            started.elapsed().as_secs() < 10,
            "never synced without a waiter"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(wal);
    assert_eq!(after_crash(&fs), vec![seq]);
}
