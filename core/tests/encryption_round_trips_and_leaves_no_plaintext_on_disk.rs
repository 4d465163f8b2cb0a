//! Encryption at rest, round trip: a store opened with a key ring writes WAL records,
//! snapshots (base and delta) and backups that hold none of the session data in the clear,
//! reopens with every acknowledged write, and restores a backup only with the key. A store
//! opened without a key keeps writing the plain formats, byte for byte as before.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;
use std::sync::Arc;

use common::store::{dir, encrypted_config, image, open_on, ring, store_config, Writes};
use session_ha::fs::{FaultyFs, Vfs};
use session_ha::store::restore_backup_with_keys;
use session_ha::wal::{ENCRYPTED_SEGMENT_HEADER_LEN, SEGMENT_HEADER_LEN};
use session_ha::Error;

/// Whether any file of `fs` holds `needle` in the clear.
fn plaintext_anywhere(fs: &FaultyFs, needle: &[u8]) -> Vec<String> {
    image(fs)
        .into_iter()
        .filter(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
        .map(|(p, _)| p.display().to_string())
        .collect()
}

#[test]
fn an_encrypted_store_reopens_with_every_write_and_holds_no_plaintext() {
    let fs = FaultyFs::with_seed(11);
    let keys = ring(1, &[]);
    let (store, report) = open_on(&fs, encrypted_config(&keys)).unwrap();
    assert!(report.created);
    let mut w = Writes::default();
    w.write_many(&store, 40).unwrap();
    store
        .put("secret-session", "token", "hunter2-value")
        .unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 20).unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 5).unwrap();
    store.close().unwrap();
    drop(store);

    for needle in [&b"hunter2-value"[..], b"secret-session", b"token"] {
        let found = plaintext_anywhere(&fs, needle);
        assert!(found.is_empty(), "{needle:?} in the clear in {found:?}");
    }
    // Every segment is encrypted: its header says so and names the key.
    for (_, seg) in common::store::segments(&fs, dir()) {
        let b = fs.peek(&seg).unwrap();
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 1, "{}", seg.display());
        assert_eq!(b[24..32], keys.current_id().0);
    }

    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    w.check(&store, "after reopening with the key");
    let v = store.get(&b"secret-session"[..]).unwrap().unwrap();
    assert_eq!(v.fields[&b"token"[..]], "hunter2-value");
    assert!(store.verify().unwrap().is_intact());
    assert!(store.verify().unwrap().warnings.is_empty());
}

#[test]
fn a_backup_of_an_encrypted_store_is_encrypted_and_restores_only_with_the_key() {
    let fs = FaultyFs::with_seed(12);
    let keys = ring(1, &[]);
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 30).unwrap();
    store.put("backed-up", "field", "backup-plaintext").unwrap();
    let backup = Path::new("/backups/b1");
    session_ha::fs::create_dir_durably(&fs, Path::new("/backups")).unwrap();
    let report = store.backup(backup).unwrap();
    assert_eq!(report.sessions, 6);
    store.close().unwrap();
    drop(store);
    let bytes = fs.peek(backup).unwrap();
    assert!(!bytes.windows(16).any(|w| w == b"backup-plaintext"));

    let shared: Arc<dyn Vfs> = Arc::new(fs.clone());
    let e = restore_backup_with_keys(shared.clone(), backup, Path::new("/r1"), None).unwrap_err();
    assert!(matches!(&e, Error::MissingKey { key_id, .. } if *key_id == keys.current_id()));
    let wrong = ring(2, &[]);
    let e = restore_backup_with_keys(shared.clone(), backup, Path::new("/r2"), Some(&wrong))
        .unwrap_err();
    assert!(matches!(e, Error::MissingKey { .. }), "{e}");
    assert!(!fs.exists(Path::new("/r1")).unwrap() && !fs.exists(Path::new("/r2")).unwrap());

    let restored = restore_backup_with_keys(shared, backup, Path::new("/r3"), Some(&keys)).unwrap();
    assert_eq!(restored.sessions, 6);
    let (store, _) = session_ha::Store::open_with(
        Arc::new(fs.clone()),
        Path::new("/r3"),
        encrypted_config(&keys),
        Arc::new(session_ha::ManualTime::new(common::store::T0)),
    )
    .unwrap();
    w.check(&store, "restored from the encrypted backup");
    let found = plaintext_anywhere(&fs, b"backup-plaintext");
    assert!(found.is_empty(), "in the clear in {found:?}");
}

#[test]
fn without_a_key_the_plain_formats_are_written_as_before() {
    let fs = FaultyFs::with_seed(13);
    let (store, _) = open_on(&fs, store_config()).unwrap();
    store.put("plain", "f", "plain-value").unwrap();
    store.snapshot().unwrap();
    store.close().unwrap();
    drop(store);
    for (_, seg) in common::store::segments(&fs, dir()) {
        let b = fs.peek(&seg).unwrap();
        assert_eq!(u16::from_le_bytes([b[6], b[7]]), 0);
        assert!(b.len() >= SEGMENT_HEADER_LEN && b.len() != ENCRYPTED_SEGMENT_HEADER_LEN);
    }
    assert!(!plaintext_anywhere(&fs, b"plain-value").is_empty());
    // A plain store reopened without a key appends to its last segment, as it always did.
    let before = common::store::segments(&fs, dir()).len();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    store.put("plain", "g", "more").unwrap();
    store.close().unwrap();
    assert_eq!(common::store::segments(&fs, dir()).len(), before);
}
