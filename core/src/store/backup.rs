//! Backups: [`Store::backup`] writes every session and the replica's state at one cut into a
//! single snapshot-format file (every chunk checksummed, a footer over all of them) and reads
//! it back before reporting success; [`restore_backup`] verifies a backup whole, then makes a
//! new store directory from it.
//!
//! With encryption on ([`super::StoreConfig::encryption`]) the backup file is encrypted like
//! a snapshot (the same format: a cipher block, sealed chunks) under the current key; it is
//! written from memory, not copied from the store's files, and cannot be read without a key
//! of the ring. [`restore_backup_with_keys`] reads a backup encrypted under any key of the
//! ring it is given and writes the new store under that ring's current key.
//!
//! A restored store is a new incarnation of the region (so its new changes can never collide
//! with changes the old incarnation made after the backup), and it retires the old
//! incarnation from membership; peers refill it with whatever is newer than the backup.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::layout;
use super::snapshotter::BATCH;
use super::Store;
use crate::causal::VersionVector;
use crate::clock::ReplicaId;
use crate::crdt::SessionId;
use crate::crypto::KeyRing;
use crate::error::{Error, Result};
use crate::fs::{parent_dir, Vfs};
use crate::replicate::FenceReason;
use crate::snapshot::{
    install_manifest, read_slots, read_snapshot_with_keys, Header, Manifest, SnapEntry, SnapKind,
    SnapRef, SnapshotMeta, SnapshotReader, SnapshotWriter,
};

/// What a backup wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupReport {
    /// The backup file.
    pub file: PathBuf,
    /// Sessions written.
    pub sessions: u64,
    /// File size.
    pub bytes: u64,
    /// The backup holds at least everything this vector covers.
    pub vv: VersionVector,
    /// Time taken (writing and verifying).
    pub elapsed: Duration,
}

/// What a restore made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The new store directory.
    pub dir: PathBuf,
    /// Its region.
    pub region: String,
    /// Its (new) incarnation.
    pub incarnation: u32,
    /// Sessions restored.
    pub sessions: u64,
    /// The incarnation the backup was taken from, now removed from membership.
    pub retired: ReplicaId,
}

impl Store {
    /// Writes a consistent, self-verifying backup of this live store to `file` (which must
    /// not exist), then reads it back whole before returning.
    ///
    /// # Errors
    /// I/O errors, or [`Error::Corrupt`] if the file does not read back.
    pub fn backup(&self, file: &Path) -> Result<BackupReport> {
        self.check_open()?;
        let started = Instant::now();
        let fs = self.inner.fs.clone();
        if fs.exists(file)? {
            return Err(Error::InvalidArgument(format!(
                "{} exists; a backup never overwrites",
                file.display()
            )));
        }
        let _no_snapshots = self.inner.snap.lock();
        let (meta, cut) = {
            let st = self.inner.state.read();
            (self.inner.meta_of(&st.replica), self.inner.wal.last_seq())
        };
        let name = file.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            Error::InvalidArgument(format!("{} is not a file name", file.display()))
        })?;
        let header = Header {
            version: crate::snapshot::VERSION,
            kind: SnapKind::Backup,
            generation: 0,
            covers_seq: cut,
        };
        let keys = self.inner.config.encryption.as_ref();
        let mut w =
            SnapshotWriter::create_with_keys(fs.clone(), parent_dir(file), name, header, keys)?;
        let mut sessions = 0;
        let mut cursor: Option<SessionId> = None;
        loop {
            let batch = self
                .inner
                .state
                .read()
                .replica
                .sessions_after(cursor.as_ref(), BATCH);
            let Some((last, _)) = batch.last() else { break };
            cursor = Some(last.clone());
            for (id, state) in batch {
                w.push(&SnapEntry::Session(id, state))?;
                sessions += 1;
            }
        }
        let vv = meta.context.vv().clone();
        w.push(&SnapEntry::Meta(meta))?;
        // The sessions were copied after the cut and may hold writes not yet durable in the
        // log: those must be durable before a file holds them, or a crash could make this
        // replica hand their dots out again while the backup keeps the old ops (I2).
        self.inner.wal.sync()?;
        let written = w.finish()?;
        let mut read_back = 0;
        read_snapshot_with_keys(fs.as_ref(), file, keys, |_| read_back += 1)?;
        if read_back != sessions {
            return Err(Error::DataLoss(format!(
                "backup holds {read_back} sessions, {sessions} were written"
            )));
        }
        Ok(BackupReport {
            file: file.to_path_buf(),
            sessions,
            bytes: written.bytes,
            vv,
            elapsed: started.elapsed(),
        })
    }
}

