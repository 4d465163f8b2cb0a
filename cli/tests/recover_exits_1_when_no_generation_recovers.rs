//! Corruption in the WAL that every manifest generation needs: `recover` says recovery would
//! fail, names the damage for each generation it tried, exits 1 and changes nothing.

mod common;

use common::*;

#[test]
fn recover_exits_1_when_no_generation_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    wal_only_store(&dir, 4);
    flip(&files_in(&dir, "wal", ".log")[0], 24 + 16 + 1);
    let before = tree(&dir);

    let out = run(&["recover".as_ref(), dir.as_os_str()]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("RECOVERY WOULD FAIL"), "{text}");
    assert!(
        text.contains("wal-00000000000000000001.log at offset 24"),
        "{text}"
    );

    let v = json_of(&run(&[
        "recover".as_ref(),
        "--json".as_ref(),
        dir.as_os_str(),
    ]));
    assert_eq!(v.at("would_succeed"), &Json::Bool(false));
    assert_eq!(v.at("exit_code").num(), 1.0);
    assert!(v
        .at("failure")
        .str()
        .contains("no manifest generation recovers"));
    assert_eq!(tree(&dir), before);
}
