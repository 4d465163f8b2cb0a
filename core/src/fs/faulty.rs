//! [`FaultyFs`]: an in-memory [`Vfs`] that models a power cut and injects I/O faults, so that
//! durable code can be tested at every call site it has.
//!
//! What survives [`FaultyFs::crash`] (see `faulty_state` for the model):
//!
//! ```text
//!  written, not sync_data'd                      lost (crash_tearing: a random prefix stays)
//!  sync_data'd                                   kept
//!  create / rename / remove, parent not synced   undone (a renamed file is back at its old name)
//!  ... then sync_dir(parent)                     kept
//!  a directory renamed (moving a store aside)    moved with everything under it, durably
//!  a failed sync_data                            its dirty bytes read back as zeros after a crash
//!  handles opened before the crash               dead: every call fails with EIO
//! ```
//!
//! Every call on the file system or on an open file is counted, globally and per [`Op`], and
//! logged. A test runs a workload once to count the calls, then for each index `i` injects a
//! [`Fault`] at call `i` and checks what the code under test made of it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::fault::{fault_error, Rule, State};
pub use super::fault::{Fault, Op, Repeat};
use super::faulty_state::Model;
use super::{io_error, DirLock, Vfs, VfsFile};
use crate::error::{Error, Result};

/// An in-memory file system that loses what a power cut would lose and fails the calls a test
/// asks it to fail. Clones share one file system.
#[derive(Clone, Default)]
pub struct FaultyFs {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultyFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.lock();
        f.debug_struct("FaultyFs")
            .field("calls", &s.total)
            .field("files", &s.model.files())
            .finish()
    }
}

impl FaultyFs {
    /// An empty file system with no faults planned.
    pub fn new() -> FaultyFs {
        FaultyFs::default()
    }

    /// An empty file system whose [`Vfs::entropy`] sequence starts from `seed` (a
    /// simulation that seeds it replays exactly, salts and incarnations included).
    pub fn with_seed(seed: u64) -> FaultyFs {
        let fs = FaultyFs::default();
        fs.state.lock().entropy = seed;
        fs
    }

    /// A new, independent file system holding what a power cut now would leave of this one
    /// (this one is untouched): recovering from it shows what a crash would recover.
    pub fn crash_image(&self) -> FaultyFs {
        let s = self.state.lock();
        let mut model = s.model.clone();
        model.crash(None);
        let image = FaultyFs::with_seed(s.entropy ^ 0x5EED_1A6E);
        image.state.lock().model = model;
        image
    }

    /// Damage at rest: flips one bit of a file, in what reads see and in what survives a
    /// crash. Returns false when the file has no byte at `offset`. Counts no call.
    pub fn flip_bit(&self, path: &Path, offset: u64, bit: u8) -> bool {
        self.state.lock().model.flip_bit(path, offset, bit)
    }

    /// Damage at rest: cuts a file to `len` bytes, durably. Counts no call.
    pub fn cut(&self, path: &Path, len: u64) -> bool {
        self.state.lock().model.cut(path, len)
    }

    /// Damage at rest: a file or a whole directory vanishes, durably. Counts no call.
    pub fn erase(&self, path: &Path) -> bool {
        self.state.lock().model.erase(path)
    }

    /// Plans a fault at the `nth` (0-based, counted since creation) call of kind `op`, or of
    /// any kind when `op` is `None`.
    pub fn fail(&self, op: Option<Op>, nth: u64, fault: Fault, repeat: Repeat) {
        self.state.lock().rules.push(Rule {
            op,
            nth,
            fault,
            repeat,
        });
    }

    /// Drops every planned fault.
    pub fn clear_faults(&self) {
        self.state.lock().rules.clear();
    }

    /// Calls made so far, of kind `op` or of any kind.
    pub fn calls(&self, op: Option<Op>) -> u64 {
        let s = self.state.lock();
        match op {
            None => s.total,
            Some(op) => s.per_op.get(&op).copied().unwrap_or(0),
        }
    }

