//! `--help`, `help CMD`, `CMD --help` and `--version` print to stdout and exit 0.

mod common;

use common::*;

#[test]
fn help_and_version() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let out = run(args);
        assert_eq!(code(&out), 0);
        let text = stdout(&out);
        for cmd in [
            "inspect DIR",
            "verify DIR",
            "recover DIR",
            "export DIR FILE",
            "restore FILE DIR",
        ] {
            assert!(text.contains(cmd), "{args:?}: {text}");
        }
        assert!(text.contains("Exit status"));
    }
    for cmd in ["inspect", "verify", "recover", "export", "restore"] {
        let a = run(&["help", cmd]);
        let b = run(&[cmd, "--help"]);
        assert_eq!(code(&a), 0);
        assert_eq!(stdout(&a), stdout(&b));
        assert!(stdout(&a).starts_with(&format!("Usage: session-ha {cmd} ")));
    }
    let out = run(&["--version"]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        stdout(&out),
        format!("session-ha {}\n", env!("CARGO_PKG_VERSION"))
    );
}
