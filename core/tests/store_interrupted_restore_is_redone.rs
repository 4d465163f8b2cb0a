//! A restore interrupted by a power cut at any I/O call leaves a directory that opening
//! refuses with a clear "interrupted restore" error (never taken for a damaged store), and
//! running the restore again completes it with every session.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;
use std::sync::Arc;

use common::store::{open_on, store_config, write_n};
use session_ha::fs::{Fault, FaultyFs, Repeat, Vfs};
use session_ha::store::restore_backup;
use session_ha::Error;

#[test]
fn a_restore_cut_at_any_call_is_refused_then_redone() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    for n in 0..30 {
        write_n(&store, n).unwrap();
    }
    let root = store.digest_root().unwrap();
    store.backup(Path::new("/db/backup.sha")).unwrap();
    store.close().unwrap();
    let base = fs.calls(None);
    let target = Path::new("/db/restored");
    restore_backup(Arc::new(fs.clone()), Path::new("/db/backup.sha"), target).unwrap();
    let calls = fs.calls(None) - base;
    for cut in 0..calls {
        let fs2 = common::store::load_image(&common::store::image(&fs));
        for leftover in fs2.files() {
            if leftover.starts_with(target) {
                fs2.remove_file(&leftover).unwrap();
            }
        }
        fs2.fail(None, fs2.calls(None) + cut, Fault::Eio, Repeat::FromThenOn);
        assert!(
            restore_backup(Arc::new(fs2.clone()), Path::new("/db/backup.sha"), target).is_err()
        );
        fs2.crash();
        fs2.clear_faults();
        // Opening what the cut left (on a copy) is refused or finds a complete store.
        let copy = common::store::load_image(&common::store::image(&fs2));
        match open_at(&copy, target) {
            Ok((s, _)) => s.close().unwrap(),
            Err(Error::InvalidArgument(why)) => {
                assert!(why.contains("interrupted restore"), "{why}")
            }
            Err(e) => panic!("cut at {cut}: {e}"),
        }
        // Running the restore again always completes it (or finds it complete).
        let _ = fs2.remove_file(&target.join("LOCK"));
        match restore_backup(Arc::new(fs2.clone()), Path::new("/db/backup.sha"), target) {
            Ok(report) => assert_eq!(report.sessions, 5, "cut at {cut}"),
            Err(Error::InvalidArgument(why)) => {
                assert!(why.contains("already holds"), "cut at {cut}: {why}")
            }
            Err(e) => panic!("cut at {cut}: redo failed: {e}"),
        }
        let (s, _) = open_at(&fs2, target).unwrap();
        assert_eq!(s.digest_root().unwrap(), root, "cut at {cut}");
    }
}

fn open_at(
    fs: &FaultyFs,
    dir: &Path,
) -> session_ha::Result<(session_ha::Store, session_ha::store::RecoveryReport)> {
    session_ha::Store::open_with(
        Arc::new(fs.clone()),
        dir,
        store_config(),
        Arc::new(session_ha::ManualTime::new(common::store::T0)),
    )
}
