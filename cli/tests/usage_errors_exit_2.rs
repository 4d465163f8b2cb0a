//! Bad command lines exit 2 with a message naming the problem on stderr and nothing on
//! stdout; so does a path that is not a store (a typo must not read as "intact").

mod common;

use common::*;

fn usage(args: &[&str], says: &str) {
    let out = run(args);
    assert_eq!(code(&out), 2, "{args:?}");
    assert_eq!(stdout(&out), "", "{args:?}");
    let err = stderr(&out);
    assert!(err.contains(says), "{args:?}: {err}");
}

#[test]
fn usage_errors_exit_2() {
    usage(&[], "no command given");
    usage(&["frobnicate"], "unknown command 'frobnicate'");
    usage(&["verify"], "'verify' needs DIR: missing DIR");
    usage(&["export", "/tmp"], "missing FILE");
    usage(&["restore"], "missing FILE DIR");
    usage(&["verify", "a", "b"], "unexpected argument 'b'");
    usage(
        &["verify", "--force", "/tmp"],
        "unknown option '--force' for 'verify'",
    );
    usage(&["--jsonx", "verify", "/tmp"], "unknown option '--jsonx'");
    usage(&["help", "nope"], "no help for 'nope'");
    usage(
        &["verify", "--force", "/tmp"],
        "Try 'session-ha help verify'",
    );
}

#[test]
fn a_path_that_holds_no_store_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    for cmd in ["inspect", "verify", "recover"] {
        for (path, says) in [
            (tmp.path(), "holds no session-ha store"),
            (missing.as_path(), "no such directory"),
            (file.as_path(), "is not a directory"),
        ] {
            let out = run(&[cmd.as_ref(), path.as_os_str()]);
            assert_eq!(code(&out), 2, "{cmd} {path:?}");
            assert!(stderr(&out).contains(says), "{cmd}: {}", stderr(&out));
        }
    }
    let out = run(&["export".as_ref(), tmp.path().as_os_str(), file.as_os_str()]);
    assert_eq!(code(&out), 2);
    assert!(
        !tmp.path().join("MANIFEST-0").exists(),
        "export never creates a store"
    );
    let out = run(&[
        "restore".as_ref(),
        missing.as_os_str(),
        tmp.path().join("r").as_os_str(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no such file"));
}
