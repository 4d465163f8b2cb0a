//! A `KeepPrefix` recovery that sets a segment aside and starts the log again at a seq whose
//! segment file already exists (empty, kept from before) must list that file once. Listed
//! twice, the older entry is "not the last segment", so the next snapshot's clean-up deletes
//! the file the writer is appending to: every record after it lives in an unlinked inode and
//! is gone at the next open, acknowledged or not. Found by the multi-region simulator (a
//! store that fell back past a damaged snapshot, then took a snapshot).
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::sync::Arc;

use common::open_collect;
use session_ha::fs::OsFs;
use session_ha::wal::{WalConfig, WalRecovery};

#[test]
fn the_active_segment_survives_removing_segments_before_any_seq() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(OsFs::new());
    // An empty first segment (wal-1), then records 5..=7 in wal-5: a snapshot covered 1..=4.
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 0).unwrap();
    wal.close().unwrap();
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 4).unwrap();
    for i in 5..=7u8 {
        wal.append(&[i; 8]).unwrap();
    }
    wal.close().unwrap();

    // That snapshot is lost: the log is read from the start, and wal-5 does not follow on.
    let keep = WalConfig {
        recovery: WalRecovery::KeepPrefix,
        ..WalConfig::default()
    };
    let (wal, report, replayed) = open_collect(fs.clone(), dir.path(), keep, 0).unwrap();
    assert!(replayed.is_empty(), "nothing continues from seq 1");
    assert!(report.damage_cut.is_some(), "wal-5 was set aside");
    let paths: Vec<_> = wal.segments().into_iter().map(|s| s.path).collect();
    let mut unique = paths.clone();
    unique.dedup();
    assert_eq!(paths, unique, "a segment is listed once");

    for i in 1..=3u8 {
        wal.append(&[i; 8]).unwrap();
    }
    wal.sync().unwrap();
    // A snapshot covering everything: only segments wholly before seq 4 may go.
    wal.remove_segments_before(4).unwrap();
    let active = wal.segments().last().map(|s| s.path.clone()).unwrap();
    assert!(active.exists(), "the active segment {active:?} was deleted");
    wal.append(&[4; 8]).unwrap();
    wal.close().unwrap();

    let (wal, _, replayed) = open_collect(fs, dir.path(), WalConfig::default(), 0).unwrap();
    let seqs: Vec<u64> = replayed.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4],
        "every record written after the recovery is read back"
    );
    wal.close().unwrap();
}
