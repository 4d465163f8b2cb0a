//! Opening an encrypted store without its key, or with a key file that lacks it, fails with
//! `Error::MissingKey` naming the file and the key id, and changes nothing on disk: the torn
//! tail recovery would cut stays, the half-created segment it would remove stays, no manifest
//! is installed, and `RebuildFromPeers` does not move the directory aside (a key it lacks is
//! not damage). With the key, the same directory opens and every acknowledged write is there.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::store::{
    dir, encrypted_config, image, open_on, replace_file, ring, segments, store_config, Writes,
};
use session_ha::fs::{FaultyFs, Vfs};
use session_ha::{Error, KeyRing, RecoveryMode, StoreConfig};

/// A crashed encrypted store: acknowledged writes, optionally a snapshot, a torn tail on the
/// last segment and a half-created segment beside it.
fn crashed_store(snapshot: bool) -> (FaultyFs, KeyRing, Writes) {
    let fs = FaultyFs::with_seed(21);
    let keys = ring(1, &[]);
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 25).unwrap();
    if snapshot {
        store.snapshot().unwrap();
        w.write_many(&store, 10).unwrap();
    }
    store.kill();
    drop(store);
    let (_, last) = segments(&fs, dir()).pop().unwrap();
    let mut bytes = fs.peek(&last).unwrap();
    bytes.extend_from_slice(&[0x5A; 37]);
    replace_file(&fs, &last, &bytes);
    let tmp = dir().join("wal").join("wal-00000000000000009999.log.tmp");
    let mut f = fs.create(&tmp).unwrap();
    f.append(b"half").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(&dir().join("wal")).unwrap();
    (fs, keys, w)
}

fn without_locks(fs: &FaultyFs) -> BTreeMap<PathBuf, Vec<u8>> {
    image(fs)
        .into_iter()
        .filter(|(p, _)| p.file_name().is_some_and(|n| n != "LOCK"))
        .collect()
}

fn refused(fs: &FaultyFs, config: StoreConfig, keys: &KeyRing) {
    let before = without_locks(fs);
    let e = open_on(fs, config).unwrap_err();
    match &e {
        Error::MissingKey { path, key_id, .. } => {
            assert_eq!(*key_id, keys.current_id());
            assert!(path.starts_with(dir()), "{}", path.display());
        }
        other => panic!("expected MissingKey, got {other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains(&keys.current_id().to_string()), "{msg}");
    assert_eq!(e.kind(), "missing_key");
    assert_eq!(
        without_locks(fs),
        before,
        "a refused open changed the directory"
    );
    let quarantined = fs
        .list_dir(std::path::Path::new("/db"))
        .unwrap()
        .into_iter()
        .any(|n| n.contains("quarantine"));
    assert!(!quarantined);
}

#[test]
fn no_key_or_a_wrong_key_is_missing_key_and_nothing_on_disk_changes() {
    for snapshot in [false, true] {
        let (fs, keys, w) = crashed_store(snapshot);
        refused(&fs, store_config(), &keys);
        refused(&fs, encrypted_config(&ring(2, &[])), &keys);
        refused(&fs, encrypted_config(&ring(2, &[3])), &keys);
        let rebuild = StoreConfig {
            recovery: RecoveryMode::RebuildFromPeers,
            ..encrypted_config(&ring(2, &[]))
        };
        refused(&fs, rebuild, &keys);

        let (store, report) = open_on(&fs, encrypted_config(&keys)).unwrap();
        assert_eq!(report.wal.bytes_truncated, 37, "snapshot: {snapshot}");
        assert_eq!(report.wal.temp_files_removed.len(), 1);
        w.check(&store, "opened with the key after the refusals");
    }
}

#[test]
fn the_key_error_names_the_configured_keys_and_never_a_key() {
    let (fs, keys, _) = crashed_store(false);
    let wrong = ring(2, &[3]);
    let e = open_on(&fs, encrypted_config(&wrong)).unwrap_err();
    let msg = e.to_string();
    for id in wrong.ids() {
        assert!(msg.contains(&id.to_string()), "{msg}");
    }
    assert!(msg.contains(&keys.current_id().to_string()), "{msg}");
    let e = open_on(&fs, store_config()).unwrap_err();
    assert!(e.to_string().contains("no encryption key file"), "{e}");
}
