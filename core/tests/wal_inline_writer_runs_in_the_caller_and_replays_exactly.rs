//! The inline writer ([`WriterMode::Inline`]) that the deterministic simulator runs on: no
//! thread; records reach the disk only when a caller waits, syncs or pumps; `kill` abandons
//! what is queued as a crash would; and a seeded file system makes two runs write the very
//! same bytes (salts included).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::open_collect;
use session_ha::fs::{FaultyFs, Op};
use session_ha::wal::{FsyncPolicy, Wal, WalConfig, WriterMode};

const DIR: &str = "/wal";

fn config(fsync: FsyncPolicy) -> WalConfig {
    WalConfig {
        writer: WriterMode::Inline,
        ..WalConfig::with_fsync(fsync)
    }
}

fn open(fs: &FaultyFs, fsync: FsyncPolicy) -> (Wal, Vec<u64>) {
    let (wal, _, got) =
        open_collect(Arc::new(fs.clone()), Path::new(DIR), config(fsync), 0).unwrap();
    (wal, got.into_iter().map(|(s, _)| s).collect())
}

#[test]
fn nothing_is_written_until_a_caller_waits_then_it_is_durable() {
    let fs = FaultyFs::with_seed(7);
    let (wal, _) = open(&fs, FsyncPolicy::EveryMillis(10));
    let appends_before = fs.calls(Some(Op::Append));
    let a = wal.append(b"one").unwrap();
    let b = wal.append(b"two").unwrap();
    assert_eq!(fs.calls(Some(Op::Append)), appends_before, "queued only");
    assert_eq!(wal.durable_seq(), 0);
    wal.wait_durable(b).unwrap();
    assert_eq!(fs.calls(Some(Op::Append)), appends_before + 1, "one batch");
    assert!(wal.durable_seq() >= a.max(b));
    wal.kill().unwrap();
    fs.crash();
    assert_eq!(open(&fs, FsyncPolicy::Always).1, vec![1, 2]);
}

#[test]
fn pump_without_sync_writes_but_a_crash_loses_it_under_every_millis() {
    let fs = FaultyFs::with_seed(7);
    let (wal, _) = open(&fs, FsyncPolicy::EveryMillis(10));
    wal.append(b"one").unwrap();
    wal.pump(false).unwrap();
    assert_eq!(wal.durable_seq(), 0, "written, not synced");
    wal.kill().unwrap();
    fs.crash();
    assert!(open(&fs, FsyncPolicy::Always).1.is_empty());
}

#[test]
fn kill_abandons_what_is_queued() {
    let fs = FaultyFs::with_seed(7);
    let (wal, _) = open(&fs, FsyncPolicy::Always);
    wal.append(b"one").unwrap();
    wal.kill().unwrap();
    assert!(wal.append(b"two").is_err(), "a killed log takes nothing");
    assert!(open(&fs, FsyncPolicy::Always).1.is_empty());
}

#[test]
fn a_seeded_file_system_gets_the_same_bytes_twice() {
    let run = || {
        let fs = FaultyFs::with_seed(42);
        let (wal, _) = open(&fs, FsyncPolicy::Always);
        for i in 0..5u8 {
            wal.append(&[i; 9]).unwrap();
        }
        wal.close().unwrap();
        fs.files()
            .into_iter()
            .map(|p| (p.clone(), fs.peek(&p)))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}