/// Makes a new store in `dir` (which must not hold one) from the backup `file`, after
/// verifying the whole backup.
///
/// # Errors
/// [`Error::Corrupt`] for a damaged backup (nothing is created), [`Error::InvalidArgument`]
/// when `dir` already holds a store, I/O errors.
pub fn restore_backup(fs: Arc<dyn Vfs>, file: &Path, dir: &Path) -> Result<RestoreReport> {
    restore_backup_with_keys(fs, file, dir, None)
}

/// [`restore_backup`] of a backup that may be encrypted under a key of `keys`; the new store
/// is written encrypted under the current key of `keys` when given (open it with the same
/// ring).
///
/// # Errors
/// As [`restore_backup`]; [`Error::MissingKey`] for an encrypted backup whose key `keys`
/// lacks and [`Error::Tampered`] for one altered with its checksums fixed (nothing is
/// created either way).
pub fn restore_backup_with_keys(
    fs: Arc<dyn Vfs>,
    file: &Path,
    dir: &Path,
    keys: Option<&KeyRing>,
) -> Result<RestoreReport> {
    let (header, meta) = read_snapshot_with_keys(fs.as_ref(), file, keys, |_| {})?;
    if header.kind != SnapKind::Backup {
        return Err(Error::InvalidArgument(format!(
            "{} is a {:?} snapshot, not a backup",
            file.display(),
            header.kind
        )));
    }
    if fs.exists(dir)? {
        let slots = read_slots(fs.as_ref(), dir)?;
        // Snapshot files with no manifest and no log can only be an interrupted restore
        // (a store installs its first manifest before anything else): it is redone.
        if !slots.valid.is_empty()
            || !slots.damaged.is_empty()
            || layout::holds_wal(fs.as_ref(), dir)?
        {
            return Err(Error::InvalidArgument(format!(
                "{} already holds a store",
                dir.display()
            )));
        }
    } else {
        crate::fs::create_dir_durably(fs.as_ref(), dir)?;
    }
    let _lock = fs.lock_dir(dir)?;
    let snap_dir = layout::snap_dir(dir);
    if fs.exists(&snap_dir)? {
        for leftover in fs.list_dir(&snap_dir)? {
            fs.remove_file(&snap_dir.join(leftover))?;
        }
    }
    fs.create_dir_all(&snap_dir)?;
    fs.sync_dir(dir)?;
    let incarnation = layout::new_incarnation(fs.as_ref());
    let retired = ReplicaId::from_region(&meta.region, meta.incarnation);
    let name = layout::snap_name(1, SnapKind::Base);
    let header = Header {
        version: crate::snapshot::VERSION,
        kind: SnapKind::Base,
        generation: 1,
        covers_seq: 0,
    };
    let mut w = SnapshotWriter::create_with_keys(fs.clone(), &snap_dir, &name, header, keys)?;
    let mut sessions = 0;
    // A backup copies its sessions after its cut, so they may hold writes its context does
    // not cover: every dot they hold counts as seen (I4, as a merged copy's does).
    let mut context = meta.context.clone();
    let mut reader = SnapshotReader::open_with_keys(fs.as_ref(), file, keys)?;
    while let Some(entry) = reader.next_entry()? {
        match entry {
            SnapEntry::Meta(_) => {}
            other => {
                if let SnapEntry::Session(_, state) = &other {
                    sessions += 1;
                    for dot in state.dots() {
                        context.insert(dot);
                    }
                }
                w.push(&other)?;
            }
        }
    }
    let mut removed = meta.removed.clone();
    removed.push(retired);
    // Its state is as old as the backup: with members to catch up with, it serves nothing
    // until it has (I4); a lone store has nobody who could have collected anything since.
    let fence = (!meta.members.is_empty()).then_some(FenceReason::Restored);
    let new_meta = SnapshotMeta {
        incarnation,
        removed,
        fence,
        context,
        ..meta.clone()
    };
    w.push(&SnapEntry::Meta(new_meta))?;
    let written = w.finish()?;
    let manifest = Manifest {
        generation: 1,
        base: Some(SnapRef {
            file: written.name,
            kind: SnapKind::Base,
            generation: 1,
            covers_seq: 0,
            bytes: written.bytes,
        }),
        fence,
        // Nothing was logged: the log ends, exactly, where it starts. A restored store
        // that has not run yet is no crashed one.
        clean: true,
        clustered: !meta.members.is_empty(),
        ..Manifest::new(&meta.region, incarnation, meta.created_ms)
    };
    // Both slots hold it (generations 0 and 1): a store always has both from then on, so a
    // missing slot is damage `verify` reports.
    install_manifest(
        fs.as_ref(),
        dir,
        &Manifest {
            generation: 0,
            ..manifest.clone()
        },
    )?;
    install_manifest(fs.as_ref(), dir, &manifest)?;
    Ok(RestoreReport {
        dir: dir.to_path_buf(),
        region: meta.region,
        incarnation,
        sessions,
        retired,
    })
}
