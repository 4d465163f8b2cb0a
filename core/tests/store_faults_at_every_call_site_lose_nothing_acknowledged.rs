//! ENOSPC, EIO and torn writes injected at every I/O call site of a store workload (open,
//! writes, a snapshot, close, reopen with recovery, a compaction, more writes): no call
//! hangs; a failed write poisons the log, so every later write is refused with the same typed
//! error (`Poisoned` / `NoSpace`) and `status().wal.failure` says why; a failed snapshot is
//! reported in `status().snapshot.last_error` and the writes carry on; and after a crash every
//! acknowledged write is there and the store verifies intact.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{crash, dir, open_on, store_config, Writes};
use common::within;
use session_ha::fs::{Fault, FaultyFs, Repeat};
use session_ha::store::verify_dir;
use session_ha::{Error, Store};

const WRITES: u64 = 4;

#[derive(Debug, Default)]
struct Outcome {
    writes: Writes,
    /// Errors other than the writes': (where, error).
    failures: Vec<(&'static str, String)>,
}

/// After a write failed with `e`: the log is poisoned, says so, and refuses the next write
/// with the same kind of error.
fn check_poisoned(store: &Store, e: &Error, out: &mut Outcome) {
    assert!(
        matches!(e, Error::Poisoned(_) | Error::NoSpace { .. }),
        "a failed write must poison the log, got {e:?}"
    );
    let status = store.status();
    assert!(
        status.wal.failure.is_some(),
        "status hides the failure {e}: {status:?}"
    );
    let later = out.writes.write(store);
    assert_eq!(
        later.as_ref().map_err(Error::kind).err(),
        Some(e.kind()),
        "a write after {e:?} gave {later:?}"
    );
}

/// Writes `WRITES` times; false (after checking the poison) when one failed.
fn writes(store: &Store, out: &mut Outcome) -> bool {
    for _ in 0..WRITES {
        if let Err(e) = out.writes.write(store) {
            check_poisoned(store, &e, out);
            return false;
        }
    }
    true
}

/// A snapshot or compaction; a failure must be reported by `status()`.
fn snapshot(store: &Store, compact: bool, out: &mut Outcome) {
    let (what, r) = if compact {
        ("compact", store.compact())
    } else {
        ("snapshot", store.snapshot())
    };
    if let Err(e) = r {
        let last = store.status().snapshot.last_error;
        assert_eq!(last, Some(e.to_string()), "status after a failed {what}");
        out.failures.push((what, e.to_string()));
    }
}

/// Two lives of a store: open, writes, snapshot, writes, close; reopen (recovery), writes,
/// compaction, writes, close. Stops at the first write that fails.
fn workload(fs: &FaultyFs) -> Outcome {
    let mut out = Outcome::default();
    for life in 0..2 {
        let store = match open_on(fs, store_config()) {
            Ok((store, _)) => store,
            Err(e) => {
                out.failures.push(("open", e.to_string()));
                return out;
            }
        };
        if life == 1 {
            out.writes.check(&store, "the second open");
        }
        if !writes(&store, &mut out) {
            return out;
        }
        snapshot(&store, life == 1, &mut out);
        if !writes(&store, &mut out) {
            return out;
        }
        if let Err(e) = store.close() {
            out.failures.push(("close", e.to_string()));
            return out;
        }
    }
    out
}

/// Reopens on a disk without faults: every acknowledged write is there, nothing is damaged.
fn check_recovery(fs: &FaultyFs, out: &Outcome, what: &str) {
    let (store, report) = open_on(fs, store_config())
        .unwrap_or_else(|e| panic!("{what}: reopen after the crash failed: {e}; {out:?}"));
    out.writes.check(&store, what);
    common::store::assert_dots_known(&store, what);
    drop(store);
    let v = verify_dir(fs, dir()).unwrap();
    assert!(
        v.is_intact(),
        "{what}: {:?} (recovered {report:?})",
        v.problems
    );
}

fn sweep(fault: Fault, repeat: Repeat) {
    let calls = {
        let fs = FaultyFs::new();
        let out = workload(&fs);
        assert!(
            out.failures.is_empty() && out.writes.errors.is_empty(),
            "{out:?}"
        );
        fs.calls(None)
    };
    assert!(calls > 100, "the workload makes only {calls} calls");
    for i in 0..calls {
        for tear in [None, Some(i)] {
            let fs = FaultyFs::new();
            fs.fail(None, i, fault, repeat);
            let out = within(10, {
                let fs = fs.clone();
                move || workload(&fs)
            });
            assert!(fs.faults_fired() > 0, "call {i} was not reached");
            let site = fs.call_log().get(i as usize).cloned();
            let what = format!("{fault:?} {repeat:?} at call {i} {site:?}, tear {tear:?}");
            assert!(
                !out.failures.is_empty() || !out.writes.errors.is_empty(),
                "{what}: the fault went unnoticed: {out:?}"
            );
            crash(&fs, None, tear);
            check_recovery(&fs, &out, &what);
        }
    }
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
fn a_torn_write_then_eio_at_every_call_site() {
    sweep(Fault::TornThenEio, Repeat::Once);
}

#[test]
fn a_disk_that_stays_full_from_every_call_site_on() {
    sweep(Fault::TornThenNoSpace, Repeat::FromThenOn);
}
