//! A failed fdatasync poisons the log: the batch's waiters and every later append, wait and
//! sync get `Error::Poisoned`, no fdatasync is ever issued again (not even by close), no
//! waiter hangs, and what was acknowledged before the failure survives a crash.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{body, open_collect, within};
use session_ha::fs::{Fault, FaultyFs, Op, Repeat};
use session_ha::wal::{FsyncPolicy, WalConfig};
use session_ha::Error;

const DIR: &str = "/wal";

#[test]
fn after_a_failed_fdatasync_everything_is_refused_and_nothing_is_synced_again() {
    let fs = FaultyFs::new();
    let config = WalConfig::with_fsync(FsyncPolicy::Always);
    let (wal, _, _) =
        open_collect(Arc::new(fs.clone()), Path::new(DIR), config.clone(), 0).unwrap();
    for i in 1..=3 {
        let seq = wal.append(&body(i)).unwrap();
        wal.wait_durable(seq).unwrap();
    }
    let syncs = fs.calls(Some(Op::SyncData));
    fs.fail(Some(Op::SyncData), syncs, Fault::Eio, Repeat::Once);
    let seq = wal.append(&body(4)).unwrap();
    let e = within(10, {
        let wal = Arc::new(wal);
        let w = Arc::clone(&wal);
        move || (w.wait_durable(seq), wal)
    });
    let (result, wal) = e;
    let Err(Error::Poisoned(why)) = result else {
        panic!("{result:?}")
    };
    assert!(why.contains("fdatasync"), "{why}");
    assert!(matches!(wal.append(&body(5)), Err(Error::Poisoned(_))));
    assert!(matches!(wal.wait_durable(seq), Err(Error::Poisoned(_))));
    assert!(matches!(wal.sync(), Err(Error::Poisoned(_))));
    wal.wait_durable(3).unwrap(); // acknowledged before the failure: still Ok
    assert_eq!(wal.durable_seq(), 3);
    assert!(matches!(wal.close(), Err(Error::Poisoned(_))));
    assert_eq!(
        fs.calls(Some(Op::SyncData)),
        syncs + 1,
        "the failed fdatasync was retried"
    );

    fs.crash();
    let (wal, _, got) = open_collect(Arc::new(fs), Path::new(DIR), config, 0).unwrap();
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    // Reopening clears the poison.
    let seq = wal.append(b"again").unwrap();
    wal.wait_durable(seq).unwrap();
}

#[test]
fn every_concurrent_waiter_returns_when_the_fsync_fails_and_acked_records_survive() {
    let fs = FaultyFs::new();
    let config = WalConfig::with_fsync(FsyncPolicy::Always);
    let (wal, _, _) =
        open_collect(Arc::new(fs.clone()), Path::new(DIR), config.clone(), 0).unwrap();
    let wal = Arc::new(wal);
    let syncs = fs.calls(Some(Op::SyncData));
    fs.fail(Some(Op::SyncData), syncs + 5, Fault::Eio, Repeat::Once);
    let results = within(20, {
        let wal = Arc::clone(&wal);
        move || {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let wal = Arc::clone(&wal);
                    std::thread::spawn(move || {
                        let mut acked = Vec::new();
                        for _ in 0..50 {
                            let Ok(seq) = wal.append(b"x") else { break };
                            match wal.wait_durable(seq) {
                                Ok(()) => acked.push(seq),
                                Err(e) => {
                                    assert!(matches!(e, Error::Poisoned(_)), "{e:?}");
                                    break;
                                }
                            }
                        }
                        acked
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect::<Vec<u64>>()
        }
    });
    assert!(!results.is_empty());
    let max_acked = results.iter().copied().max().unwrap();
    assert!(max_acked <= wal.durable_seq());
    drop(wal);
    fs.crash();
    let (_, _, got) = open_collect(Arc::new(fs), Path::new(DIR), config, 0).unwrap();
    assert!(got.len() as u64 >= max_acked);
}

#[test]
fn a_failed_sync_under_every_millis_fails_the_waiters_of_every_unsynced_batch() {
    let fs = FaultyFs::new();
    let config = WalConfig::with_fsync(FsyncPolicy::EveryMillis(30));
    let (wal, _, _) = open_collect(Arc::new(fs.clone()), Path::new(DIR), config, 0).unwrap();
    let syncs = fs.calls(Some(Op::SyncData));
    fs.fail(Some(Op::SyncData), syncs, Fault::Eio, Repeat::FromThenOn);
    let seqs: Vec<u64> = (1..=20).map(|i| wal.append(&body(i)).unwrap()).collect();
    let wal = Arc::new(wal);
    let results = within(10, {
        let wal = Arc::clone(&wal);
        move || {
            seqs.iter()
                .map(|s| wal.wait_durable(*s))
                .collect::<Vec<_>>()
        }
    });
    assert!(results.iter().all(|r| matches!(r, Err(Error::Poisoned(_)))));
    assert_eq!(wal.durable_seq(), 0);
}

#[test]
fn a_waiter_does_not_hang_when_the_disk_vanishes_under_a_running_writer() {
    let fs = FaultyFs::new();
    let config = WalConfig::with_fsync(FsyncPolicy::EveryMillis(20));
    let (wal, _, _) = open_collect(Arc::new(fs.clone()), Path::new(DIR), config, 0).unwrap();
    let seq = wal.append(b"in flight").unwrap();
    fs.crash(); // every handle the writer holds is now dead
    let r = within(10, move || wal.wait_durable(seq));
    assert!(matches!(r, Err(Error::Poisoned(_))) || r.is_ok(), "{r:?}");
}
