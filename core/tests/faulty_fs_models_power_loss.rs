//! FaultyFs loses exactly what a power cut loses, and fails exactly the call it is told to.
//! Everything else in the durability tests leans on this, so it is tested on its own.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

use std::path::Path;

use session_ha::fs::{Fault, FaultyFs, Op, Repeat, Vfs};
use session_ha::Error;

fn setup() -> FaultyFs {
    let fs = FaultyFs::new();
    fs.create_dir_all(Path::new("/d")).unwrap();
    fs.sync_dir(Path::new("/")).unwrap();
    fs
}

#[test]
fn unsynced_data_is_dropped_by_a_crash_and_synced_data_is_kept() {
    let fs = setup();
    let p = Path::new("/d/f");
    let mut f = fs.create(p).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    f.append(b"kept").unwrap();
    f.sync_data().unwrap();
    f.append(b"-lost").unwrap();
    assert_eq!(fs.read_file(p).unwrap(), b"kept-lost");
    fs.crash();
    assert_eq!(fs.read_file(p).unwrap(), b"kept");
}

#[test]
fn a_created_file_is_gone_after_a_crash_unless_its_directory_was_synced() {
    let fs = setup();
    let mut f = fs.create(Path::new("/d/a")).unwrap();
    f.append(b"x").unwrap();
    f.sync_data().unwrap();
    fs.crash();
    assert!(!fs.exists(Path::new("/d/a")).unwrap());

    let mut f = fs.create(Path::new("/d/b")).unwrap();
    f.append(b"x").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.crash();
    assert_eq!(fs.read_file(Path::new("/d/b")).unwrap(), b"x");
}

#[test]
fn a_rename_without_a_directory_fsync_reverts_to_the_old_name() {
    let fs = setup();
    let (tmp, fin) = (Path::new("/d/tmp"), Path::new("/d/final"));
    let mut f = fs.create(tmp).unwrap();
    f.append(b"data").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.rename(tmp, fin).unwrap();
    assert_eq!(fs.list_dir(Path::new("/d")).unwrap(), vec!["final"]);
    fs.crash();
    assert_eq!(fs.list_dir(Path::new("/d")).unwrap(), vec!["tmp"]);
    assert_eq!(fs.read_file(tmp).unwrap(), b"data");

    fs.rename(tmp, fin).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.crash();
    assert_eq!(fs.list_dir(Path::new("/d")).unwrap(), vec!["final"]);
}

#[test]
fn a_remove_without_a_directory_fsync_is_undone() {
    let fs = setup();
    let p = Path::new("/d/f");
    fs.create(p).unwrap().sync_data().unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.remove_file(p).unwrap();
    fs.crash();
    assert!(fs.exists(p).unwrap());
    fs.remove_file(p).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    fs.crash();
    assert!(!fs.exists(p).unwrap());
}

#[test]
fn a_directory_whose_parent_was_not_synced_vanishes_with_its_files() {
    let fs = FaultyFs::new();
    fs.create_dir_all(Path::new("/a/b")).unwrap();
    fs.create(Path::new("/a/b/f")).unwrap().sync_data().unwrap();
    fs.sync_dir(Path::new("/a/b")).unwrap();
    fs.sync_dir(Path::new("/a")).unwrap();
    fs.crash(); // "/" was never synced, so "/a" is gone, and everything below it
    assert!(!fs.exists(Path::new("/a")).unwrap());
    assert!(fs.files().is_empty());
}

#[test]
fn handles_and_locks_from_before_a_crash_are_dead() {
    let fs = setup();
    let p = Path::new("/d/f");
    let mut f = fs.create(p).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    let lock = fs.lock_dir(Path::new("/d")).unwrap();
    fs.crash();
    assert!(matches!(f.append(b"late"), Err(Error::Io { .. })));
    let relock = fs.lock_dir(Path::new("/d")).unwrap();
    drop(lock); // the dead lock's drop must not release the new one
    assert!(matches!(
        fs.lock_dir(Path::new("/d")),
        Err(Error::Locked { .. })
    ));
    drop(relock);
    assert!(fs.lock_dir(Path::new("/d")).is_ok());
}

