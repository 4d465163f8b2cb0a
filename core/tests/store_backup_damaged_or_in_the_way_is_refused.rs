//! Backups are refused rather than trusted or clobbered: a backup file cut at any byte or
//! with a bit flipped in any byte is refused by `restore_backup` with `Error::Corrupt` and
//! nothing is created (no call that could change the disk is made); `Store::backup` never
//! overwrites an existing file; a restore never goes into a directory holding a store, and
//! never takes a snapshot file that is not a backup.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;
use std::sync::Arc;

use common::store::{dir, image, mutating, open_on, replace_file, store_config, Writes};
use session_ha::fs::{FaultyFs, Vfs};
use session_ha::store::restore_backup;
use session_ha::Error;

const BACKUP: &str = "/backups/b1";
const TARGET: &str = "/restored/store";

/// A store with a few sessions of every kind and its backup at [`BACKUP`].
fn backed_up() -> FaultyFs {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 9).unwrap();
    store.end("s4").unwrap();
    store.touch("s3", 60_000).unwrap();
    session_ha::fs::create_dir_durably(&fs, Path::new("/backups")).unwrap();
    store.backup(Path::new(BACKUP)).unwrap();
    store.close().unwrap();
    fs
}

/// `restore_backup` of the damaged backup `bytes` fails with Corrupt and changes nothing.
fn assert_refused(fs: &FaultyFs, bytes: &[u8], what: &str) {
    replace_file(fs, Path::new(BACKUP), bytes);
    let before = image(fs);
    let from = fs.calls(None) as usize;
    match restore_backup(Arc::new(fs.clone()), Path::new(BACKUP), Path::new(TARGET)) {
        Err(Error::Corrupt { path, .. }) => assert_eq!(path, Path::new(BACKUP), "{what}"),
        other => panic!("{what}: restore gave {other:?}"),
    }
    let log = fs.call_log();
    assert!(
        mutating(&log[from..]).is_empty(),
        "{what}: {:?}",
        mutating(&log[from..])
    );
    assert_eq!(image(fs), before, "{what}");
    assert!(!fs.exists(Path::new(TARGET)).unwrap(), "{what}");
}

#[test]
fn a_backup_cut_at_any_byte_is_refused_and_creates_nothing() {
    let fs = backed_up();
    let good = fs.peek(Path::new(BACKUP)).unwrap();
    for cut in 0..good.len() {
        assert_refused(&fs, &good[..cut], &format!("cut to {cut} bytes"));
    }
}

#[test]
fn a_bit_flip_in_any_byte_of_a_backup_is_refused_and_creates_nothing() {
    let fs = backed_up();
    let good = fs.peek(Path::new(BACKUP)).unwrap();
    for byte in 0..good.len() {
        for bit in [byte % 8, 7 - byte % 8] {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            assert_refused(&fs, &bad, &format!("bit {bit} of byte {byte}"));
        }
    }
    // The intact backup still restores.
    replace_file(&fs, Path::new(BACKUP), &good);
    let r = restore_backup(Arc::new(fs.clone()), Path::new(BACKUP), Path::new(TARGET)).unwrap();
    assert_eq!(r.sessions, 5);
}

#[test]
fn a_backup_never_overwrites_an_existing_file() {
    let root = tempfile::tempdir().unwrap();
    let (store, _) = session_ha::Store::open(root.path().join("s"), store_config()).unwrap();
    store.put("a", "k", "v").unwrap();
    let file = root.path().join("taken");
    std::fs::write(&file, b"someone else's").unwrap();
    let r = store.backup(&file);
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"someone else's");
    let left: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "no temporary file left: {left:?}");
}

#[test]
fn a_restore_never_goes_into_a_store_nor_takes_a_snapshot_that_is_no_backup() {
    let fs = backed_up();
    // Into the live store's own directory.
    let before = image(&fs);
    let r = restore_backup(Arc::new(fs.clone()), Path::new(BACKUP), dir());
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(image(&fs), before);

    // A base snapshot file is not a backup.
    let snap = dir().join("snap");
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let base = store.compact().unwrap().file.unwrap();
    store.close().unwrap();
    let before = image(&fs);
    let r = restore_backup(Arc::new(fs.clone()), &snap.join(base), Path::new(TARGET));
    assert!(matches!(r, Err(Error::InvalidArgument(_))), "{r:?}");
    assert_eq!(image(&fs), before);
    assert!(!fs.exists(Path::new(TARGET)).unwrap());
}
