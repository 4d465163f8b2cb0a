//! [`OsFs`]: the [`Vfs`] contract on `std::fs`, for the real disk.
//!
//! Owns no format. The directory lock is a file named `LOCK` in the directory, held with
//! `File::try_lock` (an `flock`-style lock on Unix: released when the file closes, also when the
//! process dies, and exclusive between two opens in one process too):
//!
//! ```text
//!  <dir>/LOCK   empty file; its existence means nothing, only the lock held on it does
//! ```

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{io_error, DirLock, Vfs, VfsFile};
use crate::error::{Error, Result};

/// Name of the file whose lock stands for the directory's lock.
pub const LOCK_FILE: &str = "LOCK";

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

impl OsFs {
    /// The real file system.
    pub fn new() -> OsFs {
        OsFs
    }
}

#[derive(Debug)]
struct OsFile {
    path: PathBuf,
    file: File,
}

impl Vfs for OsFs {
    fn create(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_error("create", path, e))?;
        Ok(Box::new(OsFile {
            path: path.to_path_buf(),
            file,
        }))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io_error("open for append", path, e))?;
        Ok(Box::new(OsFile {
            path: path.to_path_buf(),
            file,
        }))
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let file = File::open(path).map_err(|e| io_error("open for read", path, e))?;
        Ok(Box::new(OsFile {
            path: path.to_path_buf(),
            file,
        }))
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        fs::read(path).map_err(|e| io_error("read", path, e))
    }

    fn file_len(&self, path: &Path) -> Result<u64> {
        fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| io_error("stat", path, e))
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        path.try_exists().map_err(|e| io_error("stat", path, e))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        fs::rename(from, to).map_err(|e| io_error("rename", from, e))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        fs::remove_file(path).map_err(|e| io_error("remove", path, e))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_error("list directory", dir, e))? {
            let entry = entry.map_err(|e| io_error("list directory", dir, e))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        fs::create_dir_all(dir).map_err(|e| io_error("create directory", dir, e))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        sync_dir(dir)
    }

    fn lock_dir(&self, dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("open lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock::new(dir.to_path_buf(), Box::new(file))),
            Err(TryLockError::WouldBlock) => Err(Error::Locked {
                dir: dir.to_path_buf(),
            }),
            Err(TryLockError::Error(e)) => Err(io_error("lock", &path, e)),
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<()> {
    let d = File::open(dir).map_err(|e| io_error("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| io_error("fsync directory", dir, e))
}

/// Directories cannot be opened as files on Windows; NTFS journals the metadata, so there is
/// nothing to sync.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<()> {
    Ok(())
}

impl VfsFile for OsFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(|e| io_error("append to", &self.path, e))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        read_at(&self.file, offset, buf).map_err(|e| io_error("read", &self.path, e))
    }

    fn sync_data(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| io_error("fdatasync", &self.path, e))
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .map_err(|e| io_error("truncate", &self.path, e))
    }

    fn size(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| io_error("stat", &self.path, e))
    }
}

#[cfg(unix)]
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    loop {
        match file.read_at(buf, offset) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(windows)]
fn read_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::windows::fs::FileExt;
    file.seek_read(buf, offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_of_a_directory_is_refused_until_the_first_drops() {
        let dir = tempfile::tempdir().unwrap();
        let fs = OsFs::new();
        let first = fs.lock_dir(dir.path()).unwrap();
        let second = fs.lock_dir(dir.path());
        assert!(matches!(second, Err(Error::Locked { .. })));
        drop(first);
        assert!(fs.lock_dir(dir.path()).is_ok());
    }

    #[test]
    fn create_refuses_an_existing_file_and_appends_go_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let fs = OsFs::new();
        let p = dir.path().join("f");
        let mut f = fs.create(&p).unwrap();
        f.append(b"abc").unwrap();
        f.sync_data().unwrap();
        assert!(matches!(fs.create(&p), Err(Error::Io { op: "create", .. })));
        let mut g = fs.open_append(&p).unwrap();
        g.append(b"de").unwrap();
        g.set_len(4).unwrap();
        g.append(b"!").unwrap();
        assert_eq!(fs.read_file(&p).unwrap(), b"abcd!");
        let mut buf = [0u8; 8];
        assert_eq!(g.read_at(1, &mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"bcd!");
        assert_eq!(fs.file_len(&p).unwrap(), 5);
        fs.sync_dir(dir.path()).unwrap();
        assert_eq!(fs.list_dir(dir.path()).unwrap(), vec!["f".to_owned()]);
    }
}
