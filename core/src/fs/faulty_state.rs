//! The model behind [`FaultyFs`](super::FaultyFs): what a process sees now, and what a power
//! cut would leave. Owns no on-disk format; it *is* the disk.
//!
//! ```text
//!  live namespace     path ─► Dir | File(ino)      what list/open see now
//!  durable namespace  path ─► Dir | File(ino)      copied per directory by sync_dir(parent)
//!  inode              data    (what reads see)
//!                     synced  (what survives: copied from data by sync_data)
//!                     dirty_from: lowest offset changed since the last sync
//! ```
//!
//! `crash` replaces the live namespace by the durable one (dropping entries whose parent
//! directories were never made durable) and every file's data by its synced data. The root
//! (`/` or the empty relative root) always exists.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Node {
    Dir,
    File(u64),
}

#[derive(Debug, Default, Clone)]
struct Inode {
    data: Vec<u8>,
    synced: Vec<u8>,
    dirty_from: Option<usize>,
}

impl Inode {
    fn touch(&mut self, from: usize) {
        self.dirty_from = Some(self.dirty_from.map_or(from, |d| d.min(from)));
    }
}

/// The in-memory disk. Methods return raw `io::Error`s; the caller names the operation.
#[derive(Debug, Default, Clone)]
pub(super) struct Model {
    /// Bumped by every crash; handles opened before it are dead.
    pub generation: u64,
    live: BTreeMap<PathBuf, Node>,
    durable: BTreeMap<PathBuf, Node>,
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    locks: HashMap<PathBuf, u64>,
    next_lock: u64,
}

fn not_found(p: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} not found", p.display()),
    )
}

fn is_root(p: &Path) -> bool {
    p.as_os_str().is_empty() || p.parent().is_none()
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new(""))
}

impl Model {
    fn is_dir(&self, p: &Path) -> bool {
        is_root(p) || self.live.get(p) == Some(&Node::Dir)
    }

    fn need_dir(&self, p: &Path) -> io::Result<()> {
        if self.is_dir(p) {
            Ok(())
        } else {
            Err(not_found(p))
        }
    }

    /// The inode of the file at `path`.
    pub fn lookup(&self, path: &Path) -> io::Result<u64> {
        match self.live.get(path) {
            Some(Node::File(ino)) => Ok(*ino),
            Some(Node::Dir) => Err(io::Error::other("is a directory")),
            None => Err(not_found(path)),
        }
    }

    pub fn exists(&self, path: &Path) -> bool {
        is_root(path) || self.live.contains_key(path)
    }

    pub fn create(&mut self, path: &Path) -> io::Result<u64> {
        self.need_dir(parent(path))?;
        if self.exists(path) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        self.next_ino += 1;
        let ino = self.next_ino;
        self.inodes.insert(ino, Inode::default());
        self.live.insert(path.to_path_buf(), Node::File(ino));
        Ok(ino)
    }

    fn inode(&mut self, ino: u64) -> io::Result<&mut Inode> {
        self.inodes
            .get_mut(&ino)
            .ok_or_else(|| io::Error::other("inode vanished"))
    }

    /// Appends `buf`; returns the new length.
    pub fn append(&mut self, ino: u64, buf: &[u8]) -> io::Result<u64> {
        let inode = self.inode(ino)?;
        let from = inode.data.len();
        inode.data.extend_from_slice(buf);
        inode.touch(from);
        Ok(inode.data.len() as u64)
    }

    pub fn read_at(&mut self, ino: u64, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let inode = self.inode(ino)?;
        let len = inode.data.len() as u64;
        if offset >= len {
            return Ok(0);
        }
        let start = offset as usize;
        let n = buf.len().min(inode.data.len() - start);
        buf[..n].copy_from_slice(&inode.data[start..start + n]);
        Ok(n)
    }

    pub fn data(&self, ino: u64) -> Option<&[u8]> {
        self.inodes.get(&ino).map(|i| i.data.as_slice())
    }

    pub fn sync(&mut self, ino: u64) -> io::Result<()> {
        let inode = self.inode(ino)?;
        if let Some(from) = inode.dirty_from.take() {
            inode.synced.resize(from, 0);
            inode.synced.extend_from_slice(&inode.data[from..]);
        }
        Ok(())
    }

