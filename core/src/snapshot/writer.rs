//! Writing a snapshot file: entries are streamed into lz4 chunks of at most 1 MiB as they
//! come, into `<name>.tmp`; `finish` appends the footer, fsyncs the file, renames it into
//! place and fsyncs the directory, so a snapshot either exists whole and durable or not at all.
//! With a key ring ([`SnapshotWriter::create_with_keys`]) the file is encrypted under its
//! current key with a fresh salt (`sealed.rs`); the last chunk is held back until `finish`,
//! which seals it as the last.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{encode_chunk, Footer, Header, SnapEntry, FLAG_ENCRYPTED, MAX_CHUNK};
use super::sealed::seal_chunk;
use crate::codec;
use crate::crypto::{FileCipher, KeyRing};
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
    cipher: Option<FileCipher>,
    /// Bytes of header (and cipher block).
    head_len: u64,
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
        SnapshotWriter::create_with_keys(fs, dir, name, header, None)
    }

    /// [`SnapshotWriter::create`], encrypting the file under the current key of `keys` when
    /// given (a fresh salt, so a new file key, at every call).
    ///
    /// # Errors
    /// As [`SnapshotWriter::create`].
    pub fn create_with_keys(
        fs: Arc<dyn Vfs>,
        dir: &Path,
        name: &str,
        header: Header,
        keys: Option<&KeyRing>,
    ) -> Result<SnapshotWriter> {
        let tmp = dir.join(format!("{name}.tmp"));
        if fs.exists(&tmp)? {
            fs.remove_file(&tmp)?;
        }
        let cipher = keys.map(|k| FileCipher::create(k, fs.as_ref()));
        let mut head = Vec::with_capacity(64);
        match &cipher {
            None => head.extend_from_slice(&header.encode()),
            Some(c) => {
                let h = header.encode_with_flags(FLAG_ENCRYPTED);
                head.extend_from_slice(&h);
                head.extend_from_slice(&c.block().encode(&h));
            }
        }
        let mut file = fs.create(&tmp)?;
        file.append(&head)?;
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
            cipher,
            head_len: head.len() as u64,
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
        // Encrypted: a full chunk is written only once more follows, so that `finish` always
        // has the last one to seal as such.
        let full = if self.cipher.is_some() {
            MAX_CHUNK + 1
        } else {
            MAX_CHUNK
        };
        while self.pending.len() >= full {
            let rest = self.pending.split_off(MAX_CHUNK);
            let chunk = std::mem::replace(&mut self.pending, rest);
            self.write_chunk(&chunk, false)?;
        }
        Ok(())
    }

    fn write_chunk(&mut self, raw: &[u8], last: bool) -> Result<()> {
        let (bytes, crc) = match &self.cipher {
            None => encode_chunk(raw),
            Some(c) => seal_chunk(c, self.footer.chunks, last, raw),
        };
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
            self.write_chunk(&chunk, true)?;
        }
        self.footer.chunks_crc = self.crcs.clone().finalize();
        self.file.append(&self.footer.encode())?;
        self.file.sync_data()?;
        let path = self.dir.join(&self.name);
        self.fs.rename(&self.tmp, &path)?;
        self.fs.sync_dir(&self.dir)?;
        let bytes = self.head_len + super::format::FOOTER_LEN as u64 + self.footer.body_len;
        Ok(Written {
            name: self.name,
            bytes,
            entries: self.footer.entries,
        })
    }
}
