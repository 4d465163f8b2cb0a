//! A backup copies its sessions after its cut, so a session in it may hold a write its
//! context does not cover. A store restored from it must count that write's dot as seen:
//! otherwise, once the write is removed and collected here, an older copy of it (from a
//! peer, another backup) is taken for news and the removed entry is back (I4).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;
use std::sync::Arc;

use common::store::{open_on, store_config};
use session_ha::fs::{FaultyFs, Vfs};
use session_ha::snapshot::{read_snapshot, SnapEntry, SnapshotMeta, SnapshotWriter};
use session_ha::store::restore_backup;
use session_ha::{CausalContext, Dot, ManualTime, Store, VersionVector};

#[test]
fn a_restore_covers_every_write_its_sessions_hold_and_keeps_covering_it_after_a_reopen() {
    let fs = FaultyFs::with_seed(7);
    let (store, _) = open_on(&fs, store_config()).unwrap();
    store.put("s", "k1", "v1").unwrap();
    store.set_add("s", "tags", "x").unwrap();
    let id = store.status().replica.id;
    let backups = Path::new("/backups");
    fs.create_dir_all(backups).unwrap();
    let full = backups.join("full.backup");
    store.backup(&full).unwrap();
    store.close().unwrap();

    // The same backup with its cut taken before the set add: the add came in while the
    // sessions were being copied.
    let mut entries = Vec::new();
    let (header, meta) = read_snapshot(&fs, &full, |e| entries.push(e)).unwrap();
    let mut before_add = VersionVector::new();
    before_add.raise(id, 1);
    let meta = SnapshotMeta {
        context: CausalContext::from_vv(before_add),
        ..meta
    };
    let mut w =
        SnapshotWriter::create(Arc::new(fs.clone()), backups, "early.backup", header).unwrap();
    for e in entries.iter().filter(|e| !matches!(e, SnapEntry::Meta(_))) {
        w.push(e).unwrap();
    }
    w.push(&SnapEntry::Meta(meta)).unwrap();
    w.finish().unwrap();

    let dir = Path::new("/db/restored");
    restore_backup(Arc::new(fs.clone()), &backups.join("early.backup"), dir).unwrap();
    let open = || {
        Store::open_with(
            Arc::new(fs.clone()),
            dir,
            store_config(),
            Arc::new(ManualTime::new(common::store::T0)),
        )
        .unwrap()
        .0
    };
    let add = Dot {
        replica: id,
        seq: 2,
    };
    let restored = open();
    assert!(restored.read(|r| r.session_state(b"s").is_some()));
    assert!(
        restored.read(|r| r.context().contains(add)),
        "the restored store holds the add but does not count it as seen"
    );
    restored.close().unwrap();
    let again = open();
    assert!(again.read(|r| r.context().contains(add)), "after a reopen");
}
