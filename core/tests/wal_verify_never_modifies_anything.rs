//! `verify` only lists and reads: on a log with a torn tail, a corrupt record, a leftover temp
//! file and a set-aside `.broken` file it makes no mutating call, leaves every byte as it was,
//! takes no lock (it runs beside an open log), and reports each thing where it is.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{body, open_collect};
use session_ha::fs::{FaultyFs, Op, Vfs};
use session_ha::wal::{verify, ProblemKind, WalConfig};

const DIR: &str = "/wal";

#[test]
fn verify_makes_only_read_calls_and_reports_what_it_finds() {
    let fs = FaultyFs::new();
    let config = WalConfig {
        segment_size: 24 + 3 * 40,
        ..WalConfig::default()
    };
    let (wal, _, _) = open_collect(Arc::new(fs.clone()), Path::new(DIR), config, 0).unwrap();
    for i in 1..=8 {
        wal.append(&body(i)).unwrap();
    }
    wal.sync().unwrap();
    let segs = wal.segments();
    // While the log is open: clean, and no lock is needed.
    let v = verify(&fs, Path::new(DIR), 0).unwrap();
    assert!(v.is_clean(), "{:?}", v.problems);
    assert_eq!((v.first_seq, v.last_seq, v.records), (Some(1), Some(8), 8));
    wal.close().unwrap();

    // Damage: a flipped body byte in the first segment's first record, a torn tail on the
    // last segment, plus leftovers of interrupted runs.
    let first = &segs[0].path;
    let mut b = fs.peek(first).unwrap();
    b[24 + 16] ^= 0x40;
    rewrite(&fs, first, &b);
    let last = &segs.last().unwrap().path;
    let mut b = fs.peek(last).unwrap();
    b.extend_from_slice(&[0xAB; 7]);
    rewrite(&fs, last, &b);
    rewrite(
        &fs,
        &Path::new(DIR).join("wal-00000000000000000099.log.tmp"),
        b"x",
    );
    rewrite(
        &fs,
        &Path::new(DIR).join("wal-00000000000000000001.log.5.broken"),
        b"y",
    );

    let before: Vec<_> = fs.files().iter().map(|p| (p.clone(), fs.peek(p))).collect();
    let calls_before = fs.call_log().len();
    let v = verify(&fs, Path::new(DIR), 0).unwrap();
    let calls = &fs.call_log()[calls_before..];
    assert!(
        calls
            .iter()
            .all(|(op, _)| matches!(op, Op::ListDir | Op::ReadFile)),
        "{calls:?}"
    );
    let after: Vec<_> = fs.files().iter().map(|p| (p.clone(), fs.peek(p))).collect();
    assert_eq!(before, after);

    assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
    assert_eq!((&v.problems[0].file, v.problems[0].offset), (first, 24));
    assert!(matches!(v.problems[0].what, ProblemKind::Corrupt(_)));
    assert_eq!(&v.problems[1].file, last);
    assert!(matches!(
        v.problems[1].what,
        ProblemKind::TornTail { bytes: 7, .. }
    ));
    assert!(v.has_corruption());
    assert_eq!(v.temp_files.len(), 1);
    assert_eq!(v.broken_files.len(), 1);
    assert_eq!(v.segments.len(), segs.len());
}

/// Replaces a file's content durably, as damage found on disk would be.
fn rewrite(fs: &FaultyFs, path: &Path, bytes: &[u8]) {
    if fs.exists(path).unwrap() {
        fs.remove_file(path).unwrap();
    }
    let mut f = fs.create(path).unwrap();
    f.append(bytes).unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new(DIR)).unwrap();
}
