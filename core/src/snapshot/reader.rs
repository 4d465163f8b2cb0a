//! Reading a snapshot file with every checksum verified: the header and footer first (so a
//! truncated or foreign file is refused before any entry), then chunk by chunk, so memory
//! stays at one chunk plus one entry whatever the file's size. Any failure is
//! [`Error::Corrupt`] with the file and the offset of the damaged part.
//!
//! An encrypted file (`sealed.rs`) opens without its key (header, cipher block, footer and
//! length are checked, and [`SnapshotReader::check_checksums`] checks every chunk's crc);
//! reading entries then needs the key: [`Error::MissingKey`] without it, and a chunk whose
//! crc verifies but whose tag fails is [`Error::Tampered`].

use std::path::{Path, PathBuf};

use super::format::{
    check_chunk_crc, decode_chunk_header_sized, decode_entry, decompress_chunk, Footer, Header,
    SnapEntry, SnapshotMeta, CHUNK_HEADER_LEN, FLAG_ENCRYPTED, FOOTER_LEN, HEADER_LEN, MAX_ENTRY,
};
use super::sealed::unseal_chunk;
use crate::crypto::{CipherBlock, FileCipher, KeyId, KeyRing, CIPHER_BLOCK_LEN, TAG_LEN};
use crate::error::{DecodeError, Error, Result};
use crate::fs::{Vfs, VfsFile};

/// Streams the verified entries of a snapshot file.
pub struct SnapshotReader {
    path: PathBuf,
    file: Box<dyn VfsFile>,
    header: Header,
    footer: Footer,
    offset: u64,
    body_end: u64,
    raw: Vec<u8>,
    raw_pos: usize,
    chunks_read: u32,
    entries_read: u64,
    crcs: crc32fast::Hasher,
    meta: Option<SnapshotMeta>,
    /// The cipher block of an encrypted file.
    block: Option<CipherBlock>,
    /// Its cipher, when the key is configured.
    cipher: Option<FileCipher>,
    /// The key ids configured (for a [`Error::MissingKey`]).
    configured: Vec<KeyId>,
}

impl std::fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

fn corrupt(path: &Path, offset: u64, source: DecodeError) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        source,
    }
}

fn read_exact(file: &dyn VfsFile, offset: u64, buf: &mut [u8]) -> Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let n = file.read_at(offset + done as u64, &mut buf[done..])?;
        if n == 0 {
            break;
        }
        done += n;
    }
    Ok(done)
}

impl SnapshotReader {
    /// Opens `path` and verifies its header, footer and length (a plain file, or an
    /// encrypted one to be checked by checksum only).
    ///
    /// # Errors
    /// [`Error::Corrupt`] or an I/O error.
    pub fn open(fs: &dyn Vfs, path: &Path) -> Result<SnapshotReader> {
        SnapshotReader::open_with_keys(fs, path, None)
    }

    /// [`SnapshotReader::open`], with the keys to decrypt an encrypted file. A key the file
    /// needs and `keys` lacks is reported when entries are read.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or an I/O error.
    pub fn open_with_keys(
        fs: &dyn Vfs,
        path: &Path,
        keys: Option<&KeyRing>,
    ) -> Result<SnapshotReader> {
        let file = fs.open_read(path)?;
        let len = file.size()?;
        let mut hb = [0u8; HEADER_LEN + CIPHER_BLOCK_LEN];
        let got = read_exact(file.as_ref(), 0, &mut hb)?;
        let (header, flags) = Header::decode_with_flags(&hb[..got.min(HEADER_LEN)])
            .map_err(|e| corrupt(path, 0, e))?;
        let block = if flags & FLAG_ENCRYPTED != 0 {
            let b = CipherBlock::decode(&hb[..HEADER_LEN], &hb[HEADER_LEN..got])
                .map_err(|e| corrupt(path, HEADER_LEN as u64, e))?;
            Some(b)
        } else {
            None
        };
        let head_len = HEADER_LEN + block.map_or(0, |_| CIPHER_BLOCK_LEN);
        let cipher = block.and_then(|b| FileCipher::open(keys, b, path).ok());
        let min = (head_len + FOOTER_LEN) as u64;
        if len < min {
            return Err(corrupt(
                path,
                len,
                DecodeError::Truncated {
                    needed: min,
                    have: len,
                },
            ));
        }
        let mut fb = [0u8; FOOTER_LEN];
        read_exact(file.as_ref(), len - FOOTER_LEN as u64, &mut fb)?;
        let footer = Footer::decode(&fb).map_err(|e| corrupt(path, len - FOOTER_LEN as u64, e))?;
        if min.checked_add(footer.body_len) != Some(len) {
            let needed = min.saturating_add(footer.body_len);
            return Err(corrupt(
                path,
                len,
                DecodeError::Truncated { needed, have: len },
            ));
        }
        Ok(SnapshotReader {
            path: path.to_path_buf(),
            file,
            header,
            footer,
            offset: head_len as u64,
            body_end: len - FOOTER_LEN as u64,
            raw: Vec::new(),
            raw_pos: 0,
            chunks_read: 0,
            entries_read: 0,
            crcs: crc32fast::Hasher::new(),
            meta: None,
            block,
            cipher,
            configured: keys.map(KeyRing::ids).unwrap_or_default(),
        })
    }

