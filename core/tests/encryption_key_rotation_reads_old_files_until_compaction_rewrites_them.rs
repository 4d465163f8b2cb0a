//! Key rotation: files written under k1 stay readable once the key file names k2 first and
//! k1 after it; every new file is written under k2; compaction rewrites the state under k2,
//! and once the next snapshot has made that the fallback chain too, no file under k1 is left
//! and k2 alone opens and verifies the store. Until then the chain kept as the fallback
//! still needs k1, and `verify` says so.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::BTreeSet;

use common::store::{dir, encrypted_config, image, open_on, ring, Writes};
use session_ha::fs::FaultyFs;
use session_ha::store::verify_dir_with_keys;
use session_ha::{Error, KeyId};

/// The key ids named by the encrypted files of the store (segments: bytes 24..32 of the
/// header; snapshots: bytes 32..40).
fn key_ids_on_disk(fs: &FaultyFs) -> BTreeSet<KeyId> {
    let mut ids = BTreeSet::new();
    for (path, b) in image(fs) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let at = if name.starts_with("wal-") && name.ends_with(".log") && b[6] & 1 == 1 {
            24
        } else if name.starts_with("snap-") && b[7] & 1 == 1 {
            32
        } else {
            continue;
        };
        ids.insert(KeyId(b[at..at + 8].try_into().unwrap()));
    }
    ids
}

#[test]
fn old_files_stay_readable_after_rotation_until_compaction_rewrites_them() {
    let fs = FaultyFs::with_seed(51);
    let (k1, k2) = (ring(1, &[]), ring(2, &[]));
    let rotated = ring(2, &[1]);
    let mut w = Writes::default();

    let (store, _) = open_on(&fs, encrypted_config(&k1)).unwrap();
    w.write_many(&store, 30).unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 10).unwrap();
    store.close().unwrap();
    drop(store);
    assert_eq!(key_ids_on_disk(&fs), [k1.current_id()].into());

    // Rotated: both keys read, new writes go under k2.
    let (store, _) = open_on(&fs, encrypted_config(&rotated)).unwrap();
    w.check(&store, "opened with the rotated key file");
    w.write_many(&store, 10).unwrap();
    store.snapshot().unwrap();
    assert_eq!(
        key_ids_on_disk(&fs),
        [k1.current_id(), k2.current_id()].into()
    );
    assert!(store.verify().unwrap().is_intact());
    assert!(store.verify().unwrap().warnings.is_empty());
    // k2 alone cannot read the store yet.
    store.close().unwrap();
    drop(store);
    let e = open_on(&fs, encrypted_config(&k2)).unwrap_err();
    assert!(
        matches!(&e, Error::MissingKey { key_id, .. } if *key_id == k1.current_id()),
        "{e}"
    );

    // Compaction: the live chain is rewritten under k2; the fallback still needs k1.
    let (store, _) = open_on(&fs, encrypted_config(&rotated)).unwrap();
    store.compact().unwrap();
    store.close().unwrap();
    drop(store);
    let report = verify_dir_with_keys(&fs, dir(), Some(&k2)).unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    let k1_id = k1.current_id().to_string();
    assert!(
        report.warnings.iter().any(|w| w.contains(&k1_id)),
        "the fallback chain under k1 goes unmentioned: {:?}",
        report.warnings
    );
    let (store, _) = open_on(&fs, encrypted_config(&k2)).unwrap();
    w.check(&store, "k2 alone opens the compacted live chain");

    // The next snapshot makes the compacted chain the fallback: nothing under k1 is left.
    w.write_many(&store, 5).unwrap();
    store.snapshot().unwrap();
    store.close().unwrap();
    drop(store);
    assert_eq!(key_ids_on_disk(&fs), [k2.current_id()].into());
    let report = verify_dir_with_keys(&fs, dir(), Some(&k2)).unwrap();
    assert!(
        report.is_intact() && report.warnings.is_empty(),
        "{report:?}"
    );
    let (store, _) = open_on(&fs, encrypted_config(&k2)).unwrap();
    w.check(&store, "k2 alone after the rotation completed");
}

#[test]
fn a_plain_store_opened_with_a_key_encrypts_new_files_and_reads_the_old_ones() {
    let fs = FaultyFs::with_seed(52);
    let keys = ring(1, &[]);
    let mut w = Writes::default();
    let (store, _) = open_on(&fs, common::store::store_config()).unwrap();
    w.write_many(&store, 20).unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 5).unwrap();
    store.close().unwrap();
    drop(store);
    assert!(key_ids_on_disk(&fs).is_empty());

    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    w.check(&store, "a plain store opened with a key");
    w.write_many(&store, 5).unwrap();
    store.compact().unwrap();
    w.write_many(&store, 5).unwrap();
    store.snapshot().unwrap();
    store.close().unwrap();
    drop(store);
    assert_eq!(key_ids_on_disk(&fs), [keys.current_id()].into());
    // Plain files are gone: without the key it no longer opens.
    let e = open_on(&fs, common::store::store_config()).unwrap_err();
    assert!(matches!(e, Error::MissingKey { .. }), "{e}");
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    w.check(&store, "encrypted from then on");
}
