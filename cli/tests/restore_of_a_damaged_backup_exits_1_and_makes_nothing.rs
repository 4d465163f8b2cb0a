//! A backup with a flipped bit does not verify: `restore` exits 1 and makes no store.

mod common;

use common::*;

#[test]
fn restore_of_a_damaged_backup_exits_1_and_makes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let backup = tmp.path().join("b");
    let restored = tmp.path().join("restored");
    snapshotted_store(&dir, 8, 2);
    assert_eq!(
        code(&run(&[
            "export".as_ref(),
            dir.as_os_str(),
            backup.as_os_str()
        ])),
        0
    );
    let len = std::fs::metadata(&backup).unwrap().len() as usize;
    flip(&backup, len / 2);

    let out = run(&[
        "restore".as_ref(),
        "--json".as_ref(),
        backup.as_os_str(),
        restored.as_os_str(),
    ]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(json_of(&out).at("error/kind").str(), "corrupt");
    assert!(stderr(&out).contains("checksum"), "{}", stderr(&out));
    assert!(!restored.exists(), "nothing is made from a damaged backup");
}
