//! `verify` on an intact store: exit 0, "intact", every file listed as ok, nothing on stderr
//! (stderr is a pipe here, so no progress line either).

mod common;

use common::*;

#[test]
fn verify_exits_0_on_an_intact_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    snapshotted_store(&dir, 10, 4);

    let out = run(&["verify".as_ref(), dir.as_os_str()]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}");
    assert!(text.contains(": intact"), "{text}");
    assert!(text.contains(&base_name(&dir)), "{text}");
    assert!(text.contains("wal/wal-00000000000000000001.log"), "{text}");
    assert!(!text.contains("DAMAGED"), "{text}");
    assert_eq!(
        stderr(&out),
        "",
        "no progress line when stderr is not a terminal"
    );
}