    /// The key the file is encrypted under, when it is.
    pub fn key_id(&self) -> Option<KeyId> {
        self.block.map(|b| b.key_id)
    }

    /// Whether its entries can be read: a plain file, or an encrypted one whose key is
    /// configured.
    pub fn can_decrypt(&self) -> bool {
        self.block.is_none() || self.cipher.is_some()
    }

    /// The verified header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The verified footer.
    pub fn footer(&self) -> Footer {
        self.footer
    }

    /// The replica meta entry, once read (it is the last entry).
    pub fn meta(&self) -> Option<&SnapshotMeta> {
        self.meta.as_ref()
    }

    /// Takes the meta entry out, once read.
    pub(super) fn take_meta(&mut self) -> Option<SnapshotMeta> {
        self.meta.take()
    }

    /// Reads the next chunk into the raw buffer; false at the end of the body.
    fn load_chunk(&mut self) -> Result<bool> {
        if self.offset >= self.body_end {
            return Ok(false);
        }
        let at = self.offset;
        let mut hb = [0u8; CHUNK_HEADER_LEN];
        if self.body_end - at < CHUNK_HEADER_LEN as u64 {
            let have = self.body_end - at;
            return Err(corrupt(
                &self.path,
                at,
                DecodeError::Truncated {
                    needed: CHUNK_HEADER_LEN as u64,
                    have,
                },
            ));
        }
        read_exact(self.file.as_ref(), at, &mut hb)?;
        let tag = self.block.map_or(0, |_| TAG_LEN);
        let (raw_len, comp_len, crc) =
            decode_chunk_header_sized(&hb, tag).map_err(|e| corrupt(&self.path, at, e))?;
        let start = at + CHUNK_HEADER_LEN as u64;
        if self.body_end - start < comp_len as u64 {
            let have = self.body_end - start;
            return Err(corrupt(
                &self.path,
                at,
                DecodeError::Truncated {
                    needed: comp_len as u64,
                    have,
                },
            ));
        }
        let mut payload = vec![0u8; comp_len];
        read_exact(self.file.as_ref(), start, &mut payload)?;
        check_chunk_crc(&hb, &payload).map_err(|e| corrupt(&self.path, at, e))?;
        if let Some(block) = self.block {
            let Some(cipher) = &self.cipher else {
                return Err(Error::MissingKey {
                    path: self.path.clone(),
                    key_id: block.key_id,
                    configured: self.configured.clone(),
                });
            };
            let last = self.chunks_read + 1 == self.footer.chunks;
            payload =
                unseal_chunk(cipher, self.chunks_read, last, &hb, &payload).ok_or_else(|| {
                    Error::Tampered {
                        path: self.path.clone(),
                        offset: at,
                        key_id: block.key_id,
                    }
                })?;
        }
        let raw = decompress_chunk(&payload, raw_len).map_err(|e| corrupt(&self.path, at, e))?;
        self.crcs.update(&crc.to_le_bytes());
        self.chunks_read += 1;
        self.offset = start + comp_len as u64;
        self.raw.drain(..self.raw_pos);
        self.raw_pos = 0;
        self.raw.extend_from_slice(&raw);
        Ok(true)
    }

