//! The WAL sequence number a snapshot covers is an exact boundary: the record at
//! `covers_seq` comes from the snapshot and is not replayed, the one at `covers_seq + 1` is;
//! a crash right after the manifest naming `covers_seq` is installed replays nothing and
//! numbering continues after it; a log that ends before `covers_seq` is not a gap; a snapshot with nothing dirty writes nothing, and one whose only news
//! is a logged non-session change still moves the boundary.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{
    crash, cut_power_at, dir, image, mutating, open_on, record_spans, segments, store_config,
    Writes,
};
use session_ha::fs::{FaultyFs, Op, Vfs};
use session_ha::ReplicaId;

#[test]
fn the_record_at_covers_seq_comes_from_the_snapshot_and_the_next_one_from_the_log() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 7).unwrap();
    let covers = store.durable_lsn();
    let report = store.snapshot().unwrap();
    assert_eq!(report.covers_seq, covers);
    assert_eq!(store.status().snapshot.covers_seq, covers);

    // Nothing after the cut: everything comes from the snapshot.
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(report.covers_seq, covers);
    assert_eq!(report.wal.records_replayed, 0, "{report:?}");
    assert_eq!(report.wal.last_seq, Some(covers));
    w.check(&store, "nothing after covers_seq");

    // One record after the cut: exactly that one is replayed.
    assert_eq!(w.write(&store).unwrap(), covers + 1);
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(report.covers_seq, covers);
    assert_eq!(report.wal.records_replayed, 1, "{report:?}");
    assert_eq!(report.wal.last_seq, Some(covers + 1));
    w.check(&store, "one record after covers_seq");
}

#[test]
fn a_crash_right_after_the_manifest_install_replays_nothing_and_numbering_goes_on() {
    let history = |fs: &FaultyFs| {
        let (store, _) = open_on(fs, store_config()).unwrap();
        let mut w = Writes::default();
        w.write_many(&store, 6).unwrap();
        store.snapshot().unwrap();
        w.write_many(&store, 6).unwrap();
        (store, w)
    };
    // Where the next snapshot installs its manifest (rename, then the directory fsync).
    let (plan_fs, start) = {
        let fs = FaultyFs::new();
        let (store, _) = history(&fs);
        let start = fs.calls(None);
        store.snapshot().unwrap();
        (fs, start)
    };
    let log = plan_fs.call_log();
    let rename = (start as usize..log.len())
        .find(|&i| {
            let name = log[i].1.file_name().unwrap().to_string_lossy().into_owned();
            log[i].0 == Op::Rename && name.starts_with("MANIFEST")
        })
        .unwrap();
    assert_eq!(log[rename + 1], (Op::SyncDir, dir().to_path_buf()));
    let installed = rename as u64 + 2;

    let fs = FaultyFs::new();
    let (store, mut w) = history(&fs);
    let covers = store.durable_lsn();
    cut_power_at(&fs, installed);
    assert!(
        store.snapshot().is_err(),
        "the cleanup after the install fails"
    );
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(report.covers_seq, covers);
    assert_eq!(report.wal.records_replayed, 0, "{report:?}");
    w.check(&store, "crash right after the install");
    assert_eq!(w.write(&store).unwrap(), covers + 1, "numbering continues");
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(report.wal.records_replayed, 1);
    w.check(&store, "after one more write");
}

#[test]
fn a_log_that_ends_before_covers_seq_is_not_a_gap_and_numbering_starts_after_it() {
    let mut config = store_config();
    config.segment_size = 64 << 10;
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, config.clone()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 8).unwrap();
    let covers = store.snapshot().unwrap().covers_seq;
    assert_eq!(covers, 8);
    store.close().unwrap();
    drop(store);
    // The log loses records 6..=8, which the snapshot holds (a log from before snapshots
    // synced it, or one cut short by hand): cut the only segment after record 5.
    let (_, seg) = segments(&fs, dir()).pop().unwrap();
    let (at, _) = record_spans(&fs.peek(&seg).unwrap())[5];
    let mut f = fs.open_append(&seg).unwrap();
    f.set_len(at as u64).unwrap();
    f.sync_data().unwrap();
    drop(f);

    let (store, report) = open_on(&fs, config.clone()).unwrap();
    assert_eq!(report.wal.last_seq, Some(5), "{report:?}");
    assert_eq!(report.wal.next_seq, covers + 1);
    w.check(&store, "log shorter than the snapshot");
    assert_eq!(w.write(&store).unwrap(), covers + 1);
    store.close().unwrap();
    drop(store);
    // Nothing is lost now, but the chain kept to fall back on can no longer serve: verify
    // reports it as damage.
    let v = session_ha::store::verify_dir(&fs, dir()).unwrap();
    assert!(
        v.problems
            .iter()
            .any(|w| w.starts_with("the chain of manifest generation ")
                && w.contains("from WAL record 1 cannot serve as a fallback")),
        "{:?}",
        v.problems
    );
    let (store, report) = open_on(&fs, config).unwrap();
    assert!(report.fallbacks.is_empty(), "{:?}", report.fallbacks);
    assert_eq!(report.wal.records_replayed, 1);
    w.check(&store, "after the hole below covers_seq");
}

#[test]
fn a_snapshot_with_nothing_dirty_writes_nothing() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 5).unwrap();
    let first = store.snapshot().unwrap();
    let before = image(&fs);
    let calls = fs.calls(None);
    let again = store.snapshot().unwrap();
    assert_eq!(again.generation, first.generation);
    assert_eq!(again.covers_seq, first.covers_seq);
    assert_eq!(again.file, None);
    assert_eq!(image(&fs), before);
    let log = fs.call_log();
    assert!(mutating(&log[calls as usize..]).is_empty());

    // A compaction with nothing dirty still writes a whole new base.
    let base = store.compact().unwrap();
    assert!(base.base && base.file.is_some());
    assert_eq!(base.sessions, 5);
    assert_eq!(base.covers_seq, first.covers_seq);
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(report.manifest_generation, base.generation);
    w.check(&store, "after the compaction of a clean store");
}

#[test]
fn a_logged_change_to_no_session_still_moves_the_boundary() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 4).unwrap();
    store.snapshot().unwrap();
    let gone = ReplicaId::from_region("eu-west-1", 3);
    store.remove_member(gone).unwrap();
    let lsn = store.durable_lsn();
    let delta = store.snapshot().unwrap();
    assert_eq!((delta.sessions, delta.gone), (0, 0));
    assert_eq!(delta.covers_seq, lsn);
    assert!(delta.file.is_some());
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(report.covers_seq, lsn);
    assert_eq!(report.wal.records_replayed, 0);
    assert!(store.read(|r| r.removed_members()).contains(&gone));
    w.check(&store, "after an empty delta");
}
