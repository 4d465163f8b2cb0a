//! `recover` is a dry run: on a store with a torn WAL tail it reports the bytes recovery
//! would cut and the records it would replay, and every file keeps its bytes.

mod common;

use std::io::Write as _;

use common::*;

#[test]
fn recover_reports_a_torn_tail_and_modifies_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    snapshotted_store(&dir, 6, 4);
    let segment = files_in(&dir, "wal", ".log").pop().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    f.write_all(&[0x5A; 29]).unwrap();
    drop(f);
    let before = tree(&dir);

    let out = run(&["recover".as_ref(), dir.as_os_str()]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(text.contains("dry run: nothing was changed"), "{text}");
    assert!(text.contains("recovery would succeed"), "{text}");
    assert!(
        text.contains("bytes to truncate        29 (torn WAL tail"),
        "{text}"
    );

    let out = run(&["recover".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(code(&out), 0);
    let v = json_of(&out);
    assert_eq!(v.at("would_succeed"), &Json::Bool(true));
    assert_eq!(v.at("bytes_to_truncate").num(), 29.0);
    // 6 sessions x 3 writes in the snapshot, 4 x 3 after it.
    assert_eq!(v.at("covers_seq").num(), 18.0);
    assert_eq!(v.at("records_to_replay").num(), 12.0);
    assert_eq!(v.at("sessions").num(), 6.0);
    assert_eq!(v.at("snapshots/0").str(), base_name(&dir));
    assert_eq!(v.at("failure"), &Json::Null);

    assert_eq!(tree(&dir), before, "a dry run changes no file");
}
