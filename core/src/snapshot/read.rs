//! Reading a whole snapshot file in one call: [`read_snapshot`] (plain files),
//! [`read_snapshot_with_keys`] (files that may be encrypted) and [`read_snapshot_pipelined`]
//! (recovery's, decoding on a second thread), all over a [`SnapshotReader`].

use std::path::Path;

use super::format::{Header, SnapEntry, SnapshotMeta};
use super::reader::SnapshotReader;
use crate::crypto::KeyRing;
use crate::error::{DecodeError, Error, Result};
use crate::fs::Vfs;

fn corrupt(path: &Path, offset: u64, source: DecodeError) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        offset,
        source,
    }
}

/// Reads and verifies a whole snapshot, calling `each` for every session entry; returns the
/// header and the meta entry.
///
/// # Errors
/// [`Error::Corrupt`] or an I/O error. Entries already passed to `each` may come from a file
/// that turns out to be corrupt further on: callers apply them to a scratch state.
pub fn read_snapshot(
    fs: &dyn Vfs,
    path: &Path,
    each: impl FnMut(SnapEntry),
) -> Result<(Header, SnapshotMeta)> {
    read_snapshot_with_keys(fs, path, None, each)
}

/// [`read_snapshot`] of a file that may be encrypted under a key of `keys`.
///
/// # Errors
/// As [`read_snapshot`]; [`Error::MissingKey`] and [`Error::Tampered`] for an encrypted file.
pub fn read_snapshot_with_keys(
    fs: &dyn Vfs,
    path: &Path,
    keys: Option<&KeyRing>,
    mut each: impl FnMut(SnapEntry),
) -> Result<(Header, SnapshotMeta)> {
    let mut r = SnapshotReader::open_with_keys(fs, path, keys)?;
    while let Some(entry) = r.next_entry()? {
        if !matches!(entry, SnapEntry::Meta(_)) {
            each(entry);
        }
    }
    let meta = r
        .take_meta()
        .ok_or_else(|| corrupt(path, 0, DecodeError::Malformed("no meta entry".into())))?;
    Ok((r.header(), meta))
}

/// [`read_snapshot`] with the reading, checking and decoding on a second thread, a batch of
/// entries ahead of `each`: recovery decodes one chunk while it restores the previous one.
///
/// # Errors
/// As [`read_snapshot_with_keys`].
pub fn read_snapshot_pipelined(
    fs: &dyn Vfs,
    path: &Path,
    keys: Option<&KeyRing>,
    mut each: impl FnMut(SnapEntry),
) -> Result<(Header, SnapshotMeta)> {
    const BATCH: usize = 1024;
    let mut reader = SnapshotReader::open_with_keys(fs, path, keys)?;
    let header = reader.header();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<SnapEntry>>>(4);
    let meta = std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut batch = Vec::with_capacity(BATCH);
            loop {
                match reader.next_entry() {
                    Ok(Some(SnapEntry::Meta(_))) => {}
                    Ok(Some(entry)) => {
                        batch.push(entry);
                        if batch.len() == BATCH && tx.send(Ok(std::mem::take(&mut batch))).is_err()
                        {
                            return None;
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Ok(batch));
                        return reader.take_meta();
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return None;
                    }
                }
            }
        });
        for batch in rx.iter() {
            for entry in batch? {
                each(entry);
            }
        }
        Ok::<_, Error>(producer.join().ok().flatten())
    })?;
    let meta =
        meta.ok_or_else(|| corrupt(path, 0, DecodeError::Malformed("no meta entry".into())))?;
    Ok((header, meta))
}
