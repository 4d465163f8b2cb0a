//! A store held open (as a running node holds it) is locked: `export` exits 1 with the
//! library's `Locked` message, points at the node's backup call, and writes no file.

mod common;

use common::*;
use session_ha::Store;

#[test]
fn export_of_a_locked_store_exits_1_saying_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    let backup = tmp.path().join("b");
    let (live, _) = Store::open(&dir, config()).unwrap();
    fill(&live, 0, 3);

    let out = run(&["export".as_ref(), dir.as_os_str(), backup.as_os_str()]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("is locked by another open store"), "{err}");
    assert!(err.contains("backup/1"), "{err}");
    assert_eq!(stdout(&out), "");
    assert!(!backup.exists());

    let out = run(&[
        "export".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
        backup.as_os_str(),
    ]);
    assert_eq!(code(&out), 1);
    let v = json_of(&out);
    assert_eq!(v.at("ok"), &Json::Bool(false));
    assert_eq!(v.at("error/kind").str(), "locked");
    assert!(v.at("error/hint").str().contains("backup/1"));
    assert!(!backup.exists());
    live.close().unwrap();
}
