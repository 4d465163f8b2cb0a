//! `export` refuses an existing FILE and `restore` a DIR that exists and is not empty:
//! exit 2, kind `exists`, and the existing bytes are untouched. An empty DIR is fine.

mod common;

use common::*;

#[test]
fn export_and_restore_never_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    snapshotted_store(&dir, 3, 1);
    let backup = tmp.path().join("b");
    std::fs::write(&backup, b"precious").unwrap();

    let out = run(&[
        "export".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
        backup.as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    assert_eq!(json_of(&out).at("error/kind").str(), "exists");
    assert!(stderr(&out).contains("never overwrites"));
    assert_eq!(std::fs::read(&backup).unwrap(), b"precious");

    std::fs::remove_file(&backup).unwrap();
    assert_eq!(
        code(&run(&[
            "export".as_ref(),
            dir.as_os_str(),
            backup.as_os_str()
        ])),
        0
    );

    let target = tmp.path().join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), b"keep me").unwrap();
    let out = run(&["restore".as_ref(), backup.as_os_str(), target.as_os_str()]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("exists and is not empty"));
    assert_eq!(tree(&target).len(), 1);

    let out = run(&["restore".as_ref(), backup.as_os_str(), dir.as_os_str()]);
    assert_eq!(code(&out), 2, "restoring over a store is refused");
    let out = run(&[
        "restore".as_ref(),
        backup.as_os_str(),
        tmp.path().join("target").join("notes.txt").as_os_str(),
    ]);
    assert_eq!(code(&out), 2, "a file is not a directory");

    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(&["restore".as_ref(), backup.as_os_str(), empty.as_os_str()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
