//! One flipped bit inside a WAL record with valid records after it is corruption: `verify`
//! exits 1 and names the segment, the offset and what is wrong.

mod common;

use common::*;

#[test]
fn verify_exits_1_naming_a_flipped_wal_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    wal_only_store(&dir, 5);
    let segment = &files_in(&dir, "wal", ".log")[0];
    // 24-byte segment header, 16-byte record header: this is the first record's body.
    flip(segment, 24 + 16 + 2);

    let out = run(&["verify".as_ref(), dir.as_os_str()]);
    let text = stdout(&out);
    assert_eq!(code(&out), 1, "{text}");
    assert!(text.contains("DAMAGED: 1 problem"), "{text}");
    assert!(
        text.contains("wal-00000000000000000001.log at offset 24"),
        "{text}"
    );
    assert!(text.contains("corrupt at 24"), "{text}");

    let out = run(&["verify".as_ref(), "--json".as_ref(), dir.as_os_str()]);
    assert_eq!(code(&out), 1);
    let v = json_of(&out);
    assert_eq!(v.at("intact"), &Json::Bool(false));
    let problem = v.at("wal/problems/0");
    assert_eq!(problem.at("file").str(), "wal/wal-00000000000000000001.log");
    assert_eq!(problem.at("kind").str(), "corrupt");
    assert_eq!(problem.at("offset").num(), 24.0);
    assert_eq!(problem.at("corruption"), &Json::Bool(true));
}
