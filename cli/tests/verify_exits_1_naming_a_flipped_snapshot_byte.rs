//! One flipped bit inside a snapshot chunk: `verify` exits 1 and names the snapshot file.

mod common;

use common::*;

#[test]
fn verify_exits_1_naming_a_flipped_snapshot_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    snapshotted_store(&dir, 10, 0);
    let snap = &files_in(&dir, "snap", ".base")[0];
    let name = base_name(&dir);
    let file = name.trim_start_matches("snap/");
    let len = std::fs::metadata(snap).unwrap().len() as usize;
    flip(snap, len / 2);

    let out = run(&["verify".as_ref(), dir.as_os_str()]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("DAMAGED"), "{text}");
    let problems = text
        .split("\nproblems\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap();
    assert!(
        problems.contains(file) && problems.contains("checksum"),
        "{problems}"
    );

    let out = run(&["verify".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    let v = json_of(&out);
    let check = v.at("snapshots/0");
    assert_eq!(check.at("file").str(), name);
    assert!(matches!(check.at("error"), Json::Str(_)));
    assert!(v.at("problems/0").str().contains(file));
}