    /// Every call made so far with the path it was made on, in order.
    pub fn call_log(&self) -> Vec<(Op, PathBuf)> {
        self.state.lock().log.clone()
    }

    /// How many injected faults have fired.
    pub fn faults_fired(&self) -> u64 {
        self.state.lock().fired
    }

    /// A power cut: keeps only what was made durable; every open handle dies, every lock goes.
    pub fn crash(&self) {
        self.state.lock().model.crash(None);
    }

    /// A power cut during which the disk got a pseudo-random prefix (chosen by `seed`) of each
    /// file's unsynced appended bytes.
    pub fn crash_tearing(&self, seed: u64) {
        self.state.lock().model.crash(Some(seed));
    }

    /// The live content of a file, without counting a call.
    pub fn peek(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state.lock();
        let ino = s.model.lookup(path).ok()?;
        s.model.data(ino).map(<[u8]>::to_vec)
    }

    /// What a crash now would leave in a file, without counting a call.
    pub fn peek_durable(&self, path: &Path) -> Option<Vec<u8>> {
        self.state.lock().model.durable_data(path)
    }

    /// Every live file, sorted, without counting a call.
    pub fn files(&self) -> Vec<PathBuf> {
        self.state.lock().model.files()
    }

    /// Counts a call, applies a planned fault, else runs `f` on the model.
    fn call<T>(
        &self,
        op: Op,
        what: &'static str,
        path: &Path,
        f: impl FnOnce(&mut Model) -> io::Result<T>,
    ) -> Result<T> {
        let mut s = self.state.lock();
        if let Some(fault) = s.begin(op, path) {
            return Err(io_error(what, path, fault_error(fault)));
        }
        f(&mut s.model).map_err(|e| io_error(what, path, e))
    }

    fn handle(&self, path: &Path, ino: u64, writable: bool) -> Box<dyn VfsFile> {
        let generation = self.state.lock().model.generation;
        Box::new(FaultyFile {
            fs: self.clone(),
            path: path.to_path_buf(),
            ino,
            generation,
            writable,
        })
    }
}

impl Vfs for FaultyFs {
    fn create(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let ino = self.call(Op::Create, "create", path, |m| m.create(path))?;
        Ok(self.handle(path, ino, true))
    }

    fn open_append(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let ino = self.call(Op::OpenAppend, "open for append", path, |m| m.lookup(path))?;
        Ok(self.handle(path, ino, true))
    }

    fn open_read(&self, path: &Path) -> Result<Box<dyn VfsFile>> {
        let ino = self.call(Op::OpenRead, "open for read", path, |m| m.lookup(path))?;
        Ok(self.handle(path, ino, false))
    }

    fn read_file(&self, path: &Path) -> Result<Vec<u8>> {
        self.call(Op::ReadFile, "read", path, |m| {
            let ino = m.lookup(path)?;
            Ok(m.data(ino).map(<[u8]>::to_vec).unwrap_or_default())
        })
    }

    fn file_len(&self, path: &Path) -> Result<u64> {
        self.call(Op::FileLen, "stat", path, |m| {
            let ino = m.lookup(path)?;
            Ok(m.data(ino).map_or(0, |d| d.len() as u64))
        })
    }

    fn exists(&self, path: &Path) -> Result<bool> {
        self.call(Op::Exists, "stat", path, |m| Ok(m.exists(path)))
    }

    fn rename(&self, from: &Path, to: &Path) -> Result<()> {
        self.call(Op::Rename, "rename", from, |m| m.rename(from, to))
    }

    fn remove_file(&self, path: &Path) -> Result<()> {
        self.call(Op::Remove, "remove", path, |m| m.remove(path))
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        self.call(Op::ListDir, "list directory", dir, |m| m.list(dir))
    }

