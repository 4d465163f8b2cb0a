//! The file-system layer: every byte that session-ha makes durable goes through [`Vfs`].
//!
//! It owns nothing on disk itself; it owns the *contract* that the WAL and the snapshot writer
//! rely on, and the two implementations of it:
//!
//! - [`OsFs`]: `std::fs` on the real disk.
//! - [`FaultyFs`]: an in-memory file system that models what survives a power cut, counts every
//!   call and fails the one a test asks it to fail. Durable code is tested against it.
//!
//! The contract, which both implementations keep:
//!
//! ```text
//!  file data     append ──► visible to readers ──► VfsFile::sync_data ──► survives a crash
//!  directory     create / rename / remove ──► visible ──► Vfs::sync_dir(parent) ──► survives
//!  lock          Vfs::lock_dir(dir) ──► DirLock held until dropped (or the process dies)
//! ```
//!
//! Errors come back as this crate's [`Error`]: a full disk (`ENOSPC`, `EDQUOT`) as
//! [`Error::NoSpace`], everything else as [`Error::Io`] with a short verb phrase naming the
//! operation and the path it was applied to.

mod fault;
mod faulty;
mod faulty_state;
mod os;

use std::any::Any;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[doc(hidden)]
pub use faulty::{Fault, FaultyFs, Op, Repeat};
pub use os::OsFs;

/// A file system as durable code needs it. Object safe: stores hold an `Arc<dyn Vfs>`.
///
/// Paths are used as given (no canonicalisation). File names returned by
/// [`list_dir`](Vfs::list_dir) are the entries' own names, not full paths.
pub trait Vfs: Send + Sync + fmt::Debug {
    /// Creates a new, empty file for reading and appending. Fails if `path` already exists.
    ///
    /// # Errors
    /// [`Error::Io`] (also when the file exists), [`Error::NoSpace`].
    fn create(&self, path: &Path) -> Result<Box<dyn VfsFile>>;

    /// Opens an existing file for reading and appending at its end.
    ///
    /// # Errors
    /// [`Error::Io`] (also when the file does not exist).
    fn open_append(&self, path: &Path) -> Result<Box<dyn VfsFile>>;

    /// Opens an existing file for reading only.
    ///
    /// # Errors
    /// [`Error::Io`] (also when the file does not exist).
    fn open_read(&self, path: &Path) -> Result<Box<dyn VfsFile>>;

    /// Reads a whole file.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn read_file(&self, path: &Path) -> Result<Vec<u8>>;

    /// The length of a file in bytes.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn file_len(&self, path: &Path) -> Result<u64>;

    /// Whether anything (file or directory) exists at `path`.
    ///
    /// # Errors
    /// [`Error::Io`] when the answer cannot be known (permissions, I/O).
    fn exists(&self, path: &Path) -> Result<bool>;

    /// Renames a file, replacing `to` if it exists. Durable only after
    /// [`sync_dir`](Vfs::sync_dir) of the parent directory.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::NoSpace`].
    fn rename(&self, from: &Path, to: &Path) -> Result<()>;

    /// Removes a file. Durable only after [`sync_dir`](Vfs::sync_dir) of the parent.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn remove_file(&self, path: &Path) -> Result<()>;

    /// The names of the entries of a directory, sorted. Names that are not UTF-8 are skipped
    /// (session-ha never creates them).
    ///
    /// # Errors
    /// [`Error::Io`].
    fn list_dir(&self, dir: &Path) -> Result<Vec<String>>;

    /// Creates a directory and any missing parents. Durable only after
    /// [`sync_dir`](Vfs::sync_dir) of each parent that gained an entry.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::NoSpace`].
    fn create_dir_all(&self, dir: &Path) -> Result<()>;

    /// Makes the directory's entries (creates, renames, removes) durable.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn sync_dir(&self, dir: &Path) -> Result<()>;

    /// Takes the exclusive lock of a directory, held until the returned guard drops.
    ///
    /// # Errors
    /// [`Error::Locked`] when another open (in this process or another) holds it;
    /// [`Error::Io`] when the lock cannot be taken at all.
    fn lock_dir(&self, dir: &Path) -> Result<DirLock>;

    /// 64 bits that differ from call to call: the source of segment salts, encryption salts
    /// and incarnation numbers. On the real disk they are the operating system's random
    /// numbers ([`os_entropy`]); a simulated file system returns a seeded sequence, so that a
    /// simulation replays exactly.
    fn entropy(&self) -> u64 {
        os_entropy()
    }
}

/// 64 bits from the operating system's random number generator (`getrandom(2)` on Linux),
/// fit for salts and keys. Should the OS refuse (no Linux since 3.17 does once booted), the
/// wall clock (ns), the process id and a process-wide counter mixed through xxh3 stand in:
/// still distinct across calls, processes and restarts, which is all a salt needs to keep
/// nonces unique (see `crate::crypto`).
pub fn os_entropy() -> u64 {
    getrandom::u64().unwrap_or_else(|_| mixed_entropy())
}