#[test]
fn a_failed_fdatasync_loses_the_dirty_bytes_even_if_a_later_sync_succeeds() {
    let fs = setup();
    let p = Path::new("/d/f");
    let mut f = fs.create(p).unwrap();
    fs.sync_dir(Path::new("/d")).unwrap();
    f.append(b"ok").unwrap();
    f.sync_data().unwrap();
    fs.fail(Some(Op::SyncData), 1, Fault::Eio, Repeat::Once);
    f.append(b"gone").unwrap();
    assert!(matches!(
        f.sync_data(),
        Err(Error::Io {
            op: "fdatasync",
            ..
        })
    ));
    f.sync_data().unwrap(); // "succeeds", as Linux does after marking the pages clean
    fs.crash();
    assert_eq!(fs.read_file(p).unwrap(), b"ok\0\0\0\0");
}

#[test]
fn the_nth_call_fails_with_the_planned_error_and_counts_are_per_kind() {
    let fs = setup();
    let before = fs.calls(None);
    fs.fail(Some(Op::Append), 1, Fault::NoSpace, Repeat::Once);
    fs.fail(None, before + 4, Fault::Eio, Repeat::Once);
    let mut f = fs.create(Path::new("/d/f")).unwrap(); // call before+0
    f.append(b"a").unwrap(); // +1, append #0
    let full = f.append(b"b"); // +2, append #1
    assert!(matches!(full, Err(Error::NoSpace { .. })));
    f.append(b"c").unwrap(); // +3, once means once
    let eio = f.sync_data(); // +4
    assert!(
        matches!(eio, Err(Error::Io { ref source, .. }) if source.raw_os_error() == Some(5)),
        "{eio:?}"
    );
    assert_eq!(fs.calls(Some(Op::Append)), 3);
    assert_eq!(fs.faults_fired(), 2);
    assert_eq!(fs.call_log().len() as u64, fs.calls(None));
}

#[test]
fn a_torn_write_leaves_half_the_buffer_and_a_sticky_fault_keeps_firing() {
    let fs = setup();
    let p = Path::new("/d/f");
    let mut f = fs.create(p).unwrap();
    fs.fail(
        Some(Op::Append),
        0,
        Fault::TornThenNoSpace,
        Repeat::FromThenOn,
    );
    assert!(matches!(f.append(b"12345678"), Err(Error::NoSpace { .. })));
    assert_eq!(fs.peek(p).unwrap(), b"1234");
    assert!(matches!(f.append(b"xx"), Err(Error::NoSpace { .. })));
    assert_eq!(fs.peek(p).unwrap(), b"1234x");
    fs.clear_faults();
    f.append(b"!").unwrap();
    assert_eq!(fs.peek(p).unwrap(), b"1234x!");
}

#[test]
fn a_tearing_crash_keeps_a_prefix_of_the_unsynced_appends() {
    for seed in 0..20 {
        let fs = setup();
        let p = Path::new("/d/f");
        let mut f = fs.create(p).unwrap();
        fs.sync_dir(Path::new("/d")).unwrap();
        f.append(b"base").unwrap();
        f.sync_data().unwrap();
        f.append(b"0123456789").unwrap();
        fs.crash_tearing(seed);
        let after = fs.read_file(p).unwrap();
        assert!(after.starts_with(b"base"));
        assert!(b"base0123456789".starts_with(&after));
    }
}

#[test]
fn create_dir_durably_syncs_every_new_parent() {
    let fs = FaultyFs::new();
    session_ha::fs::create_dir_durably(&fs, Path::new("/a/b/c")).unwrap();
    fs.crash();
    assert!(fs.exists(Path::new("/a/b/c")).unwrap());
}
