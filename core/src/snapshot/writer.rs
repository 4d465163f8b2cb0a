//! Writing a snapshot file: entries are streamed into lz4 chunks of at most 1 MiB as they
//! come, into `<name>.tmp`; `finish` appends the footer, fsyncs the file, renames it into
//! place and fsyncs the directory, so a snapshot either exists whole and durable or not at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{encode_chunk, Footer, Header, SnapEntry, HEADER_LEN, MAX_CHUNK};
use crate::codec;
use crate::error::Result;
use crate::fs::{Vfs, VfsFile};

/// A snapshot file in place: its name in the directory and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Entries written.
    pub entries: u64,
}

/// Streams entries into a new snapshot file.
pub struct SnapshotWriter {
    fs: Arc<dyn Vfs>,
    dir: PathBuf,
    name: String,
    tmp: PathBuf,
    file: Box<dyn VfsFile>,
    pending: Vec<u8>,
    footer: Footer,
    crcs: crc32fast::Hasher,
    unsynced: u64,
}

/// Bytes written between two fsyncs of a snapshot file.
const SYNC_EVERY: u64 = 8 << 20;

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("tmp", &self.tmp)
            .field("footer", &self.footer)
            .finish()
    }
}

impl SnapshotWriter {
    /// Starts `dir/name` (as `dir/name.tmp`, replacing a stale one) with `header`.
    ///
    /// # Errors
    /// I/O errors ([`crate::Error::Io`], [`crate::Error::NoSpace`]).
    pub fn create(
        fs: Arc<dyn Vfs>,
        dir: &Path,
        name: &str,
        header: Header,
    ) -> Result<SnapshotWriter> {
        let tmp = dir.join(format!("{name}.tmp"));
        if fs.exists(&tmp)? {
            fs.remove_file(&tmp)?;
        }
        let mut file = fs.create(&tmp)?;
        file.append(&header.encode())?;
        Ok(SnapshotWriter {
            fs,
            dir: dir.to_path_buf(),
            name: name.to_string(),
            tmp,
            file,
            pending: Vec::with_capacity(MAX_CHUNK),
            footer: Footer {
                chunks: 0,
                entries: 0,
                body_len: 0,
                chunks_crc: 0,
            },
            crcs: crc32fast::Hasher::new(),
            unsynced: 0,
        })
    }

    /// Appends one entry.
    ///
    /// # Errors
    /// I/O errors.
    pub fn push(&mut self, entry: &SnapEntry) -> Result<()> {
        let body = codec::to_bytes(entry);
        self.pending
            .extend_from_slice(&(body.len() as u32).to_le_bytes());
        self.pending.extend_from_slice(&body);
        self.footer.entries += 1;
        while self.pending.len() >= MAX_CHUNK {
            let rest = self.pending.split_off(MAX_CHUNK);
            let chunk = std::mem::replace(&mut self.pending, rest);
            self.write_chunk(&chunk)?;
        }
        Ok(())
    }

    fn write_chunk(&mut self, raw: &[u8]) -> Result<()> {
        let (bytes, crc) = encode_chunk(raw);
        self.file.append(&bytes)?;
        self.unsynced += bytes.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            // Flush as we go: one fsync of a whole large file at the end would hold the disk
            // (and the WAL's fdatasync behind it) for as long as it takes to write it all.
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        self.crcs.update(&crc.to_le_bytes());
        self.footer.chunks += 1;
        self.footer.body_len += bytes.len() as u64;
        Ok(())
    }

    /// Completes the file: last chunk, footer, fsync, rename into place, directory fsync.
    ///
    /// # Errors
    /// I/O errors; the temporary file is then left behind (removed by the next attempt).
    pub fn finish(mut self) -> Result<Written> {
        if !self.pending.is_empty() {
            let chunk = std::mem::take(&mut self.pending);
            self.write_chunk(&chunk)?;
        }
        self.footer.chunks_crc = self.crcs.clone().finalize();
        self.file.append(&self.footer.encode())?;
        self.file.sync_data()?;
        let path = self.dir.join(&self.name);
        self.fs.rename(&self.tmp, &path)?;
        self.fs.sync_dir(&self.dir)?;
        let bytes = (HEADER_LEN + super::format::FOOTER_LEN) as u64 + self.footer.body_len;
        Ok(Written {
            name: self.name,
            bytes,
            entries: self.footer.entries,
        })
    }
}
