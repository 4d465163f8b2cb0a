//! `recovered_state` (the dry run an operator, and the simulator's durability check, trust)
//! recovers exactly what opening recovers when a record a snapshot covers is damaged and
//! records the snapshot does not cover follow it in the same segment. The failure this
//! guards against (simulator seed 800): opening stepped over the covered damage and replayed
//! the records after it, the dry run stopped at the damage and said less.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{dir, flip_bit_on, open_on, store_config, write_n};
use session_ha::fs::{FaultyFs, Vfs};
use session_ha::store::recovered_state;
use session_ha::wal::{RECORD_OVERHEAD, SEGMENT_HEADER_LEN};
use session_ha::StoreConfig;

/// A store with segments of `segment_size` bytes: writes `0..covered`, a snapshot, writes
/// `covered..total`, then a crash.
fn snapshot_between(
    seed: u64,
    segment_size: u64,
    covered: u64,
    total: u64,
) -> (FaultyFs, StoreConfig) {
    let fs = FaultyFs::with_seed(seed);
    let mut config = store_config();
    config.segment_size = segment_size;
    let (store, _) = open_on(&fs, config.clone()).unwrap();
    for n in 0..covered {
        write_n(&store, n).unwrap();
    }
    store.snapshot().unwrap();
    for n in covered..total {
        write_n(&store, n).unwrap();
    }
    store.kill();
    (fs, config)
}

#[test]
fn the_dry_run_replays_past_covered_damage_as_opening_does() {
    // One segment holds every record.
    let (fs, config) = snapshot_between(7, 1 << 20, 6, 12);

    let wal = dir().join("wal");
    let segments = fs.list_dir(&wal).unwrap();
    assert_eq!(segments.len(), 1, "{segments:?}");
    let seg = wal.join(&segments[0]);
    let bytes = fs.read_file(&seg).unwrap();
    // The second record: the snapshot covers it.
    let first_len = u32::from_le_bytes(
        bytes[SEGMENT_HEADER_LEN..SEGMENT_HEADER_LEN + 4]
            .try_into()
            .unwrap(),
    ) as usize;
    let second = SEGMENT_HEADER_LEN + RECORD_OVERHEAD + first_len;
    flip_bit_on(&fs, &seg, (second + RECORD_OVERHEAD) * 8);

    let dry = recovered_state(&fs, dir()).unwrap().unwrap();
    let (store, report) = open_on(&fs, config).unwrap();
    assert_eq!(report.wal.covered_damage, 1, "{report:?}");
    assert!(report.wal.records_replayed > 0, "{report:?}");
    assert_eq!(dry.records_replayed, report.wal.records_replayed);
    let opened = store.read(|r| r.version_vector().clone());
    assert_eq!(
        dry.replica.vv, opened,
        "the dry run says less than opening recovers"
    );
    for n in 0..12 {
        assert!(common::store::holds(&store, n), "write {n} lost");
    }
}

#[test]
fn the_dry_run_skips_a_wholly_covered_segment_as_opening_does() {
    // Several segments.
    let (fs, config) = snapshot_between(8, 512, 40, 46);

    let wal = dir().join("wal");
    let mut segments = fs.list_dir(&wal).unwrap();
    segments.sort();
    assert!(segments.len() >= 3, "{segments:?}");
    // The first segment is wholly covered by the snapshot (the next one starts below its
    // cut); its header is damaged.
    flip_bit_on(&fs, &wal.join(&segments[0]), 8 * 8);

    let dry = recovered_state(&fs, dir()).unwrap().unwrap();
    let (store, report) = open_on(&fs, config).unwrap();
    assert!(report.wal.segments_skipped > 0, "{report:?}");
    assert_eq!(dry.records_replayed, report.wal.records_replayed);
    let opened = store.read(|r| r.version_vector().clone());
    assert_eq!(
        dry.replica.vv, opened,
        "the dry run says less than opening recovers"
    );
}
