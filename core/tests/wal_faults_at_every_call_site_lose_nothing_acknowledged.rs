//! ENOSPC, EIO and torn writes injected at every I/O call site of a workload (open, append,
//! fdatasync, segment roll, reopen with recovery): every record whose `wait_durable` returned
//! Ok is there after a crash and reopen, what comes back is exactly a prefix of what was
//! appended (never corruption), no call hangs, and once a write or sync failed every later
//! append is refused with the same error.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{body, open_collect, within};
use session_ha::fs::{Fault, FaultyFs, Repeat, Vfs};
use session_ha::wal::{FsyncPolicy, WalConfig};
use session_ha::Error;

const DIR: &str = "/db/wal";
const PER_PHASE: u64 = 5;

fn config() -> WalConfig {
    WalConfig {
        // Three records of body(i) per segment at most: the workload rolls a few times.
        segment_size: 24 + 3 * 40,
        ..WalConfig::with_fsync(FsyncPolicy::Always)
    }
}

#[derive(Debug, Default)]
struct Outcome {
    appended: Vec<u64>,
    acked: Vec<u64>,
    errors: Vec<String>,
}

/// Two phases (open, append and wait one by one, close), so that the second open's recovery
/// is part of the swept call sites. Stops at the first error, after checking that the log
/// refuses further appends with it.
fn workload(fs: FaultyFs) -> Outcome {
    let mut out = Outcome::default();
    let fs: Arc<dyn Vfs> = Arc::new(fs);
    for phase in 0..2 {
        let wal = match open_collect(fs.clone(), Path::new(DIR), config(), 0) {
            Ok((wal, _, got)) => {
                let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
                assert_eq!(seqs, out.appended, "phase {phase} recovered something else");
                wal
            }
            Err(e) => {
                out.errors.push(format!("open: {e}"));
                return out;
            }
        };
        for _ in 0..PER_PHASE {
            let i = out.appended.len() as u64 + 1;
            let failed = match wal.append(&body(i)) {
                Ok(seq) => {
                    assert_eq!(seq, i);
                    out.appended.push(seq);
                    wal.wait_durable(seq).map(|()| out.acked.push(seq)).err()
                }
                Err(e) => Some(e),
            };
            if let Some(e) = failed {
                assert!(
                    matches!(e, Error::Poisoned(_) | Error::NoSpace { .. }),
                    "a failed write must poison the log, got {e:?}"
                );
                let later = wal.append(b"later");
                assert_eq!(
                    later.as_ref().map_err(Error::kind).err(),
                    Some(e.kind()),
                    "an append after {e:?} gave {later:?}"
                );
                assert!(wal.sync().is_err());
                out.errors.push(format!("append {i}: {e}"));
                return out;
            }
        }
        if let Err(e) = wal.close() {
            out.errors.push(format!("close: {e}"));
            return out;
        }
    }
    out
}

/// What survives a crash: opened on a fault-free disk, it must be the acknowledged records
/// and possibly some more of what was appended, in order, and nothing else.
fn check_recovery(fs: &FaultyFs, out: &Outcome, what: &str) {
    let (wal, _, got) = open_collect(Arc::new(fs.clone()), Path::new(DIR), config(), 0)
        .unwrap_or_else(|e| panic!("{what}: reopen after the crash failed: {e}; {out:?}"));
    wal.close().unwrap();
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        out.appended[..seqs.len()],
        "{what}: not a prefix of the appends; {out:?}"
    );
    for (seq, b) in &got {
        assert_eq!(b, &body(*seq), "{what}: record {seq} changed");
    }
    let acked = out.acked.last().copied().unwrap_or(0);
    assert!(
        seqs.len() as u64 >= acked,
        "{what}: acknowledged record {acked} lost, recovered {seqs:?}; {out:?}"
    );
}

fn sweep(fault: Fault, repeat: Repeat) {
    let calls = {
        let fs = FaultyFs::new();
        let out = workload(fs.clone());
        assert!(out.errors.is_empty(), "{out:?}");
        assert_eq!(out.acked.len() as u64, 2 * PER_PHASE);
        fs.calls(None)
    };
    assert!(calls > 40, "the workload makes only {calls} calls");
    let mut fired = 0;
    for i in 0..calls {
        for tear in [None, Some(i)] {
            let fs = FaultyFs::new();
            fs.fail(None, i, fault, repeat);
            let out = within(10, {
                let fs = fs.clone();
                move || workload(fs)
            });
            if fs.faults_fired() > 0 {
                fired += 1;
            }
            let site = fs.call_log().get(i as usize).cloned();
            fs.clear_faults();
            match tear {
                None => fs.crash(),
                Some(seed) => fs.crash_tearing(seed),
            }
            let what = format!("{fault:?} {repeat:?} at call {i} {site:?}, tear {tear:?}");
            check_recovery(&fs, &out, &what);
        }
    }
    assert_eq!(fired, 2 * calls, "every call site was hit");
}

#[test]
fn no_space_once_at_every_call_site() {
    sweep(Fault::NoSpace, Repeat::Once);
}

#[test]
fn eio_once_at_every_call_site() {
    sweep(Fault::Eio, Repeat::Once);
}

#[test]
fn torn_write_then_eio_at_every_call_site() {
    sweep(Fault::TornThenEio, Repeat::Once);
}

#[test]
fn a_disk_that_stays_full_from_every_call_site_on() {
    sweep(Fault::TornThenNoSpace, Repeat::FromThenOn);
}

#[test]
fn the_workload_makes_the_same_calls_every_time() {
    let a = FaultyFs::new();
    workload(a.clone());
    let b = FaultyFs::new();
    workload(b.clone());
    assert_eq!(a.call_log(), b.call_log());
}
