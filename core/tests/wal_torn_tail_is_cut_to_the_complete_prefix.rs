//! A torn tail of the last segment (a write cut at any byte, zero fill, garbage) is cut back to
//! the last complete record on open; the cut bytes are kept in a `.broken` file beside it, and
//! the log carries on from there.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::{body, open_collect};
use session_ha::fs::{OsFs, Vfs};
use session_ha::wal::{verify, ProblemKind, WalConfig, SEGMENT_HEADER_LEN};

const RECORDS: u64 = 4;

/// A clean one-segment log of `RECORDS` records: (segment file name, bytes, offset of the
/// last record).
fn clean_log() -> (String, Vec<u8>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _, _) =
        open_collect(Arc::new(OsFs::new()), dir.path(), WalConfig::default(), 0).unwrap();
    for i in 1..=RECORDS {
        wal.append(&body(i)).unwrap();
    }
    wal.close().unwrap();
    let seg = wal.segments()[0].path.clone();
    let bytes = std::fs::read(&seg).unwrap();
    let last = SEGMENT_HEADER_LEN + (1..RECORDS).map(|i| 20 + body(i).len()).sum::<usize>();
    assert_eq!(bytes.len(), last + 20 + body(RECORDS).len());
    let name = seg.file_name().unwrap().to_str().unwrap().to_owned();
    (name, bytes, last)
}

/// Opens a log whose only segment holds `bytes` and checks that exactly the records before
/// `good_end` come back, the rest is cut and kept in a `.broken` file.
fn assert_recovers_prefix(name: &str, bytes: &[u8], good_end: usize, records: u64) {
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join(name);
    std::fs::write(&seg, bytes).unwrap();
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let (wal, report, got) = open_collect(fs.clone(), dir.path(), WalConfig::default(), 0)
        .unwrap_or_else(|e| panic!("cut at {}: {e}", bytes.len()));
    let want: Vec<_> = (1..=records).map(|i| (i, body(i))).collect();
    assert_eq!(got, want, "cut at {}", bytes.len());
    let cut = bytes.len() - good_end;
    assert_eq!(report.bytes_truncated, cut as u64);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_end as u64);
    if cut == 0 {
        assert!(report.broken_files.is_empty());
    } else {
        let broken: PathBuf = dir.path().join(format!("{name}.{good_end}.broken"));
        assert_eq!(report.broken_files, vec![broken.clone()]);
        assert_eq!(std::fs::read(&broken).unwrap(), &bytes[good_end..]);
    }
    // The log continues cleanly after the cut.
    assert_eq!(wal.append(b"after").unwrap(), records + 1);
    wal.close().unwrap();
    let v = verify(fs.as_ref(), dir.path(), 0).unwrap();
    assert!(v.is_clean(), "{:?}", v.problems);
    assert_eq!(v.last_seq, Some(records + 1));
}

#[test]
fn a_write_torn_at_every_byte_of_the_last_record_recovers_the_records_before_it() {
    let (name, bytes, last) = clean_log();
    for cut in last..bytes.len() {
        assert_recovers_prefix(&name, &bytes[..cut], last, RECORDS - 1);
    }
    assert_recovers_prefix(&name, &bytes, bytes.len(), RECORDS);
}

#[test]
fn a_zero_filled_tail_is_cut_and_kept() {
    let (name, mut bytes, _) = clean_log();
    let end = bytes.len();
    bytes.resize(end + 4096, 0);
    assert_recovers_prefix(&name, &bytes, end, RECORDS);
}

#[test]
fn a_garbage_tail_is_cut_and_kept() {
    let (name, mut bytes, _) = clean_log();
    let end = bytes.len();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    bytes.extend((0..3000).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    assert_recovers_prefix(&name, &bytes, end, RECORDS);
}

#[test]
fn a_torn_record_followed_by_zeros_is_cut_at_the_record() {
    let (name, bytes, last) = clean_log();
    let mut torn = bytes[..last + 9].to_vec();
    torn.resize(torn.len() + 512, 0);
    assert_recovers_prefix(&name, &torn, last, RECORDS - 1);
}

#[test]
fn verify_reports_a_torn_tail_as_such_and_leaves_it_alone() {
    let (name, bytes, last) = clean_log();
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join(&name);
    std::fs::write(&seg, &bytes[..last + 3]).unwrap();
    let v = verify(&OsFs::new(), dir.path(), 0).unwrap();
    assert_eq!(v.problems.len(), 1);
    let p = &v.problems[0];
    assert_eq!((p.file.as_path(), p.offset), (seg.as_path(), last as u64));
    assert!(matches!(p.what, ProblemKind::TornTail { bytes: 3, .. }));
    assert!(!v.has_corruption());
    assert_eq!(std::fs::read(&seg).unwrap(), &bytes[..last + 3]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_second_torn_tail_at_the_same_offset_does_not_replace_the_first_broken_file() {
    let (name, bytes, _) = clean_log();
    let dir = tempfile::tempdir().unwrap();
    let seg = dir.path().join(&name);
    let fs: Arc<dyn Vfs> = Arc::new(OsFs::new());
    let mut kept = Vec::new();
    for garbage in [[0xAAu8; 5], [0xBB; 5]] {
        let mut torn = bytes.clone();
        torn.extend_from_slice(&garbage);
        std::fs::write(&seg, &torn).unwrap();
        let (wal, report, _) =
            open_collect(fs.clone(), dir.path(), WalConfig::default(), 0).unwrap();
        wal.close().unwrap();
        kept.extend(report.broken_files);
    }
    let end = bytes.len();
    assert_eq!(
        kept,
        vec![
            dir.path().join(format!("{name}.{end}.broken")),
            dir.path().join(format!("{name}.{end}-1.broken")),
        ]
    );
    assert_eq!(std::fs::read(&kept[0]).unwrap(), [0xAA; 5]);
    assert_eq!(std::fs::read(&kept[1]).unwrap(), [0xBB; 5]);
}
