//! A WAL segment is deleted exactly when neither the live manifest generation nor the
//! previous one (recovery's fallback) needs any of its records: with the previous
//! generation covering up to `cut`, the segment whose last record is `cut` goes, the one
//! holding `cut + 1` stays, whatever side of a segment boundary `cut` falls on. The fallback
//! generation then still recovers every write when the newest snapshot is damaged.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{crash, dir, flip_bit_on, open_on, segments, store_config};
use session_ha::fs::FaultyFs;
use session_ha::Store;

/// Write number `i` (1-based): every record has the same size, so every segment holds the
/// same number of records.
fn write(store: &Store, i: u64) {
    assert_eq!(store.put("s", format!("k{i:03}"), "v").unwrap(), i);
}

fn holds_all(store: &Store, n: u64, what: &str) {
    let view = store.get(b"s").unwrap().unwrap();
    for i in 1..=n {
        assert!(
            view.fields.contains_key(format!("k{i:03}").as_bytes()),
            "{what}: write {i} lost"
        );
    }
    assert_eq!(view.fields.len() as u64, n, "{what}");
}

/// Records per segment.
fn per_segment() -> u64 {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut i = 0;
    while segments(&fs, dir()).len() < 2 {
        i += 1;
        write(&store, i);
    }
    let k = segments(&fs, dir())[1].0 - 1;
    assert!(k >= 3, "{k} records per segment");
    k
}

fn firsts(fs: &FaultyFs) -> Vec<u64> {
    segments(fs, dir()).into_iter().map(|(f, _)| f).collect()
}

/// The previous generation covers `cut`; returns the segments left after the next snapshot.
fn check_cut(k: u64, cut: u64) -> Vec<u64> {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    for i in 1..=cut {
        write(&store, i);
    }
    let base = store.snapshot().unwrap();
    assert_eq!(base.covers_seq, cut);
    let total = 3 * k + 2;
    for i in cut + 1..=total {
        write(&store, i);
    }
    assert_eq!(firsts(&fs), vec![1, k + 1, 2 * k + 1, 3 * k + 1]);
    let delta = store.snapshot().unwrap();
    assert_eq!((delta.generation, delta.base), (base.generation + 1, false));
    let left = firsts(&fs);
    assert_eq!(delta.wal_segments_removed, 4 - left.len());
    // Every record generation 1 needs is still there.
    assert!(
        left[0] <= cut + 1,
        "cut {cut}: the segment holding {} went",
        cut + 1
    );

    // The newest snapshot damaged: recovery falls back to the base's chain and replays the
    // records after `cut` from the segments that were kept.
    crash(&fs, Some(store), None);
    let delta_file = dir().join("snap").join(delta.file.unwrap());
    flip_bit_on(&fs, &delta_file, 8 * 40);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert_eq!(
        report.snapshots,
        vec![base.file.clone().unwrap()],
        "{report:?}"
    );
    assert_eq!(report.covers_seq, cut);
    assert_eq!(report.wal.records_replayed, total - cut);
    holds_all(&store, total, &format!("cut {cut}, fallback"));

    // Once a generation covering everything is installed on top, only the active segment
    // is left: the one holding the newest records.
    write(&store, total + 1);
    store.snapshot().unwrap();
    write(&store, total + 2);
    store.snapshot().unwrap();
    assert_eq!(firsts(&fs), vec![3 * k + 1]);
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert!(report.fallbacks.is_empty(), "{:?}", report.fallbacks);
    holds_all(&store, total + 2, &format!("cut {cut}, after catching up"));
    left
}

#[test]
fn a_cut_one_before_the_last_record_of_a_segment_keeps_that_segment() {
    let k = per_segment();
    assert_eq!(check_cut(k, k - 1), vec![1, k + 1, 2 * k + 1, 3 * k + 1]);
}

#[test]
fn a_cut_at_the_last_record_of_a_segment_deletes_it() {
    let k = per_segment();
    assert_eq!(check_cut(k, k), vec![k + 1, 2 * k + 1, 3 * k + 1]);
}

#[test]
fn a_cut_at_the_first_record_of_a_segment_keeps_that_segment() {
    let k = per_segment();
    assert_eq!(check_cut(k, k + 1), vec![k + 1, 2 * k + 1, 3 * k + 1]);
}
