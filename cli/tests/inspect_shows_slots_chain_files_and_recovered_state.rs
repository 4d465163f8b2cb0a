//! `inspect` shows both manifest slots, the live chain with sizes and covered WAL seq, the
//! files on disk (orphans included) and the state recovery would rebuild.

mod common;

use common::*;
use session_ha::{ReplicaId, Store};

#[test]
fn inspect_shows_slots_chain_files_and_recovered_state() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    snapshotted_store(&dir, 5, 2);
    let (store, _) = Store::open(&dir, config()).unwrap();
    let (id, incarnation) = (store.id(), store.incarnation());
    store.close().unwrap();
    drop(store);
    std::fs::write(
        dir.join("snap").join("snap-00000000000000000099.delta"),
        b"left over",
    )
    .unwrap();

    let live = newest_generation(&dir);
    let out = run(&["inspect".as_ref(), dir.as_os_str()]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(
        text.contains("MANIFEST-0") && text.contains("MANIFEST-1"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "chain of generation {live} (live), covers WAL seq 15"
        )),
        "{text}"
    );
    assert!(
        text.contains("snap-00000000000000000099.delta      9  orphan"),
        "{text}"
    );
    assert!(
        text.contains("sessions         7 (7 live, 0 ended)"),
        "{text}"
    );
    assert!(text.contains(&format!("{id}:21 (self)")), "{text}");

    let v = json_of(&run(&[
        "inspect".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
    ]));
    assert_eq!(v.at("region").str(), REGION);
    assert_eq!(v.at("incarnation").num(), f64::from(incarnation));
    assert_eq!(v.at("live_generation").num(), live as f64);
    let live = v
        .at("manifests")
        .arr()
        .iter()
        .find(|m| m.at("live") == &Json::Bool(true))
        .unwrap();
    assert_eq!(live.at("wal_from").num(), 16.0);
    assert_eq!(live.at("chain/0/kind").str(), "base");
    assert_eq!(live.at("chain/0/covers_seq").num(), 15.0);
    assert_eq!(live.at("chain/0/present"), &Json::Bool(true));
    assert_eq!(
        live.at("replica_id").str(),
        ReplicaId::from_region(REGION, incarnation).to_string()
    );
    assert_eq!(
        v.at("orphans/0").str(),
        "snap/snap-00000000000000000099.delta"
    );
    assert_eq!(v.at("wal/segments/0/first_seq").num(), 1.0);
    assert_eq!(v.at("state/sessions").num(), 7.0);
    assert_eq!(v.at("state/records_replayed").num(), 6.0);
    assert_eq!(v.at("state/version_vector/0/replica").str(), id.to_string());
    assert_eq!(v.at("state/version_vector/0/seq").num(), 21.0);
}
