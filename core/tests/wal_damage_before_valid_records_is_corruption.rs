//! A bad record with valid records after it, a bad record in a segment that is not the last,
//! a bad segment header, or a record of another segment (another salt) is corruption:
//! `Error::Corrupt` with the offset of the damage. It is never skipped and never truncated.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::open_collect;
use session_ha::fs::OsFs;
use session_ha::wal::{verify, ProblemKind, Wal, WalConfig, SEGMENT_HEADER_LEN};
use session_ha::{DecodeError, Error};

const BODY: usize = 8;
const REC: usize = 20 + BODY;

/// Writes a log of `n` records of `BODY` bytes (segments of `per_segment` records) into `dir`
/// and returns its segment files, oldest first.
fn write_log(dir: &Path, n: u64, per_segment: u64) -> Vec<std::path::PathBuf> {
    let config = WalConfig {
        segment_size: (SEGMENT_HEADER_LEN + REC * per_segment as usize) as u64,
        ..WalConfig::default()
    };
    let (wal, _, _) = open_collect(Arc::new(OsFs::new()), dir, config, 0).unwrap();
    for i in 1..=n {
        wal.append(&[i as u8; BODY]).unwrap();
    }
    wal.close().unwrap();
    wal.segments().into_iter().map(|s| s.path).collect()
}

fn open(dir: &Path) -> Result<Vec<(u64, Vec<u8>)>, Error> {
    open_collect(Arc::new(OsFs::new()), dir, WalConfig::default(), 0).map(|(_, _, got)| got)
}

fn assert_corrupt_at(dir: &Path, file: &Path, offset: u64, what: &str) {
    match open(dir) {
        Err(Error::Corrupt {
            path, offset: o, ..
        }) => {
            assert_eq!((path.as_path(), o), (file, offset), "{what}");
        }
        other => panic!("{what}: expected corruption at {offset}, got {other:?}"),
    }
}

fn flip(path: &Path, bit: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[bit / 8] ^= 1 << (bit % 8);
    std::fs::write(path, b).unwrap();
}

#[test]
fn a_bit_flip_anywhere_in_a_record_followed_by_valid_records_is_corruption_at_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let seg = write_log(dir.path(), 3, 100).remove(0);
    let original = std::fs::read(&seg).unwrap();
    let second = SEGMENT_HEADER_LEN + REC;
    let fields = [(0, "len"), (4, "seq"), (12, "head_crc"), (16, "body")];
    for bit in 0..REC * 8 {
        std::fs::write(&seg, &original).unwrap();
        flip(&seg, second * 8 + bit);
        let byte = bit / 8;
        let field = fields
            .iter()
            .rev()
            .find(|(at, _)| byte >= *at)
            .map_or("?", |(_, name)| *name);
        let field = if byte >= 16 + BODY { "body_crc" } else { field };
        assert_corrupt_at(
            dir.path(),
            &seg,
            second as u64,
            &format!("bit {bit} ({field})"),
        );
        // Nothing was cut or set aside.
        assert_eq!(std::fs::read(&seg).unwrap().len(), original.len());
        assert!(!std::fs::read_dir(dir.path()).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with("broken")));
    }
}

#[test]
fn damage_in_the_last_record_of_a_segment_that_is_not_the_last_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let segs = write_log(dir.path(), 4, 2);
    assert_eq!(segs.len(), 2);
    let last_of_first = SEGMENT_HEADER_LEN + REC;
    for byte in [0, 5, 13, 16 + BODY / 2, 16 + BODY + 1] {
        let original = std::fs::read(&segs[0]).unwrap();
        flip(&segs[0], (last_of_first + byte) * 8);
        assert_corrupt_at(dir.path(), &segs[0], last_of_first as u64, "flip");
        std::fs::write(&segs[0], &original).unwrap();
    }
    // Cut short, it is not a torn tail either: the segment after it proves it was complete.
    let original = std::fs::read(&segs[0]).unwrap();
    std::fs::write(&segs[0], &original[..original.len() - 3]).unwrap();
    assert_corrupt_at(dir.path(), &segs[0], last_of_first as u64, "cut");
}

