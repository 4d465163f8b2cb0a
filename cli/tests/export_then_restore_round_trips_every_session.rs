//! `export` of a closed store then `restore` into a new directory: the restored store opens
//! with the library and holds the same sessions with the same values, as a new incarnation.

mod common;

use std::path::PathBuf;

use common::*;
use session_ha::{ReplicaId, Store};

#[test]
fn export_then_restore_round_trips_every_session() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let backup = tmp.path().join("store.backup");
    let restored = tmp.path().join("restored");
    snapshotted_store(&dir, 12, 5);
    let (store, _) = Store::open(&dir, config()).unwrap();
    store.end(b"s3".to_vec()).unwrap();
    store.delete_field(b"s4".to_vec(), "user").unwrap();
    let ids = store.session_ids().unwrap();
    let views: Vec<_> = ids
        .iter()
        .map(|id| store.get(id.as_bytes()).unwrap())
        .collect();
    let old_id = store.id();
    store.close().unwrap();
    drop(store);
    let before = tree(&dir);

    let out = run(&["export".as_ref(), dir.as_os_str(), backup.as_os_str()]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("written and read back whole"));
    assert!(backup.is_file());
    // The export opens the store as a restarting node would: it puts a boot and a clean
    // close on record in the manifest slots, and changes nothing else.
    let data = |t: Vec<(PathBuf, Vec<u8>)>| -> Vec<(PathBuf, Vec<u8>)> {
        t.into_iter()
            .filter(|(p, _)| !p.to_string_lossy().contains("MANIFEST-"))
            .collect()
    };
    assert_eq!(
        data(tree(&dir)),
        data(before),
        "exporting an intact closed store changes no data file"
    );

    let out = run(&[
        "restore".as_ref(),
        "--json".as_ref(),
        backup.as_os_str(),
        restored.as_os_str(),
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let v = json_of(&out);
    assert_eq!(v.at("region").str(), REGION);
    assert_eq!(v.at("verified"), &Json::Bool(true));
    assert_eq!(v.at("retired").str(), old_id.to_string());
    let incarnation = v.at("incarnation").num() as u32;
    assert_eq!(
        v.at("replica_id").str(),
        ReplicaId::from_region(REGION, incarnation).to_string()
    );

    let (back, report) = Store::open(&restored, config()).unwrap();
    assert_eq!(report.incarnation, incarnation);
    assert_ne!(back.id(), old_id);
    assert_eq!(back.session_ids().unwrap(), ids);
    assert!(
        !ids.iter().any(|id| id.as_bytes() == b"s3"),
        "ended stays ended"
    );
    for (id, view) in ids.iter().zip(&views) {
        assert_eq!(&back.get(id.as_bytes()).unwrap(), view, "{id:?}");
    }
    assert_eq!(back.get_field(b"s7", b"user").unwrap().unwrap(), "user-7");
}
