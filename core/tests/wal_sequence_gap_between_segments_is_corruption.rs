//! Missing records between segments (a segment file lost from the middle, or from the front
//! beyond what a snapshot covers) are corruption, not the end of the log.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{body, open_collect};
use session_ha::fs::OsFs;
use session_ha::wal::{verify, ProblemKind, WalConfig};
use session_ha::{DecodeError, Error};

fn log_of_segments(dir: &Path) -> Vec<(PathBuf, u64)> {
    let config = WalConfig {
        segment_size: 150,
        ..WalConfig::default()
    };
    let (wal, _, _) = open_collect(Arc::new(OsFs::new()), dir, config, 0).unwrap();
    for i in 1..=20 {
        wal.append(&body(i)).unwrap();
    }
    wal.close().unwrap();
    let segs: Vec<_> = wal
        .segments()
        .into_iter()
        .map(|s| (s.path, s.first_seq))
        .collect();
    assert!(segs.len() >= 4);
    segs
}

fn open(dir: &Path, replay_after: u64) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    open_collect(
        Arc::new(OsFs::new()),
        dir,
        WalConfig::default(),
        replay_after,
    )
    .map(|(_, _, got)| got)
}

#[test]
fn a_segment_missing_from_the_middle_is_a_gap_reported_at_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let segs = log_of_segments(dir.path());
    std::fs::remove_file(&segs[1].0).unwrap();
    match open(dir.path(), 0) {
        Err(Error::Corrupt {
            path,
            offset: 0,
            source: DecodeError::Malformed(why),
        }) => {
            assert_eq!(path, segs[2].0);
            let want = format!("records {}..={} are missing", segs[1].1, segs[2].1 - 1);
            assert!(why.contains(&want), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let v = verify(&OsFs::new(), dir.path(), 0).unwrap();
    assert_eq!(v.problems.len(), 1);
    assert_eq!(v.problems[0].file, segs[2].0);
    assert!(matches!(v.problems[0].what, ProblemKind::SequenceGap(_)));
}

#[test]
fn missing_first_segments_are_a_gap_unless_a_snapshot_covers_them() {
    let dir = tempfile::tempdir().unwrap();
    let segs = log_of_segments(dir.path());
    std::fs::remove_file(&segs[0].0).unwrap();
    std::fs::remove_file(&segs[1].0).unwrap();
    let covered = segs[2].1 - 1;
    assert!(matches!(
        open(dir.path(), covered - 1),
        Err(Error::Corrupt { offset: 0, .. })
    ));
    let got = open(dir.path(), covered).unwrap();
    let want: Vec<_> = (covered + 1..=20).map(|i| (i, body(i))).collect();
    assert_eq!(got, want);
    let v = verify(&OsFs::new(), dir.path(), covered).unwrap();
    assert!(v.is_clean(), "{:?}", v.problems);
    assert!(!verify(&OsFs::new(), dir.path(), 0).unwrap().is_clean());
}

#[test]
fn a_segment_overlapping_the_previous_one_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let segs = log_of_segments(dir.path());
    // A well-formed last segment (header checksum fixed up) that claims to start one seq
    // before the previous segment ends.
    let (last, first) = segs.last().unwrap().clone();
    let mut b = std::fs::read(&last).unwrap();
    b[12..20].copy_from_slice(&(first - 1).to_le_bytes());
    let crc = crc32fast::hash(&b[..20]);
    b[20..24].copy_from_slice(&crc.to_le_bytes());
    let wrong = last.with_file_name(format!("wal-{:020}.log", first - 1));
    std::fs::write(&wrong, &b).unwrap();
    std::fs::remove_file(&last).unwrap();
    match open(dir.path(), 0) {
        Err(Error::Corrupt {
            path,
            offset: 0,
            source: DecodeError::Malformed(why),
        }) => {
            assert_eq!(path, wrong);
            assert!(why.contains("records before it end at"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}
