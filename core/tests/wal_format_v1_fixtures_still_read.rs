//! Committed format-v1 segments (written by `fixtures/wal-v1/make_fixtures.py` from the
//! documented layout, not by this crate's encoder) keep reading the same way: the clean one
//! replays its three records, the torn one is cut back to two, the flipped one is corruption
//! at the second record. A failure here means the on-disk format changed.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{open_collect, Replayed};
use session_ha::fs::OsFs;
use session_ha::wal::{verify, WalConfig};
use session_ha::{DecodeError, Error};

const SEGMENT: &str = "wal-00000000000000000001.log";

fn fixture(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wal-v1")
        .join(case)
        .join(SEGMENT)
}

/// Opens a copy of the fixture (recovery may cut a torn tail; the fixture must stay intact).
fn open_copy(case: &str) -> (tempfile::TempDir, Result<Replayed, Error>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture(case), dir.path().join(SEGMENT)).unwrap();
    let r = open_collect(Arc::new(OsFs::new()), dir.path(), WalConfig::default(), 0)
        .map(|(_, _, got)| got);
    (dir, r)
}

fn records() -> Replayed {
    vec![
        (1, b"alpha".to_vec()),
        (2, Vec::new()),
        (3, b"gamma ".repeat(10)),
    ]
}

#[test]
fn clean_v1_segment_replays_its_records() {
    let (_dir, got) = open_copy("clean");
    assert_eq!(got.unwrap(), records());
    let dir = fixture("clean");
    let v = verify(&OsFs::new(), dir.parent().unwrap(), 0).unwrap();
    assert!(v.is_clean() && v.records == 3, "{v:?}");
}

#[test]
fn torn_v1_segment_is_cut_to_the_complete_records() {
    let (dir, got) = open_copy("torn-tail");
    assert_eq!(got.unwrap(), records()[..2].to_vec());
    let broken = dir.path().join(format!("{SEGMENT}.69.broken"));
    assert!(broken.exists());
}

#[test]
fn flipped_v1_segment_is_corrupt_at_the_second_record() {
    let (_dir, got) = open_copy("bit-flip-middle");
    assert!(
        matches!(
            got,
            Err(Error::Corrupt {
                offset: 49,
                source: DecodeError::ChecksumMismatch { .. },
                ..
            })
        ),
        "{got:?}"
    );
}