#[test]
fn a_bit_flip_in_a_segment_header_is_corruption_at_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let segs = write_log(dir.path(), 4, 2);
    for seg in &segs {
        for bit in (0..SEGMENT_HEADER_LEN * 8).step_by(7) {
            let original = std::fs::read(seg).unwrap();
            flip(seg, bit);
            assert_corrupt_at(dir.path(), seg, 0, &format!("header bit {bit}"));
            std::fs::write(seg, &original).unwrap();
        }
    }
    // A header that verifies but disagrees with the file name.
    let renamed = segs[1].with_file_name("wal-00000000000000000004.log");
    std::fs::rename(&segs[1], &renamed).unwrap();
    assert_corrupt_at(dir.path(), &renamed, 0, "renamed");
}

#[test]
fn a_valid_record_with_the_wrong_sequence_number_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let seg = write_log(dir.path(), 3, 100).remove(0);
    let mut b = std::fs::read(&seg).unwrap();
    let (second, third) = (SEGMENT_HEADER_LEN + REC, SEGMENT_HEADER_LEN + 2 * REC);
    let copy = b[second..third].to_vec();
    b[third..third + REC].copy_from_slice(&copy); // record 2 again where 3 belongs
    std::fs::write(&seg, &b).unwrap();
    match open(dir.path()) {
        Err(Error::Corrupt {
            offset,
            source: DecodeError::Malformed(why),
            ..
        }) => {
            assert_eq!(offset, third as u64);
            assert!(why.contains("expected 3"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_record_from_another_segment_does_not_validate_under_this_segments_salt() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let seg_a = write_log(a.path(), 3, 100).remove(0);
    let seg_b = write_log(b.path(), 3, 100).remove(0);
    let (bytes_a, bytes_b) = (
        std::fs::read(&seg_a).unwrap(),
        std::fs::read(&seg_b).unwrap(),
    );
    let second = SEGMENT_HEADER_LEN + REC;
    // Same seq, same body, same length: only the salt differs.
    let mut mixed = bytes_a.clone();
    mixed[second..second + REC].copy_from_slice(&bytes_b[second..second + REC]);
    std::fs::write(&seg_a, &mixed).unwrap();
    assert_corrupt_at(
        a.path(),
        &seg_a,
        second as u64,
        "foreign record in the middle",
    );

    // As stale bytes after the end, it is not taken for record 4: it is a torn tail.
    let mut stale = bytes_a.clone();
    let mut foreign = bytes_b[second..second + REC].to_vec();
    foreign[4] = 4; // even renumbered, its checksums are wrong under this salt
    stale.extend_from_slice(&foreign);
    std::fs::write(&seg_a, &stale).unwrap();
    let got = open(a.path()).unwrap();
    assert_eq!(got.len(), 3);
}

#[test]
fn verify_lists_corruption_and_reads_on_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let segs = write_log(dir.path(), 6, 3);
    let second = SEGMENT_HEADER_LEN + REC;
    flip(&segs[0], (second + 16) * 8);
    flip(&segs[1], 3);
    let before: Vec<_> = segs.iter().map(|s| std::fs::read(s).unwrap()).collect();
    let v = verify(&OsFs::new(), dir.path(), 0).unwrap();
    assert!(v.has_corruption());
    assert_eq!(v.problems.len(), 2, "{:?}", v.problems);
    assert_eq!(v.problems[0].file, segs[0]);
    assert_eq!(v.problems[0].offset, second as u64);
    assert!(matches!(
        v.problems[0].what,
        ProblemKind::Corrupt(DecodeError::ChecksumMismatch { .. })
    ));
    assert_eq!(v.problems[1].file, segs[1]);
    assert!(matches!(v.problems[1].what, ProblemKind::BadHeader(_)));
    assert_eq!(v.records, 2, "records 1 and 3 of the first segment verify");
    let after: Vec<_> = segs.iter().map(|s| std::fs::read(s).unwrap()).collect();
    assert_eq!(before, after);
    let r = Wal::open(
        Arc::new(OsFs::new()),
        dir.path(),
        WalConfig::default(),
        0,
        |_, _| Ok(()),
    );
    assert!(matches!(r, Err(Error::Corrupt { .. })));
}
