//! A segment whose creation was interrupted (`wal-<seq>.log.tmp`) and a half-written
//! `.broken.tmp` are removed on open and reported; files the WAL does not own are left alone.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::sync::Arc;

use common::{body, open_collect};
use session_ha::fs::OsFs;
use session_ha::wal::WalConfig;

#[test]
fn leftover_temp_files_are_removed_and_strangers_kept() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Arc::new(OsFs::new());
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 0).unwrap();
    wal.append(&body(1)).unwrap();
    wal.close().unwrap();
    let tmp = dir.path().join("wal-00000000000000000002.log.tmp");
    let broken_tmp = dir
        .path()
        .join("wal-00000000000000000001.log.30.broken.tmp");
    let stranger = dir.path().join("notes.txt");
    for p in [&tmp, &broken_tmp, &stranger] {
        std::fs::write(p, b"junk").unwrap();
    }
    let (wal, report, got) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 0).unwrap();
    assert_eq!(got, vec![(1, body(1))]);
    let mut removed = report.temp_files_removed.clone();
    removed.sort();
    let mut want = vec![tmp.clone(), broken_tmp.clone()];
    want.sort();
    assert_eq!(removed, want);
    assert!(!tmp.exists() && !broken_tmp.exists());
    assert!(stranger.exists());
    assert_eq!(wal.append(&body(2)).unwrap(), 2);
}
