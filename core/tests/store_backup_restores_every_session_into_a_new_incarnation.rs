//! `Store::backup` of a live store, then `restore_backup` into a new directory, brings back
//! every session exactly as it was at the backup (fields, counters, sets, expiry, ended
//! sessions staying ended; the same digest root) as a new incarnation of the region, which
//! retires the old incarnation (it is in `removed_members`). Writes made after the backup
//! are not in it. On the real disk.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::sync::Arc;

use common::store::{store_config, Writes, REGION, SESSIONS};
use session_ha::fs::OsFs;
use session_ha::store::restore_backup;
use session_ha::{ReplicaId, SessionView, Store};

const IDS: [&str; 3] = ["ended", "touched", "emptied"];

fn views(store: &Store) -> Vec<Option<SessionView>> {
    let mut ids: Vec<String> = (0..SESSIONS).map(|i| format!("s{i}")).collect();
    ids.extend(IDS.iter().map(|s| s.to_string()));
    ids.iter()
        .map(|id| store.get(id.as_bytes()).unwrap())
        .collect()
}

#[test]
fn a_backup_of_a_live_store_restores_every_session_as_a_new_incarnation() {
    let root = tempfile::tempdir().unwrap();
    let (store, _) = Store::open(root.path().join("live"), store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 12).unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 6).unwrap();
    store.put("ended", "k", "v").unwrap();
    store.end("ended").unwrap();
    store.touch("touched", 86_400_000).unwrap();
    store.put("emptied", "k", "v").unwrap();
    store.delete_field("emptied", "k").unwrap();

    let file = root.path().join("backups").join("live.backup");
    std::fs::create_dir(file.parent().unwrap()).unwrap();
    let backup = store.backup(&file).unwrap();
    let (root_then, views_then, sessions_then) = (
        store.digest_root().unwrap(),
        views(&store),
        store.read(|r| r.sessions().count()) as u64,
    );
    assert_eq!(backup.sessions, sessions_then);
    assert_eq!(backup.vv, store.read(|r| r.version_vector().clone()));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), backup.bytes);

    // The live store goes on; what it writes now is not in the backup.
    let after = w.clone();
    w.write_many(&store, 3).unwrap();
    let old = store.id();
    let old_incarnation = store.incarnation();
    store.close().unwrap();
    drop(store);

    let target = root.path().join("restored");
    let restored = restore_backup(Arc::new(OsFs), &file, &target).unwrap();
    assert_eq!(restored.region, REGION);
    assert_eq!(restored.sessions, backup.sessions);
    assert_eq!(restored.retired, old);
    assert_eq!(
        restored.retired,
        ReplicaId::from_region(REGION, old_incarnation)
    );
    assert_ne!(restored.incarnation, old_incarnation);

    let (store, report) = Store::open(&target, store_config()).unwrap();
    assert!(!report.created && report.fallbacks.is_empty(), "{report:?}");
    assert_eq!(store.incarnation(), restored.incarnation);
    assert_ne!(store.id(), old);
    assert!(store.read(|r| r.removed_members()).contains(&old));
    assert_eq!(store.digest_root().unwrap(), root_then);
    assert_eq!(views(&store), views_then);
    after.check(&store, "restored");
    for &n in &w.acked[after.acked.len()..] {
        assert!(
            !common::store::holds(&store, n),
            "write {n} came after the backup"
        );
    }
    assert!(store.get(b"ended").unwrap().is_none());
    assert!(store.verify().unwrap().is_intact());

    // The new incarnation writes under its own id and survives a reopen.
    store.put("s0", "new", "yes").unwrap();
    store.close().unwrap();
    drop(store);
    let (store, _) = Store::open(&target, store_config()).unwrap();
    assert_eq!(store.get_field(b"s0", b"new").unwrap().unwrap(), "yes");
    assert_eq!(store.read(|r| r.version_vector().get(store.id())), 1);
}
