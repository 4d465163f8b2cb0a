//! A snapshot copies its sessions after its cut, so it can hold a write made while it runs.
//! It must not become durable before that write's log record does: otherwise a power cut
//! leaves the write in the snapshot but not in the log, outside the causal context the
//! snapshot restores, and the replica hands the write's dot out again to its next write
//! (two different changes under one dot: replicas that see both diverge for good).
//!
//! A file system wrapper makes a write at the exact moment the snapshot creates its file,
//! under the two policies where the log can lose it: `FsyncPolicy::Never` (the write is
//! acknowledged, its record is not synced) and `FsyncPolicy::Always` with an fdatasync
//! that fails (the write is refused, its record is lost).
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::store::{assert_dots_known, dir, store_config, T0};
use session_ha::fs::{DirLock, Fault, FaultyFs, Op, Repeat, Vfs, VfsFile};
use session_ha::{FsyncPolicy, ManualTime, Result, Store, StoreConfig};

type Hook = Box<dyn FnOnce() + Send>;

/// FaultyFs, plus a hook run (once) when a snapshot file is created.
struct HookFs {
    inner: FaultyFs,
    hook: Arc<Mutex<Option<Hook>>>,
}

impl std::fmt::Debug for HookFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookFs")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Vfs for HookFs {
    fn create(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let name = path.file_name().unwrap().to_string_lossy();
        if name.starts_with("snap-") && name.ends_with(".tmp") {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
        self.inner.create(path)
    }
    fn open_append(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        self.inner.open_append(path)
    }
    fn open_read(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        self.inner.open_read(path)
    }
    fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        self.inner.read_file(path)
    }
    fn file_len(&self, path: &Path) -> Result<u64> {
        self.inner.file_len(path)
    }
    fn exists(&self, path: &Path) -> Result<bool> {
        self.inner.exists(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.inner.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> Result<()> {
        self.inner.remove_file(path)
    }
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.inner.list_dir(dir)
    }
    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.inner.create_dir_all(dir)
    }
    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.inner.sync_dir(dir)
    }
    fn lock_dir(&self, dir: &Path) -> Result<DirLock> {
        self.inner.lock_dir(dir)
    }
}

fn open(fs: Arc<dyn Vfs>, config: StoreConfig) -> Arc<Store> {
    let time = Arc::new(ManualTime::new(T0));
    Arc::new(Store::open_with(fs, dir(), config, time).unwrap().0)
}

/// Writes `a.k`, then snapshots while `during` writes `a.late` from inside the snapshot; cuts
/// the power right after; reopens and checks the dots. Returns the reopened store and
/// whether the snapshot succeeded.
fn snapshot_with_a_write_in_flight(
    config: StoreConfig,
    during: impl FnOnce(&FaultyFs, &Store) + Send + 'static,
) -> (Store, bool) {
    let fs = FaultyFs::new();
    let hook: Arc<Mutex<Option<Hook>>> = Arc::default();
    let hooked: Arc<dyn Vfs> = Arc::new(HookFs {
        inner: fs.clone(),
        hook: hook.clone(),
    });
    let store = open(hooked, config.clone());
    store.put("a", "k", "1").unwrap();
    let (s, f) = (Arc::downgrade(&store), fs.clone());
    *hook.lock().unwrap() = Some(Box::new(move || during(&f, &s.upgrade().unwrap())));
    let snapshot = store.snapshot();
    assert!(hook.lock().unwrap().is_none(), "the hook ran");
    let ok = snapshot.is_ok();
    if let Err(e) = &snapshot {
        assert_eq!(store.status().snapshot.last_error, Some(e.to_string()));
    }
    fs.crash();
    drop(store);

    let store = Store::open_with(
        Arc::new(fs.clone()),
        dir(),
        config,
        Arc::new(ManualTime::new(T0)),
    )
    .unwrap()
    .0;
    assert_eq!(store.get_field(b"a", b"k").unwrap().unwrap(), "1");
    assert_dots_known(&store, "after the power cut");
    // The next write's dot is new: no change in the store already carries it.
    store.put("b", "k", "2").unwrap();
    let dot = store.read(|r| r.session_state(b"b").unwrap().fields[&b"k"[..]].stamp.dot);
    let a_dots: Vec<_> = store.read(|r| {
        r.session_state(b"a")
            .unwrap()
            .fields
            .values()
            .map(|reg| reg.stamp.dot)
            .collect()
    });
    assert!(!a_dots.contains(&dot), "{dot:?} was handed out twice");
    (store, ok)
}

#[test]
fn an_unsynced_write_made_during_a_snapshot_is_synced_before_the_snapshot_counts() {
    let mut config = store_config();
    config.fsync = FsyncPolicy::Never;
    let (store, ok) = snapshot_with_a_write_in_flight(config, |_, store| {
        store.put("a", "late", "x").unwrap();
    });
    assert!(ok);
    // The write the snapshot holds is in the log too, so it comes back whole.
    assert_eq!(store.get_field(b"a", b"late").unwrap().unwrap(), "x");
}

#[test]
fn a_write_whose_fsync_failed_during_a_snapshot_fails_the_snapshot() {
    let (store, ok) = snapshot_with_a_write_in_flight(store_config(), |fs, store| {
        fs.fail(
            Some(Op::SyncData),
            fs.calls(Some(Op::SyncData)),
            Fault::Eio,
            Repeat::Once,
        );
        assert!(store.put("a", "late", "x").is_err());
    });
    assert!(!ok, "a snapshot must not make durable what the log lost");
    assert!(store.get_field(b"a", b"late").unwrap().is_none());
}
