//! Records come back in order, with contiguous sequence numbers, across segment roll-overs,
//! reopens, concurrent appenders and segment removal; the active segment is never removed.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{body, contents, open_collect};
use session_ha::fs::{OsFs, Vfs};
use session_ha::wal::{FsyncPolicy, Wal, WalConfig};
use session_ha::Error;

fn small_segments() -> WalConfig {
    WalConfig {
        segment_size: 200,
        ..WalConfig::default()
    }
}

#[test]
fn records_survive_a_reopen_in_order_across_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let (wal, report, got) = open_collect(fs.clone(), dir.path(), small_segments(), 0).unwrap();
    assert!(got.is_empty());
    assert_eq!(report.next_seq, 1);
    for i in 1..=50 {
        assert_eq!(wal.append(&body(i)).unwrap(), i);
    }
    wal.wait_durable(50).unwrap();
    let segs = wal.segments();
    assert!(segs.len() > 5, "only {} segments", segs.len());
    for pair in segs.windows(2) {
        assert!(pair[0].first_seq < pair[1].first_seq);
        assert!(pair[0].bytes <= 200, "a segment grew past its size");
    }
    wal.close().unwrap();

    let (wal, report, got) = open_collect(fs.clone(), dir.path(), small_segments(), 0).unwrap();
    let want: Vec<_> = (1..=50).map(|i| (i, body(i))).collect();
    assert_eq!(got, want);
    assert_eq!(report.segments_read, segs.len());
    assert_eq!((report.first_seq, report.last_seq), (Some(1), Some(50)));
    assert_eq!(report.bytes_truncated, 0);
    assert_eq!(wal.append(b"next").unwrap(), 51);
    wal.close().unwrap();
}

#[test]
fn one_large_record_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), small_segments(), 0).unwrap();
    wal.append(b"small").unwrap();
    let big = vec![7u8; 1000];
    wal.append(&big).unwrap();
    wal.append(b"after").unwrap();
    wal.close().unwrap();
    let got = contents(fs, dir.path());
    assert_eq!(got[1], (2, big));
    assert_eq!(got.len(), 3);
}

#[test]
fn concurrent_appenders_get_distinct_contiguous_seqs_and_all_records_persist() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let config = WalConfig {
        segment_size: 4096,
        ..WalConfig::with_fsync(FsyncPolicy::Always)
    };
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), config, 0).unwrap();
    let wal = Arc::new(wal);
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..40u8 {
                    let b = vec![t, i];
                    let seq = wal.append(&b).unwrap();
                    wal.wait_durable(seq).unwrap();
                    mine.push((seq, b));
                }
                mine
            })
        })
        .collect();
    let mut appended: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    appended.sort();
    wal.close().unwrap();
    let got = contents(fs, dir.path());
    assert_eq!(got, appended);
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=320).collect::<Vec<_>>());
}

#[test]
fn remove_segments_before_never_removes_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), small_segments(), 0).unwrap();
    for i in 1..=30 {
        wal.append(&body(i)).unwrap();
    }
    wal.sync().unwrap();
    let segs = wal.segments();
    let third = segs[2].first_seq;
    // Records below `third` live in the first two segments only.
    assert_eq!(wal.remove_segments_before(third).unwrap(), 2);
    assert_eq!(wal.segments()[0].first_seq, third);
    assert_eq!(wal.remove_segments_before(third).unwrap(), 0);

    let active = wal.segments().last().unwrap().clone();
    let n = wal.remove_segments_before(u64::MAX).unwrap();
    assert_eq!(n, segs.len() - 3);
    assert_eq!(wal.segments(), vec![active.clone()]);
    assert!(active.path.exists());
    let seq = wal.append(b"still appending").unwrap();
    wal.wait_durable(seq).unwrap();
    wal.close().unwrap();

    // Without a snapshot covering the removed records, their absence is a gap...
    let lost = Wal::open(fs.clone(), dir.path(), small_segments(), 0, |_, _| Ok(()));
    assert!(matches!(lost, Err(Error::Corrupt { offset: 0, .. })));
    // ...with one, it is not.
    let covered = active.first_seq - 1;
    let (wal, _, got) = open_collect(fs, dir.path(), small_segments(), covered).unwrap();
    assert_eq!(got.last().unwrap(), &(31, b"still appending".to_vec()));
    assert_eq!(got.first().unwrap().0, active.first_seq);
    wal.close().unwrap();
}

#[test]
fn numbering_continues_after_what_a_snapshot_covers_even_past_the_end_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 0).unwrap();
    for i in 1..=5 {
        wal.append(&body(i)).unwrap();
    }
    wal.close().unwrap();
    // A snapshot covers up to 9 (the log lost 6..=9, say under EveryMillis).
    let (wal, report, got) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 9).unwrap();
    assert!(got.is_empty());
    assert_eq!(report.next_seq, 10);
    assert_eq!(wal.append(b"ten").unwrap(), 10);
    wal.close().unwrap();
    let (wal, _, got) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 9).unwrap();
    assert_eq!(got, vec![(10, b"ten".to_vec())]);
    wal.close().unwrap();
    // Seen from before the snapshot, 6..=9 are a hole.
    let r = Wal::open(fs, dir.path(), WalConfig::default(), 5, |_, _| Ok(()));
    assert!(matches!(r, Err(Error::Corrupt { .. })));
}

#[test]
fn misuse_is_refused_rather_than_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let config = WalConfig {
        max_record_size: 10,
        ..WalConfig::default()
    };
    let (wal, _, _) = open_collect(fs.clone(), dir.path(), config, 0).unwrap();
    assert!(matches!(
        wal.append(&[0; 11]),
        Err(Error::ValueTooLarge { len: 11, max: 10 })
    ));
    assert!(matches!(
        wal.wait_durable(1),
        Err(Error::InvalidArgument(_))
    ));
    wal.wait_durable(0).unwrap();
    wal.close().unwrap();
    assert!(matches!(wal.append(b"x"), Err(Error::Closed)));
    assert!(matches!(wal.sync(), Err(Error::Closed)));
    let bad = WalConfig {
        segment_size: 10,
        ..WalConfig::default()
    };
    let r = Wal::open(fs, Path::new("/nonexistent/never"), bad, 0, |_, _| Ok(()));
    assert!(matches!(r, Err(Error::InvalidArgument(_))));
}
