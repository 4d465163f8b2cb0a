//! What recovery sets aside and removes, never deletes: a torn tail kept in a `.broken` file
//! before the segment is cut, the segments after damage renamed aside under
//! [`WalRecovery::KeepPrefix`](super::WalRecovery::KeepPrefix), and the half-created files of
//! an interrupted run (temp segments, temp `.broken` files), which hold nothing acknowledged.
//! Called by `recovery` only once every segment has been read.

use std::path::{Path, PathBuf};

use super::segment::{broken_path, is_temp_name, segment_name};
use super::DamageCut;
use crate::error::{Error, Result};
use crate::fs::Vfs;

/// A damaged end of the last segment, to be set aside and cut off.
pub(super) struct TornTail {
    pub(super) offset: usize,
    pub(super) bytes: Vec<u8>,
}

/// Removes half-created segments and half-written `.broken` files from an interrupted run.
pub(super) fn remove_leftovers(fs: &dyn Vfs, dir: &Path, names: &[String]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in names {
        if is_temp_name(name) || (name.starts_with("wal-") && name.ends_with(".broken.tmp")) {
            let p = dir.join(name);
            fs.remove_file(&p)?;
            removed.push(p);
        }
    }
    if !removed.is_empty() {
        fs.sync_dir(dir)?;
    }
    Ok(removed)
}

/// Where damage stopped a [`WalRecovery::KeepPrefix`] recovery.
pub(super) struct Cut {
    /// Index (in `firsts`) of the segment the damage is in.
    pub(super) index: usize,
    /// Offset of the damage in it (0: the whole segment is unusable).
    pub(super) offset: usize,
    pub(super) error: Error,
}

/// Under `KeepPrefix`, after damage at `cut`: every later segment is renamed aside (and the
/// damaged segment too when the damage is in its header); returns what was cut.
pub(super) fn set_aside_after(
    fs: &dyn Vfs,
    dir: &Path,
    firsts: &[u64],
    cut: &Cut,
    kept_end: Option<u64>,
) -> Result<DamageCut> {
    let from = if cut.offset == 0 {
        cut.index
    } else {
        cut.index + 1
    };
    let mut set_aside_files = Vec::new();
    let mut bytes = 0;
    for &first in &firsts[from..] {
        let path = dir.join(segment_name(first));
        bytes += fs.file_len(&path)?;
        let mut attempt = 0;
        let mut to = broken_path(&path, 0, attempt);
        while fs.exists(&to)? {
            attempt += 1;
            to = broken_path(&path, 0, attempt);
        }
        fs.rename(&path, &to)?;
        set_aside_files.push(to);
    }
    if !set_aside_files.is_empty() {
        fs.sync_dir(dir)?;
    }
    Ok(DamageCut {
        error: cut.error.to_string(),
        kept_through: kept_end.unwrap_or(0),
        segments_set_aside: set_aside_files,
        bytes_set_aside: bytes,
    })
}

/// Keeps the torn tail of `segment` in a `.broken` file beside it (written to a temp name,
/// synced, renamed, directory synced) before the segment is cut. A `.broken` file kept by an
/// earlier recovery is never replaced.
pub(super) fn set_aside(
    fs: &dyn Vfs,
    dir: &Path,
    segment: &Path,
    torn: &TornTail,
) -> Result<PathBuf> {
    let mut attempt = 0;
    let mut broken = broken_path(segment, torn.offset as u64, attempt);
    while fs.exists(&broken)? {
        attempt += 1;
        broken = broken_path(segment, torn.offset as u64, attempt);
    }
    let mut tmp = broken.clone().into_os_string();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = fs.create(&tmp)?;
    f.append(&torn.bytes)?;
    f.sync_data()?;
    drop(f);
    fs.rename(&tmp, &broken)?;
    fs.sync_dir(dir)?;
    Ok(broken)
}
