//! `--json` prints exactly one line holding one JSON object, with the documented keys in
//! order, for every subcommand, for failures and for usage errors.

mod common;

use std::ffi::OsStr;

use common::*;

fn keys_of<S: AsRef<OsStr>>(args: &[S], exit: i32) -> Json {
    let out = run(args);
    assert_eq!(code(&out), exit, "{}{}", stdout(&out), stderr(&out));
    json_of(&out)
}

fn starts_with_keys(v: &Json, keys: &[&str]) {
    assert_eq!(&v.keys()[..keys.len().min(v.keys().len())], keys, "{v:?}");
}

const HEAD: [&str; 3] = ["command", "ok", "exit_code"];

#[test]
fn json_output_parses_for_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store \"quoted\"\tname");
    snapshotted_store(&dir, 4, 2);
    let d = dir.as_os_str();
    let backup = tmp.path().join("b");
    let restored = tmp.path().join("r");
    let j: &OsStr = "--json".as_ref();

    let v = keys_of(&[j, "inspect".as_ref(), d], 0);
    let inspect = [
        "dir",
        "region",
        "incarnation",
        "live_generation",
        "bytes",
        "manifests",
        "snapshot_files",
        "orphans",
        "wal",
        "state",
        "state_error",
    ];
    starts_with_keys(&v, &[&HEAD[..], &inspect[..]].concat());
    assert_eq!(
        v.at("dir").str(),
        dir.to_str().unwrap(),
        "escaped and read back"
    );
    starts_with_keys(
        v.at("manifests/0"),
        &[
            "slot",
            "bytes",
            "valid",
            "error",
            "live",
            "generation",
            "region",
            "incarnation",
            "replica_id",
            "wal_from",
            "covers_seq",
            "created_ms",
            "chain",
        ],
    );
    starts_with_keys(
        v.at("wal"),
        &["segments", "bytes", "broken_files", "other_files"],
    );
    starts_with_keys(
        v.at("state"),
        &[
            "generation",
            "records_replayed",
            "replica_id",
            "sessions",
            "live_sessions",
            "version_vector",
            "digest_root",
            "removed",
        ],
    );

    let v = keys_of(&["verify".as_ref(), j, d], 0);
    let verify = [
        "dir",
        "intact",
        "generation",
        "manifests",
        "snapshots",
        "orphans",
        "wal",
        "problems",
        "warnings",
    ];
    starts_with_keys(&v, &[&HEAD[..], &verify[..]].concat());
    starts_with_keys(
        v.at("wal"),
        &[
            "segments",
            "records",
            "first_seq",
            "last_seq",
            "problems",
            "broken_files",
            "temp_files",
        ],
    );
    starts_with_keys(v.at("snapshots/0"), &["file", "bytes", "entries", "error"]);

    let v = keys_of(&["recover".as_ref(), d, j], 0);
    let recover = [
        "dir",
        "would_succeed",
        "generation",
        "snapshots",
        "sessions",
        "covers_seq",
        "records_to_replay",
        "bytes_to_truncate",
        "fallbacks",
        "failure",
    ];
    starts_with_keys(&v, &[&HEAD[..], &recover[..]].concat());

    let v = keys_of(&[j, "export".as_ref(), d, backup.as_os_str()], 0);
    let export = [
        "dir",
        "file",
        "region",
        "incarnation",
        "sessions",
        "bytes",
        "version_vector",
        "verified",
        "elapsed_ms",
        "recovery",
        "warnings",
    ];
    starts_with_keys(&v, &[&HEAD[..], &export[..]].concat());
    starts_with_keys(
        v.at("recovery"),
        &[
            "generation",
            "records_replayed",
            "bytes_truncated",
            "fallbacks",
        ],
    );

    let v = keys_of(
        &[
            j,
            "restore".as_ref(),
            backup.as_os_str(),
            restored.as_os_str(),
        ],
        0,
    );
    let restore = [
        "file",
        "dir",
        "region",
        "incarnation",
        "replica_id",
        "sessions",
        "retired",
        "verified",
        "problems",
    ];
    starts_with_keys(&v, &[&HEAD[..], &restore[..]].concat());

    let v = keys_of(&[j, "--version".as_ref()], 0);
    starts_with_keys(&v, &[&HEAD[..], &["name", "version"][..]].concat());
    let v = keys_of(&[j, "help".as_ref(), "verify".as_ref()], 0);
    starts_with_keys(&v, &[&HEAD[..], &["topic", "text"][..]].concat());

    // A failure: the same head, then one error object.
    let v = keys_of(
        &[j, "verify".as_ref(), tmp.path().join("nope").as_os_str()],
        2,
    );
    assert_eq!(v.keys(), [&HEAD[..], &["error"][..]].concat());
    starts_with_keys(v.at("error"), &["kind", "message", "hint"]);
    assert_eq!(v.at("error/kind").str(), "not_found");

    // A usage error.
    let v = keys_of(&[j, "verify".as_ref()], 2);
    assert_eq!(v.keys(), [&HEAD[..], &["error"][..]].concat());
    assert_eq!(v.at("command").str(), "verify");
    assert_eq!(v.at("error/kind").str(), "usage");
}

#[test]
fn the_json_checker_accepts_json_and_rejects_what_is_not() {
    let v = parse_json(r#" {"a":[1,-2.5e3,true,null],"b":"x\"\u00e9\ud83e\udd80"} "#).unwrap();
    assert_eq!(v.at("a/1"), &Json::Num(-2500.0));
    assert_eq!(v.at("b").str(), "x\"é🦀");
    for bad in [
        "{",
        "{\"a\":1,}",
        "[01]",
        "\"\n\"",
        "{\"a\":1}{}",
        "{\"a\":1,\"a\":2}",
        "'x'",
        "[1 2]",
    ] {
        assert!(parse_json(bad).is_err(), "{bad:?}");
    }
}
