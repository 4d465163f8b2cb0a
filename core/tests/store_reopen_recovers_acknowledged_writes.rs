//! A store reopened after close (and after being dropped without close) holds every write it
//! acknowledged, across snapshots, deltas, a compaction and the WAL tail; and the covered WAL
//! segments are deleted once two snapshot generations cover them.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use session_ha::{FsyncPolicy, Store, StoreConfig};

fn config() -> StoreConfig {
    let mut c = StoreConfig::new("us-east-1");
    c.fsync = FsyncPolicy::Always;
    c.snapshot_interval = None;
    c.tick_interval = None;
    c.segment_size = 4096;
    c
}

fn write_batch(store: &Store, from: u32, to: u32) {
    for i in from..to {
        let id = format!("s{i}");
        store.put(id.as_str(), "user", format!("u{i}")).unwrap();
        store
            .counter_add(id.as_str(), "hits", i64::from(i))
            .unwrap();
        if i % 7 == 0 {
            store.end(id.as_str()).unwrap();
        }
    }
}

#[test]
fn reopen_after_snapshots_and_tail_holds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let (root, ids) = {
        let (store, report) = Store::open(&path, config()).unwrap();
        assert!(report.created);
        write_batch(&store, 0, 100);
        let snap = store.snapshot().unwrap();
        assert!(snap.base, "the first snapshot is a base");
        write_batch(&store, 100, 200);
        let delta = store.snapshot().unwrap();
        assert!(!delta.base);
        assert_eq!(
            delta.sessions, 100,
            "only the sessions changed since the base"
        );
        write_batch(&store, 200, 300);
        store.compact().unwrap();
        write_batch(&store, 300, 400); // WAL tail only
        let root = store.digest_root().unwrap();
        let ids = store.session_ids().unwrap();
        store.close().unwrap();
        (root, ids)
    };
    let (store, report) = Store::open(&path, config()).unwrap();
    assert!(!report.created);
    assert!(report.fallbacks.is_empty(), "{:?}", report.fallbacks);
    assert!(report.wal.records_replayed > 0);
    assert_eq!(store.digest_root().unwrap(), root);
    assert_eq!(store.session_ids().unwrap(), ids);
    assert_eq!(store.get_field(b"s398", b"user").unwrap().unwrap(), "u398");
    assert!(
        store.get(b"s7").unwrap().is_none(),
        "ended sessions stay ended"
    );
    let status = store.status();
    assert_eq!(status.snapshot.deltas, 0);
    assert!(
        status.wal.segments < 20,
        "covered segments were deleted: {}",
        status.wal.segments
    );
    assert!(store.verify().unwrap().is_intact());
}

#[test]
fn a_store_dropped_without_close_recovers_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let root = {
        let (store, _) = Store::open(&path, config()).unwrap();
        write_batch(&store, 0, 50);
        store.snapshot().unwrap();
        write_batch(&store, 50, 80);
        store.digest_root().unwrap()
    };
    let (store, _) = Store::open(&path, config()).unwrap();
    assert_eq!(store.digest_root().unwrap(), root);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, _) = Store::open(dir.path(), config()).unwrap();
    let second = Store::open(dir.path(), config());
    assert!(
        matches!(second, Err(session_ha::Error::Locked { .. })),
        "{second:?}"
    );
}

#[test]
fn a_directory_of_another_region_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path(), config())
        .unwrap()
        .0
        .close()
        .unwrap();
    let mut other = config();
    other.region = "eu-central-1".into();
    assert!(matches!(
        Store::open(dir.path(), other),
        Err(session_ha::Error::InvalidArgument(_))
    ));
}