    fn create_dir_all(&self, dir: &Path) -> Result<()> {
        self.call(Op::CreateDir, "create directory", dir, |m| m.mkdir_all(dir))
    }

    fn sync_dir(&self, dir: &Path) -> Result<()> {
        self.call(Op::SyncDir, "fsync directory", dir, |m| m.sync_dir(dir))
    }

    fn entropy(&self) -> u64 {
        // splitmix64: a seeded sequence, so a simulated run replays exactly.
        let mut s = self.state.lock();
        s.entropy = s.entropy.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s.entropy;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn lock_dir(&self, dir: &Path) -> Result<DirLock> {
        match self.call(Op::Lock, "lock", dir, |m| m.lock(dir))? {
            Some(id) => Ok(DirLock::new(
                dir.to_path_buf(),
                Box::new(LockEntry {
                    fs: self.clone(),
                    dir: dir.to_path_buf(),
                    id,
                }),
            )),
            None => Err(Error::Locked {
                dir: dir.to_path_buf(),
            }),
        }
    }
}

struct LockEntry {
    fs: FaultyFs,
    dir: PathBuf,
    id: u64,
}

impl Drop for LockEntry {
    fn drop(&mut self) {
        self.fs.state.lock().model.unlock(&self.dir, self.id);
    }
}

struct FaultyFile {
    fs: FaultyFs,
    path: PathBuf,
    ino: u64,
    generation: u64,
    writable: bool,
}

impl fmt::Debug for FaultyFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyFile")
            .field("path", &self.path)
            .field("ino", &self.ino)
            .finish()
    }
}

impl FaultyFile {
    /// Counts the call, checks the handle survived every crash and may write, then runs `f`
    /// (which gets the planned fault, if any, to apply itself).
    fn call<T>(
        &self,
        op: Op,
        what: &'static str,
        write: bool,
        f: impl FnOnce(&mut Model, Option<Fault>) -> io::Result<T>,
    ) -> Result<T> {
        let mut s = self.fs.state.lock();
        let fault = s.begin(op, &self.path);
        let result = if s.model.generation != self.generation {
            Err(io::Error::other(
                "stale handle: the file system crashed since it was opened",
            ))
        } else if write && !self.writable {
            Err(io::Error::from_raw_os_error(9))
        } else {
            f(&mut s.model, fault)
        };
        result.map_err(|e| io_error(what, &self.path, e))
    }
}

impl VfsFile for FaultyFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, buf: &[u8]) -> Result<()> {
        let ino = self.ino;
        self.call(Op::Append, "append to", true, |m, fault| match fault {
            None => m.append(ino, buf).map(drop),
            Some(f @ (Fault::TornThenNoSpace | Fault::TornThenEio)) => {
                m.append(ino, &buf[..buf.len() / 2])?;
                Err(fault_error(f))
            }
            Some(f) => Err(fault_error(f)),
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let ino = self.ino;
        self.call(Op::ReadAt, "read", false, |m, fault| match fault {
            None => m.read_at(ino, offset, buf),
            Some(f) => Err(fault_error(f)),
        })
    }

    fn sync_data(&mut self) -> Result<()> {
        let ino = self.ino;
        self.call(Op::SyncData, "fdatasync", false, |m, fault| match fault {
            None => m.sync(ino),
            Some(f) => {
                m.fail_sync(ino)?;
                Err(fault_error(f))
            }
        })
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        let ino = self.ino;
        self.call(Op::SetLen, "truncate", true, |m, fault| match fault {
            None => m.set_len(ino, len),
            Some(f) => Err(fault_error(f)),
        })
    }

    fn size(&self) -> Result<u64> {
        let ino = self.ino;
        self.call(Op::Size, "stat", false, |m, fault| match fault {
            None => Ok(m.data(ino).map_or(0, |d| d.len() as u64)),
            Some(f) => Err(fault_error(f)),
        })
    }
}
