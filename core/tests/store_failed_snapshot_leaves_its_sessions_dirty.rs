//! A snapshot that fails at any of its I/O calls (ENOSPC or EIO, once) reports the failure in
//! `status().snapshot.last_error` and leaves the sessions it took dirty, so the next snapshot
//! writes them: after that one, and one more that lets the WAL records of those sessions be
//! deleted, a crash and reopen still find every write.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::BTreeSet;

use common::store::{crash, dir, open_on, session_of, store_config, Writes};
use common::within;
use session_ha::fs::{Fault, FaultyFs, Repeat};
use session_ha::snapshot::{SnapEntry, SnapshotReader};
use session_ha::Store;

/// Session ids in the snapshot file `name`.
fn sessions_in(fs: &FaultyFs, name: &str) -> BTreeSet<String> {
    let mut r = SnapshotReader::open(fs, &dir().join("snap").join(name)).unwrap();
    let mut out = BTreeSet::new();
    while let Some(e) = r.next_entry().unwrap() {
        if let SnapEntry::Session(id, _) = e {
            out.insert(String::from_utf8(id.as_bytes().to_vec()).unwrap());
        }
    }
    out
}

/// A store with a base snapshot of every session, then writes to three of the five
/// sessions: those three are dirty.
fn prepare(fs: &FaultyFs) -> (Store, Writes, BTreeSet<String>) {
    let (store, _) = open_on(fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 10).unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 3).unwrap();
    let dirty = (w.attempted - 2..=w.attempted).map(session_of).collect();
    (store, w, dirty)
}

fn failed_then_retried(compact: bool, fault: Fault, at: u64, what: &str) {
    let fs = FaultyFs::new();
    let (store, mut w, dirty) = prepare(&fs);
    fs.fail(None, fs.calls(None) + at, fault, Repeat::Once);
    let failed = if compact {
        store.compact()
    } else {
        store.snapshot()
    };
    let e = failed.expect_err(what);
    let status = store.status();
    assert_eq!(status.snapshot.last_error, Some(e.to_string()), "{what}");
    assert!(
        status.wal.failure.is_none(),
        "{what}: a snapshot never poisons the log"
    );

    let retry = store.snapshot().unwrap();
    assert!(store.status().snapshot.last_error.is_none(), "{what}");
    let written = sessions_in(&fs, retry.file.as_deref().unwrap());
    assert!(
        written.is_superset(&dirty),
        "{what}: the retry wrote {written:?}, the failed snapshot had taken {dirty:?}"
    );

    // One more generation: the records of the dirty sessions are no longer needed by any
    // manifest, so their segments go, and only the snapshots hold them.
    w.write_many(&store, 12).unwrap();
    store.snapshot().unwrap();
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert!(
        report.fallbacks.is_empty(),
        "{what}: {:?}",
        report.fallbacks
    );
    w.check(&store, what);
}

fn sweep(compact: bool) {
    let calls = {
        let fs = FaultyFs::new();
        let (store, _, _) = prepare(&fs);
        let before = fs.calls(None);
        if compact {
            store.compact().unwrap();
        } else {
            store.snapshot().unwrap();
        }
        fs.calls(None) - before
    };
    assert!(calls >= 10, "the snapshot makes {calls} calls");
    for at in 0..calls {
        for fault in [Fault::NoSpace, Fault::Eio] {
            let what = format!("compact {compact}, {fault:?} at call {at} of the snapshot");
            within(10, move || failed_then_retried(compact, fault, at, &what));
        }
    }
}

#[test]
fn a_failed_delta_leaves_its_sessions_for_the_next_snapshot() {
    sweep(false);
}

#[test]
fn a_failed_compaction_leaves_its_sessions_for_the_next_snapshot() {
    sweep(true);
}
