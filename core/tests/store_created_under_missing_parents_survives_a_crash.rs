//! A store opened (or restored from a backup) in a directory whose parents do not exist yet
//! survives a power cut: every directory it creates is made durable in its own parent, so the
//! acknowledged writes are not lost with a directory entry that never reached the disk.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;
use std::sync::Arc;

use common::store::{crash, open_on, store_config, Writes, T0};
use session_ha::fs::FaultyFs;
use session_ha::store::restore_backup;
use session_ha::{ManualTime, Store};

#[test]
fn writes_to_a_store_whose_parent_was_created_with_it_survive_a_crash() {
    let fs = FaultyFs::new();
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert!(report.created);
    let mut w = Writes::default();
    w.write_many(&store, 5).unwrap();
    crash(&fs, Some(store), None);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert!(!report.created, "the store vanished: {report:?}");
    w.check(&store, "after the crash");
}

#[test]
fn a_store_restored_under_missing_parents_survives_a_crash() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 5).unwrap();
    let backup = Path::new("/db/backup");
    store.backup(backup).unwrap();
    drop(store);
    let target = Path::new("/restored/deep/store");
    restore_backup(Arc::new(fs.clone()), backup, target).unwrap();
    crash(&fs, None, None);
    let (store, report) = Store::open_with(
        Arc::new(fs.clone()),
        target,
        store_config(),
        Arc::new(ManualTime::new(T0)),
    )
    .unwrap();
    assert!(!report.created, "the restored store vanished: {report:?}");
    w.check(&store, "restored, after the crash");
}
