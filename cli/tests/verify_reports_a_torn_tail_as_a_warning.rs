//! A torn WAL tail (what a crash mid-write leaves) is repaired by the next open: `verify`
//! warns about it and still exits 0.

mod common;

use std::io::Write as _;

use common::*;

#[test]
fn verify_reports_a_torn_tail_as_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    wal_only_store(&dir, 3);
    let segment = &files_in(&dir, "wal", ".log")[0];
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(segment)
        .unwrap();
    f.write_all(&[0xAB; 37]).unwrap();

    let out = run(&["verify".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stdout(&out));
    let v = json_of(&out);
    assert_eq!(v.at("intact"), &Json::Bool(true));
    assert_eq!(v.at("problems").arr().len(), 0);
    assert_eq!(v.at("warnings").arr().len(), 1);
    assert_eq!(v.at("wal/problems/0/kind").str(), "torn_tail");
    assert_eq!(v.at("wal/problems/0/corruption"), &Json::Bool(false));
}
