//! Only one `Wal` at a time per directory, in this process or another: a second open gets
//! `Error::Locked`, and `close` (or drop) releases the lock.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns: a panic is the failure report

mod common;

use std::path::Path;
use std::sync::Arc;

use common::open_collect;
use session_ha::fs::{FaultyFs, OsFs, Vfs};
use session_ha::wal::WalConfig;
use session_ha::Error;

fn second_open_is_locked_until_close(fs: Arc<dyn Vfs>, dir: &Path) {
    let (wal, _, _) = open_collect(fs.clone(), dir, WalConfig::default(), 0).unwrap();
    let second = open_collect(fs.clone(), dir, WalConfig::default(), 0);
    assert!(
        matches!(second, Err(Error::Locked { dir: ref d }) if d == dir),
        "{second:?}"
    );
    wal.close().unwrap();
    let (again, _, _) = open_collect(fs.clone(), dir, WalConfig::default(), 0).unwrap();
    drop(again);
    drop(wal);
    open_collect(fs, dir, WalConfig::default(), 0).unwrap();
}

#[test]
fn on_the_real_disk() {
    let dir = tempfile::tempdir().unwrap();
    second_open_is_locked_until_close(Arc::new(OsFs::new()), &dir.path().join("wal"));
}

#[test]
fn on_the_simulated_disk() {
    second_open_is_locked_until_close(Arc::new(FaultyFs::new()), Path::new("/x/wal"));
}
