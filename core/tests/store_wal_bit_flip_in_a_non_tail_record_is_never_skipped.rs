//! A bit flipped in any byte of a WAL record that is not the log's tail (its length, its
//! sequence number, its header checksum, its body or its body checksum), in a real store
//! directory on the real disk, is never skipped: `verify_dir` reports it at the record's
//! offset, `dry_run_recovery` says opening would fail, and `Store::open` refuses with
//! `Error::DataLoss` naming the segment and the offset, leaving every file as it was, when
//! the damaged record is one only the log holds (with valid records after it). When it is
//! one the snapshot already covers (in a segment that is not the last), nothing is lost:
//! `verify_dir` still names it (as damage: the chain kept to fall back on could no longer
//! serve) and the store opens with every acknowledged write.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::{Path, PathBuf};

use common::store::{flip_bit, record_spans, segments, store_config, tree, Writes};
use session_ha::fs::OsFs;
use session_ha::store::{dry_run_recovery, verify_dir};
use session_ha::{Error, Store};

/// A store with a snapshot covering the first segments and a WAL tail after it; returns its
/// directory and the segments, oldest first.
fn store(root: &Path) -> (PathBuf, Vec<(u64, PathBuf)>, u64, session_ha::Digest) {
    let dir = root.join("store");
    let (store, _) = Store::open(&dir, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 14).unwrap();
    let covers = store.snapshot().unwrap().covers_seq;
    w.write_many(&store, 10).unwrap();
    let root = store.digest_root().unwrap();
    store.close().unwrap();
    let segs = segments(&OsFs, &dir);
    assert!(segs.len() >= 3, "{segs:?}");
    (dir, segs, covers, root)
}

/// Flips one bit in every byte of the record at `at` of `segment` (in turn) and checks that
/// every way in sees it and nothing is changed.
fn sweep_record(dir: &Path, segment: &Path, at: usize, len: usize, what: &str) {
    let before = tree(dir);
    let name = segment.file_name().unwrap().to_string_lossy().into_owned();
    let place = format!("{} at offset {at}", segment.display());
    for byte in at..at + len {
        let field = match byte - at {
            0..=3 => "length",
            4..=11 => "seq",
            12..=15 => "header crc",
            b if b + 4 >= len => "body crc",
            _ => "body",
        };
        let bit = 8 * byte + byte % 8;
        let what = format!("{what}: {name} byte {byte} ({field})");
        flip_bit(segment, bit);

        let v = verify_dir(&OsFs, dir).unwrap();
        assert!(
            v.problems.iter().any(|p| p.starts_with(&place)),
            "{what}: verify_dir: {:?}",
            v.problems
        );
        let plan = dry_run_recovery(&OsFs, dir).unwrap();
        assert!(
            plan.failure.as_deref().is_some_and(|f| f.contains(&place)),
            "{what}: {plan:?}"
        );
        match Store::open(dir, store_config()) {
            Err(Error::DataLoss(msg)) => assert!(msg.contains(&place), "{what}: {msg}"),
            other => panic!("{what}: the damage was not refused: {other:?}"),
        }

        flip_bit(segment, bit);
        assert_eq!(tree(dir), before, "{what}: the failed open changed files");
    }
    assert!(verify_dir(&OsFs, dir).unwrap().is_intact());
}

#[test]
fn a_flip_in_a_record_with_valid_records_after_it_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let (dir, segs, covers, _) = store(root.path());
    let (first, last) = segs.last().unwrap();
    let spans = record_spans(&std::fs::read(last).unwrap());
    assert!(spans.len() >= 3, "{spans:?}");
    assert!(
        *first > covers,
        "the last segment holds only records the snapshot lacks"
    );
    let (at, len) = spans[spans.len() / 2];
    sweep_record(&dir, last, at, len, "uncovered, mid last segment");
}

#[test]
fn a_flip_in_a_record_the_snapshot_covers_loses_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (dir, segs, covers, digest) = store(root.path());
    let (_, seg) = &segs[0];
    assert!(
        segs[1].0 - 1 <= covers,
        "the first segment is covered by the snapshot"
    );
    let (at, len) = *record_spans(&std::fs::read(seg).unwrap()).last().unwrap();
    let place = format!("{} at offset {at}", seg.display());
    for byte in at..at + len {
        let bit = 8 * byte + byte % 8;
        flip_bit(seg, bit);
        // Nothing is lost, but the chain kept to fall back on needs the record: verify
        // reports that as damage (and the covered record itself as a warning).
        let v = verify_dir(&OsFs, &dir).unwrap();
        assert!(
            v.problems
                .iter()
                .any(|p| p.contains("cannot serve as a fallback") && p.contains(&place)),
            "byte {byte}: {:?}",
            v.problems
        );
        assert!(
            v.warnings
                .iter()
                .any(|w| w.starts_with(&place) && w.contains("covers")),
            "byte {byte}: {:?}",
            v.warnings
        );
        assert_eq!(
            dry_run_recovery(&OsFs, &dir).unwrap().failure,
            None,
            "byte {byte}"
        );
        let (store, report) = Store::open(&dir, store_config()).unwrap();
        assert!(report.wal.segments_skipped >= 1, "byte {byte}");
        assert_eq!(
            store.digest_root().unwrap(),
            digest,
            "byte {byte}: every write is there"
        );
        store.close().unwrap();
        flip_bit(seg, bit);
    }
}