    /// A failed fdatasync as Linux does it: the dirty pages are marked clean without reaching
    /// the disk, so a later sync "succeeds" without them. What was lost reads back as zeros
    /// after a crash.
    pub fn fail_sync(&mut self, ino: u64) -> io::Result<()> {
        let inode = self.inode(ino)?;
        if let Some(from) = inode.dirty_from.take() {
            let len = inode.data.len();
            inode.synced.resize(from, 0);
            inode.synced.resize(len, 0);
        }
        Ok(())
    }

    pub fn set_len(&mut self, ino: u64, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        let inode = self.inode(ino)?;
        let from = inode.data.len().min(len);
        inode.data.resize(len, 0);
        inode.touch(from);
        Ok(())
    }

    pub fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        if self.live.get(from) == Some(&Node::Dir) {
            return self.rename_dir(from, to);
        }
        let ino = self.lookup(from)?;
        self.need_dir(parent(to))?;
        if self.is_dir(to) {
            return Err(io::Error::other("rename target is a directory"));
        }
        self.live.remove(from);
        self.live.insert(to.to_path_buf(), Node::File(ino));
        Ok(())
    }

    /// Renames a directory with everything under it. Simplification: the move is durable at
    /// once (session-ha renames a directory only to move a damaged store aside, and syncs
    /// the parent right after).
    fn rename_dir(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        self.need_dir(parent(to))?;
        if self.exists(to) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        for map in [&mut self.live, &mut self.durable] {
            let moved: Vec<(PathBuf, Node)> = map
                .iter()
                .filter(|(p, _)| p.starts_with(from))
                .map(|(p, n)| (p.clone(), *n))
                .collect();
            for (p, n) in moved {
                map.remove(&p);
                let new = match p.strip_prefix(from) {
                    Ok(rest) if !rest.as_os_str().is_empty() => to.join(rest),
                    _ => to.to_path_buf(),
                };
                map.insert(new, n);
            }
        }
        Ok(())
    }

    pub fn remove(&mut self, path: &Path) -> io::Result<()> {
        self.lookup(path)?;
        self.live.remove(path);
        Ok(())
    }

    pub fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.need_dir(dir)?;
        let mut names: Vec<String> = self
            .live
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn mkdir_all(&mut self, dir: &Path) -> io::Result<()> {
        let mut chain: Vec<&Path> = dir.ancestors().filter(|a| !is_root(a)).collect();
        chain.reverse();
        for a in chain {
            match self.live.get(a) {
                Some(Node::Dir) => {}
                Some(Node::File(_)) => return Err(io::Error::other("a file is in the way")),
                None => {
                    self.live.insert(a.to_path_buf(), Node::Dir);
                }
            }
        }
        Ok(())
    }

    pub fn sync_dir(&mut self, dir: &Path) -> io::Result<()> {
        self.need_dir(dir)?;
        self.durable.retain(|p, _| parent(p) != dir);
        for (p, n) in &self.live {
            if parent(p) == dir {
                self.durable.insert(p.clone(), *n);
            }
        }
        Ok(())
    }

    /// Takes the lock of `dir`; `None` when it is held.
    pub fn lock(&mut self, dir: &Path) -> io::Result<Option<u64>> {
        self.need_dir(dir)?;
        if self.locks.contains_key(dir) {
            return Ok(None);
        }
        self.next_lock += 1;
        self.locks.insert(dir.to_path_buf(), self.next_lock);
        Ok(Some(self.next_lock))
    }

    pub fn unlock(&mut self, dir: &Path, id: u64) {
        if self.locks.get(dir) == Some(&id) {
            self.locks.remove(dir);
        }
    }

    /// What a read after a crash would return for `path`, if anything.
    pub fn durable_data(&self, path: &Path) -> Option<Vec<u8>> {
        match self.durable.get(path) {
            Some(Node::File(ino)) if self.durable_ancestors(path) => {
                self.inodes.get(ino).map(|i| i.synced.clone())
            }
            _ => None,
        }
    }

    fn durable_ancestors(&self, p: &Path) -> bool {
        p.ancestors()
            .skip(1)
            .filter(|a| !is_root(a))
            .all(|a| self.durable.get(a) == Some(&Node::Dir))
    }

    /// All live files, sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        self.live
            .iter()
            .filter(|(_, n)| matches!(n, Node::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Damage at rest: flips bit `bit` of byte `offset` of the file at `path`, in what reads
    /// see and in what survives a crash alike. `false` when there is no such byte.
    pub fn flip_bit(&mut self, path: &Path, offset: u64, bit: u8) -> bool {
        let Ok(ino) = self.lookup(path) else {
            return false;
        };
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return false;
        };
        let at = offset as usize;
        let mask = 1u8 << (bit % 8);
        let mut hit = false;
        for buf in [&mut inode.data, &mut inode.synced] {
            if let Some(b) = buf.get_mut(at) {
                *b ^= mask;
                hit = true;
            }
        }
        hit
    }

    /// Damage at rest: cuts the file at `path` to `len` bytes, durably.
    pub fn cut(&mut self, path: &Path, len: u64) -> bool {
        let Ok(ino) = self.lookup(path) else {
            return false;
        };
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return false;
        };
        let len = len as usize;
        inode.data.truncate(len);
        inode.synced.truncate(len);
        if inode.dirty_from.is_some_and(|d| d >= len) {
            inode.dirty_from = None;
        }
        true
    }

    /// Damage at rest: the file (or the directory and everything under it) at `path` is
    /// gone, now and after a crash.
    pub fn erase(&mut self, path: &Path) -> bool {
        let before = self.live.len() + self.durable.len();
        self.live.retain(|p, _| !p.starts_with(path));
        self.durable.retain(|p, _| !p.starts_with(path));
        before != self.live.len() + self.durable.len()
    }

    /// A power cut. With `tear_seed`, each file whose unsynced change is a pure append keeps a
    /// pseudo-random prefix of the appended bytes (the disk got part of them).
    pub fn crash(&mut self, tear_seed: Option<u64>) {
        self.generation += 1;
        self.locks.clear();
        let survivors: BTreeMap<PathBuf, Node> = self
            .durable
            .iter()
            .filter(|(p, _)| self.durable_ancestors(p))
            .map(|(p, n)| (p.clone(), *n))
            .collect();
        let referenced: HashSet<u64> = survivors
            .values()
            .filter_map(|n| match n {
                Node::File(ino) => Some(*ino),
                Node::Dir => None,
            })
            .collect();
        self.inodes.retain(|ino, _| referenced.contains(ino));
        for (ino, inode) in self.inodes.iter_mut() {
            let mut kept = std::mem::take(&mut inode.synced);
            if let (Some(seed), Some(from)) = (tear_seed, inode.dirty_from) {
                if from == kept.len() && inode.data.len() > from {
                    let extra = inode.data.len() - from;
                    let roll = xxh3_64(&[seed.to_le_bytes(), ino.to_le_bytes()].concat());
                    let keep = (roll % (extra as u64 + 1)) as usize;
                    kept.extend_from_slice(&inode.data[from..from + keep]);
                }
            }
            inode.data = kept.clone();
            inode.synced = kept;
            inode.dirty_from = None;
        }
        self.live = survivors.clone();
        self.durable = survivors;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_directory_takes_its_files_along_and_stays_renamed_after_a_crash() {
        let mut m = Model::default();
        m.mkdir_all(Path::new("/d/a")).unwrap();
        m.sync_dir(Path::new("/")).unwrap();
        m.sync_dir(Path::new("/d")).unwrap();
        let ino = m.create(Path::new("/d/a/f")).unwrap();
        m.append(ino, b"kept").unwrap();
        m.sync(ino).unwrap();
        m.sync_dir(Path::new("/d/a")).unwrap();
        m.rename(Path::new("/d/a"), Path::new("/d/b")).unwrap();
        assert!(!m.exists(Path::new("/d/a")));
        m.crash(None);
        let ino = m.lookup(Path::new("/d/b/f")).unwrap();
        assert_eq!(m.data(ino), Some(&b"kept"[..]));
        assert!(!m.exists(Path::new("/d/a/f")));
    }
}