fn mixed_entropy() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut seed = [0u8; 28];
    seed[0..16].copy_from_slice(&nanos.to_le_bytes());
    seed[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    seed[20..28].copy_from_slice(&count.to_le_bytes());
    xxhash_rust::xxh3::xxh3_64(&seed)
}

/// An open file. Writes always go to the end of the file.
pub trait VfsFile: Send + Sync + fmt::Debug {
    /// The path the file was opened under.
    fn path(&self) -> &Path;

    /// Appends all of `buf` at the end of the file. On error an unknown prefix of `buf` may
    /// have been written.
    ///
    /// # Errors
    /// [`Error::NoSpace`], [`Error::Io`].
    fn append(&mut self, buf: &[u8]) -> Result<()>;

    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    ///
    /// # Errors
    /// [`Error::Io`].
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize>;

    /// Makes the file's data (and the metadata needed to read it, such as its length) durable.
    /// After a failure the file's durable state is unknown: never retry, treat it as lost.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::NoSpace`].
    fn sync_data(&mut self) -> Result<()>;

    /// Truncates or extends (with zeros) the file to `len` bytes.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::NoSpace`].
    fn set_len(&mut self, len: u64) -> Result<()>;

    /// The file's current length in bytes.
    ///
    /// # Errors
    /// [`Error::Io`].
    fn size(&self) -> Result<u64>;
}

/// The exclusive lock of a directory; released when dropped.
pub struct DirLock {
    dir: PathBuf,
    _held: Box<dyn Any + Send + Sync>,
}

impl DirLock {
    /// Wraps whatever keeps the lock held (a locked file, a table entry): the lock is released
    /// when `held` is dropped. For [`Vfs`] implementations.
    pub fn new(dir: PathBuf, held: Box<dyn Any + Send + Sync>) -> DirLock {
        DirLock { dir, _held: held }
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl fmt::Debug for DirLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirLock").field("dir", &self.dir).finish()
    }
}

/// `ENOSPC` on every Unix this crate targets.
const ENOSPC: i32 = 28;
/// `EDQUOT` on Linux: a quota is a full disk as far as the caller is concerned.
const EDQUOT_LINUX: i32 = 122;

/// Whether an I/O error means "the disk (or quota) is full".
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    ) || matches!(e.raw_os_error(), Some(ENOSPC) | Some(EDQUOT_LINUX))
}

/// Maps an I/O error to this crate's [`Error`]: a full disk to [`Error::NoSpace`], anything
/// else to [`Error::Io`] with `op` (a short verb phrase: "append to", "fdatasync") and `path`.
pub fn io_error(op: &'static str, path: &Path, e: io::Error) -> Error {
    if is_no_space(&e) {
        Error::NoSpace {
            path: path.to_path_buf(),
        }
    } else {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// The directory holding `path`, for syncing after a create, rename or remove: `"."` for a
/// bare file name.
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` and any missing parents so that they survive a crash: after creating them,
/// syncs the parent of each directory that was created, top down. Does nothing if `dir`
/// exists.
///
/// # Errors
/// As [`Vfs::exists`], [`Vfs::create_dir_all`] and [`Vfs::sync_dir`].
pub fn create_dir_durably(fs: &dyn Vfs, dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut cur = dir;
    while !cur.as_os_str().is_empty() && !fs.exists(cur)? {
        missing.push(cur);
        match cur.parent() {
            Some(p) => cur = p,
            None => break,
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs.create_dir_all(dir)?;
    for created in missing.iter().rev() {
        fs.sync_dir(parent_dir(created))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_and_quota_map_to_no_space_and_the_rest_to_io() {
        let p = Path::new("/x/y");
        let e = io_error("append to", p, io::Error::from_raw_os_error(ENOSPC));
        assert!(matches!(e, Error::NoSpace { ref path } if path == p));
        let e = io_error("append to", p, io::Error::from(io::ErrorKind::StorageFull));
        assert!(matches!(e, Error::NoSpace { .. }));
        let e = io_error("fdatasync", p, io::Error::from_raw_os_error(5));
        assert!(matches!(
            e,
            Error::Io {
                op: "fdatasync",
                ..
            }
        ));
        assert_eq!(e.kind(), "io");
    }

    #[test]
    fn os_entropy_is_the_os_random_numbers_and_the_stand_in_differs_too() {
        let draws: std::collections::HashSet<u64> = (0..64).map(|_| os_entropy()).collect();
        assert_eq!(draws.len(), 64);
        assert_ne!(mixed_entropy(), mixed_entropy());
    }

    #[test]
    fn parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent_dir(Path::new("a")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/d/a")), Path::new("/d"));
    }
}
