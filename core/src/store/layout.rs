//! Where a store keeps what, in its directory:
//!
//! ```text
//! <dir>/LOCK                          held while the store is open
//! <dir>/MANIFEST-0, MANIFEST-1        A/B manifest slots (snapshot::manifest)
//! <dir>/snap/snap-<gen>.base|.delta   snapshot files (snapshot::format); *.tmp while written
//! <dir>/wal/wal-<seq>.log             WAL segments (wal), with the WAL's own LOCK
//! ```

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::fs::Vfs;
use crate::snapshot::SnapKind;

/// The snapshot directory of a store.
pub fn snap_dir(dir: &Path) -> PathBuf {
    dir.join("snap")
}

/// The WAL directory of a store.
pub fn wal_dir(dir: &Path) -> PathBuf {
    dir.join("wal")
}

/// File name of the snapshot of generation `gen`.
pub fn snap_name(generation: u64, kind: SnapKind) -> String {
    let ext = match kind {
        SnapKind::Base => "base",
        SnapKind::Delta => "delta",
        SnapKind::Backup => "backup",
    };
    format!("snap-{generation:020}.{ext}")
}

/// Whether `dir` holds WAL segments or snapshot files (so a missing manifest is damage, not
/// a new store).
pub fn holds_data(fs: &dyn Vfs, dir: &Path) -> Result<bool> {
    for sub in [wal_dir(dir), snap_dir(dir)] {
        if fs.exists(&sub)?
            && fs
                .list_dir(&sub)?
                .iter()
                .any(|n| n.starts_with("wal-") || n.starts_with("snap-"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `dir` holds WAL segments (writes may have been acknowledged from it).
pub fn holds_wal(fs: &dyn Vfs, dir: &Path) -> Result<bool> {
    let wal = wal_dir(dir);
    Ok(fs.exists(&wal)? && fs.list_dir(&wal)?.iter().any(|n| n.starts_with("wal-")))
}

/// A fresh incarnation number from the file system's entropy (never 0, the number of the
/// replicas a bare [`crate::Replica::new`] makes in tests).
pub fn new_incarnation(fs: &dyn Vfs) -> u32 {
    let h = fs.entropy();
    ((h >> 32) as u32 ^ h as u32).max(1)
}
