//! Damage to records that a snapshot already covers (seq at or below `replay_after`) loses
//! nothing: recovery skips it when a valid record at or below `replay_after + 1` follows, and
//! `verify` reports it as covered damage, not corruption. Damage that reaches an uncovered
//! record is still corruption.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::sync::Arc;

use common::{body, open_collect};
use session_ha::fs::OsFs;
use session_ha::wal::{verify, ProblemKind, WalConfig};
use session_ha::Error;

/// A one-segment log of records 1..=10; returns the directory and each record's offset.
fn log() -> (tempfile::TempDir, std::path::PathBuf, Vec<usize>) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("wal");
    let (wal, _, _) = open_collect(Arc::new(OsFs), &dir, WalConfig::default(), 0).unwrap();
    for i in 1..=10 {
        let seq = wal.append(&body(i)).unwrap();
        wal.wait_durable(seq).unwrap();
    }
    wal.close().unwrap();
    let seg = dir.join("wal-00000000000000000001.log");
    let bytes = std::fs::read(&seg).unwrap();
    let mut offsets = Vec::new();
    let mut at = session_ha::wal::SEGMENT_HEADER_LEN;
    while at < bytes.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += session_ha::wal::RECORD_OVERHEAD + len;
    }
    assert_eq!(offsets.len(), 10);
    (root, dir, offsets)
}

fn flip(dir: &std::path::Path, offset: usize) {
    let seg = dir.join("wal-00000000000000000001.log");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[offset + 16] ^= 0x40; // first body byte of the record
    std::fs::write(&seg, bytes).unwrap();
}

#[test]
fn covered_damage_is_skipped_and_uncovered_damage_is_refused() {
    let (_root, dir, offsets) = log();
    flip(&dir, offsets[2]); // record 3
    let v = verify(&OsFs, &dir, 6).unwrap();
    assert!(!v.has_corruption(), "{:?}", v.problems);
    assert!(
        matches!(v.problems[0].what, ProblemKind::Covered(_)),
        "{:?}",
        v.problems
    );
    let (wal, report, got) = open_collect(Arc::new(OsFs), &dir, WalConfig::default(), 6).unwrap();
    assert_eq!(report.covered_damage, 1);
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, vec![7, 8, 9, 10]);
    assert_eq!(got[0].1, body(7));
    wal.close().unwrap();

    // Covered through 1 only: record 3 is needed, so the same damage is corruption.
    let v = verify(&OsFs, &dir, 1).unwrap();
    assert!(v.has_corruption());
    let err = open_collect(Arc::new(OsFs), &dir, WalConfig::default(), 1)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::Corrupt { offset, .. } if offset == offsets[2] as u64),
        "{err:?}"
    );
}