    fn need(&mut self, n: usize) -> Result<bool> {
        while self.raw.len() - self.raw_pos < n {
            if !self.load_chunk()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next entry, or `None` after the last one (when every count and checksum of the
    /// footer has been checked).
    ///
    /// # Errors
    /// [`Error::Corrupt`] or an I/O error.
    pub fn next_entry(&mut self) -> Result<Option<SnapEntry>> {
        let Some(len) = self.next_body_len()? else {
            return self.finish().map(|()| None);
        };
        let body = &self.raw[self.raw_pos + 4..self.raw_pos + 4 + len];
        let entry = decode_entry(self.header.version, body)
            .map_err(|e| corrupt(&self.path, self.offset, e))?;
        self.raw_pos += 4 + len;
        self.entries_read += 1;
        if self.meta.is_some() {
            let e = DecodeError::Malformed("entry after the meta entry".into());
            return Err(corrupt(&self.path, self.offset, e));
        }
        if let SnapEntry::Meta(m) = &entry {
            self.meta = Some(m.clone());
        }
        Ok(Some(entry))
    }

    /// Checks every chunk, every entry's framing and every footer count and checksum without
    /// decoding the entries (only the last, which must be the meta entry); returns how many
    /// entries the file holds. What `verify` uses: the checksums already guarantee the bytes
    /// are those written.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or an I/O error.
    pub fn check_all(&mut self) -> Result<u64> {
        let mut last: Option<(Vec<u8>, u64)> = None;
        while let Some(len) = self.next_body_len()? {
            let body = &self.raw[self.raw_pos + 4..self.raw_pos + 4 + len];
            match &mut last {
                Some((buf, at)) => {
                    buf.clear();
                    buf.extend_from_slice(body);
                    *at = self.offset;
                }
                None => last = Some((body.to_vec(), self.offset)),
            }
            self.raw_pos += 4 + len;
            self.entries_read += 1;
        }
        if let Some((body, at)) = last {
            match decode_entry(self.header.version, &body) {
                Ok(SnapEntry::Meta(m)) => self.meta = Some(m),
                Ok(_) => {}
                Err(e) => return Err(corrupt(&self.path, at, e)),
            }
        }
        self.finish()?;
        Ok(self.entries_read)
    }

    /// Checks every chunk's checksum and the footer's chunk count and checksum, without
    /// decrypting or decoding anything: what can be verified of an encrypted file without
    /// its key (damage shows; the entries are not read).
    ///
    /// # Errors
    /// [`Error::Corrupt`] or an I/O error.
    pub fn check_checksums(&mut self) -> Result<()> {
        let tag = self.block.map_or(0, |_| TAG_LEN);
        let mut crcs = crc32fast::Hasher::new();
        let mut chunks = 0u32;
        let mut at = self.offset;
        while at < self.body_end {
            let mut hb = [0u8; CHUNK_HEADER_LEN];
            let short = |needed: u64, have: u64| DecodeError::Truncated { needed, have };
            if self.body_end - at < CHUNK_HEADER_LEN as u64 {
                let e = short(CHUNK_HEADER_LEN as u64, self.body_end - at);
                return Err(corrupt(&self.path, at, e));
            }
            read_exact(self.file.as_ref(), at, &mut hb)?;
            let (_, comp_len, crc) =
                decode_chunk_header_sized(&hb, tag).map_err(|e| corrupt(&self.path, at, e))?;
            let start = at + CHUNK_HEADER_LEN as u64;
            if self.body_end - start < comp_len as u64 {
                let e = short(comp_len as u64, self.body_end - start);
                return Err(corrupt(&self.path, at, e));
            }
            let mut payload = vec![0u8; comp_len];
            read_exact(self.file.as_ref(), start, &mut payload)?;
            check_chunk_crc(&hb, &payload).map_err(|e| corrupt(&self.path, at, e))?;
            crcs.update(&crc.to_le_bytes());
            chunks += 1;
            at = start + comp_len as u64;
        }
        let end = self.body_end;
        if chunks != self.footer.chunks {
            let why = format!(
                "footer promises {} chunks, file holds {chunks}",
                self.footer.chunks
            );
            return Err(corrupt(&self.path, end, DecodeError::Malformed(why)));
        }
        let actual = crcs.finalize();
        if actual != self.footer.chunks_crc {
            let e = DecodeError::ChecksumMismatch {
                expected: self.footer.chunks_crc,
                actual,
            };
            return Err(corrupt(&self.path, end, e));
        }
        Ok(())
    }

    /// The length of the next entry's body, once it is whole in the buffer; `None` at the end.
    fn next_body_len(&mut self) -> Result<Option<usize>> {
        if !self.need(4)? {
            return Ok(None);
        }
        let len = super::format::u32_at(&self.raw, self.raw_pos) as usize;
        if len > MAX_ENTRY {
            let e = DecodeError::TooLarge {
                len: len as u64,
                max: MAX_ENTRY as u64,
            };
            return Err(corrupt(&self.path, self.offset, e));
        }
        if !self.need(4 + len)? {
            let e = DecodeError::Truncated {
                needed: len as u64,
                have: (self.raw.len() - self.raw_pos - 4) as u64,
            };
            return Err(corrupt(&self.path, self.offset, e));
        }
        Ok(Some(len))
    }

    fn finish(&mut self) -> Result<()> {
        let at = self.body_end;
        let bad = |why: String| corrupt(&self.path, at, DecodeError::Malformed(why));
        if self.raw.len() != self.raw_pos {
            return Err(bad(format!(
                "{} stray bytes after the last entry",
                self.raw.len() - self.raw_pos
            )));
        }
        if self.chunks_read != self.footer.chunks || self.entries_read != self.footer.entries {
            return Err(bad(format!(
                "footer promises {} chunks and {} entries, file holds {} and {}",
                self.footer.chunks, self.footer.entries, self.chunks_read, self.entries_read
            )));
        }
        let actual = self.crcs.clone().finalize();
        if actual != self.footer.chunks_crc {
            let e = DecodeError::ChecksumMismatch {
                expected: self.footer.chunks_crc,
                actual,
            };
            return Err(corrupt(&self.path, at, e));
        }
        if self.meta.is_none() {
            return Err(bad("no meta entry".into()));
        }
        Ok(())
    }
}
