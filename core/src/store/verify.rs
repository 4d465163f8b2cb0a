//! Read-only checks of a store directory: [`verify_dir`] reads every manifest slot, every
//! snapshot file a manifest names (live chains and fallbacks: every chunk and footer
//! checksum) and every WAL record, and checks that the log reaches where the newest manifest
//! says it did (I3: after a clean close, anything missing or damaged before that end is
//! corruption). It never modifies, renames, truncates or locks anything, so it can run beside
//! an open store. What opening would do is `dry_run.rs`.
//!
//! Encrypted files are checked by checksum without their key (so damage still shows) and
//! listed as warnings naming the key; with the key ([`verify_dir_with_keys`]) every
//! authentication tag is checked too, and one that fails under good checksums is a problem
//! (tampering).

use std::path::{Path, PathBuf};

use super::{layout, recovery, Store};
use crate::crypto::{KeyId, KeyRing};
use crate::error::Result;
use crate::fs::Vfs;
use crate::snapshot::{read_slots, Manifest, SnapshotReader, SLOTS};
use crate::wal::{self, ProblemKind};

/// One file's check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// The file.
    pub file: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Entries verified (snapshots).
    pub entries: u64,
    /// What is wrong with it, if anything.
    pub error: Option<String>,
    /// The key it is encrypted under, when it is.
    pub key_id: Option<KeyId>,
    /// Encrypted under a key that is not configured: checksums checked, entries and
    /// authentication not.
    pub checksums_only: bool,
}

/// The result of [`verify_dir`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// The manifest slots present.
    pub manifests: Vec<FileCheck>,
    /// Newest manifest generation that verifies.
    pub generation: Option<u64>,
    /// Snapshot files named by a manifest that verifies.
    pub snapshots: Vec<FileCheck>,
    /// Snapshot files no manifest names (left by an interrupted cleanup; harmless).
    pub orphans: Vec<PathBuf>,
    /// The WAL's own report.
    pub wal: wal::VerifyReport,
    /// Damage to acknowledged data: non-empty means the store is not intact.
    pub problems: Vec<String>,
    /// Things recovery repairs by itself (a torn WAL tail, leftover temporary files).
    pub warnings: Vec<String>,
}

impl VerifyReport {
    /// Whether every checksum verified (warnings allowed).
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

fn check_snapshot(fs: &dyn Vfs, path: &Path, keys: Option<&KeyRing>) -> FileCheck {
    let bytes = fs.file_len(path).unwrap_or(0);
    let mut check = FileCheck {
        file: path.to_path_buf(),
        bytes,
        entries: 0,
        error: None,
        key_id: None,
        checksums_only: false,
    };
    let result = SnapshotReader::open_with_keys(fs, path, keys).and_then(|mut r| {
        check.key_id = r.key_id();
        if r.can_decrypt() {
            check.entries = r.check_all()?;
        } else {
            check.checksums_only = true;
            r.check_checksums()?;
        }
        Ok(())
    });
    check.error = result.err().map(|e| e.to_string());
    check
}

/// Checks every checksum in the store directory `dir`; never modifies anything. Encrypted
/// files are checked by checksum only (see [`verify_dir_with_keys`]).
///
/// # Errors
/// Only when the directory cannot be listed; damage is reported in the [`VerifyReport`].
pub fn verify_dir(fs: &dyn Vfs, dir: &Path) -> Result<VerifyReport> {
    verify_dir_with_keys(fs, dir, None)
}

/// [`verify_dir`], also reading the entries and checking the authentication tags of files
/// encrypted under a key of `keys`.
///
/// # Errors
/// As [`verify_dir`].
pub fn verify_dir_with_keys(
    fs: &dyn Vfs,
    dir: &Path,
    keys: Option<&KeyRing>,
) -> Result<VerifyReport> {
    if !fs.exists(dir)? {
        let source = std::io::Error::from(std::io::ErrorKind::NotFound);
        return Err(crate::Error::Io {
            op: "verify",
            path: dir.to_path_buf(),
            source,
        });
    }
    let mut report = VerifyReport::default();
    let slots = read_slots(fs, dir)?;
    for slot in SLOTS {
        let path = dir.join(slot);
        if fs.exists(&path)? {
            let bytes = fs.file_len(&path).unwrap_or(0);
            let error = slots
                .damaged
                .iter()
                .find(|e| matches!(e, crate::Error::Corrupt { path: p, .. } if *p == path))
                .map(ToString::to_string);
            if let Some(e) = &error {
                report.problems.push(e.clone());
            }
            report.manifests.push(FileCheck {
                file: path,
                bytes,
                entries: 0,
                error,
                key_id: None,
                checksums_only: false,
            });
        }
    }
    if slots.valid.is_empty() && report.problems.is_empty() && layout::holds_data(fs, dir)? {
        report
            .problems
            .push(format!("{} holds data but no manifest", dir.display()));
    }
    // From generation 1 on both slots exist: a missing one was deleted.
    if let Some(newest) = slots.valid.first() {
        let expected = usize::from(newest.generation >= 1) + 1;
        if report.manifests.len() < expected {
            let missing = SLOTS[((newest.generation + 1) % 2) as usize];
            report.problems.push(format!(
                "{} is missing (generation {} is in the other slot)",
                dir.join(missing).display(),
                newest.generation
            ));
        }
    }
    report.generation = slots.valid.first().map(|m| m.generation);
    let snap_dir = layout::snap_dir(dir);
    let chains = recovery::kept_chains(&slots.valid);
    let mut named: Vec<&str> = chains
        .iter()
        .flat_map(Manifest::chain)
        .map(|r| r.file.as_str())
        .collect();
    named.sort_unstable();
    named.dedup();
    for file in &named {
        let check = check_snapshot(fs, &snap_dir.join(file), keys);
        if let Some(e) = &check.error {
            report.problems.push(e.clone());
        }
        if let (true, Some(id)) = (check.checksums_only, check.key_id) {
            report.warnings.push(format!(
                "{} is encrypted under key {id}, which is not configured: checksums verified, \
                 entries and authentication not checked",
                check.file.display()
            ));
        }
        report.snapshots.push(check);
    }
    if fs.exists(&snap_dir)? {
        for name in fs.list_dir(&snap_dir)? {
            if name.ends_with(".tmp") {
                report.warnings.push(format!(
                    "temporary file {name} (removed by the next snapshot)"
                ));
            } else if name.starts_with("snap-") && !named.contains(&name.as_str()) {
                report.orphans.push(snap_dir.join(name));
            }
        }
    }
    // Recovery replays the log after the newest chain whose snapshots verify (or, if none
    // does, after the oldest): records missing below that lose nothing now. But every chain
    // the store keeps is kept to fall back on: a hole only such a chain needs (records a
    // newer snapshot holds, gone from a log cut short) is damage too, since the next damage
    // to the live chain would then lose data.
    let verified = |m: &Manifest| {
        m.chain().all(|r| {
            let path = snap_dir.join(&r.file);
            report
                .snapshots
                .iter()
                .any(|c| c.file == path && c.error.is_none())
        })
    };
    let replay_from = chains
        .iter()
        .position(verified)
        .unwrap_or(chains.len().saturating_sub(1));
    let covered = chains.get(replay_from).map_or(0, Manifest::covers_seq);
    let wal_dir = layout::wal_dir(dir);
    if fs.exists(&wal_dir)? {
        report.wal = wal::verify_with_keys(fs, &wal_dir, covered, keys)?;
        for (file, id) in &report.wal.unauthenticated {
            report.warnings.push(format!(
                "{} is encrypted under key {id}, which is not configured: checksums verified, \
                 authentication not checked",
                file.display()
            ));
        }
        for older in chains.iter().skip(replay_from + 1) {
            let needs = wal::verify_with_keys(fs, &wal_dir, older.covers_seq(), keys)?;
            for p in needs
                .problems
                .iter()
                .filter(|p| !report.wal.problems.contains(p))
            {
                report.problems.push(format!(
                    "the chain of manifest generation {} from WAL record {} cannot serve as a \
                     fallback: {} at offset {}: {}",
                    older.generation,
                    older.wal_from,
                    p.file.display(),
                    p.offset,
                    p.what
                ));
            }
        }
    }
    let clean = slots.valid.first().is_some_and(|m| m.clean);
    for p in &report.wal.problems {
        let line = format!("{} at offset {}: {}", p.file.display(), p.offset, p.what);
        if p.is_corruption() {
            report.problems.push(line);
        } else if clean && matches!(p.what, ProblemKind::TornTail { .. }) {
            // Bytes after the end a clean close recorded hold nothing acknowledged (a damaged
            // record at or before that end shows as records missing, below).
            report.warnings.push(format!(
                "{line}; after the end the clean close recorded: the next open cuts it"
            ));
        } else if matches!(p.what, ProblemKind::TornTail { .. }) {
            report.warnings.push(format!(
                "{line}; the next open cuts it and, since it may have held acknowledged \
                 records, continues as a new incarnation"
            ));
        } else {
            report.warnings.push(line);
        }
    }
    if let Some(newest) = slots.valid.first() {
        if let Some(gone) = log_end_problem(&report.wal, &wal_dir, newest, covered) {
            report.problems.push(gone);
        }
    }
    Ok(report)
}

/// The records the newest manifest says were durable but the log no longer has (I3).
pub(crate) fn log_end_problem(
    w: &wal::VerifyReport,
    wal_dir: &Path,
    newest: &Manifest,
    covered: u64,
) -> Option<String> {
    let end = w.last_seq.unwrap_or(0).max(covered);
    if end >= newest.log_end {
        return None;
    }
    let place = match w.segments.last() {
        Some(s) => format!("{} at offset {}", s.path.display(), s.bytes),
        None => format!("{} (no segment)", wal_dir.display()),
    };
    Some(format!(
        "{place}: WAL records {}..={} are missing: manifest generation {} records the log \
         reaching {}{}, it ends at {end}",
        end + 1,
        newest.log_end,
        newest.generation,
        newest.log_end,
        if newest.clean {
            " at a clean close"
        } else {
            ""
        }
    ))
}

impl Store {
    /// Checks every checksum of this store's files; never modifies anything. Snapshots are
    /// held off while it runs, so no file it checks is deleted under it.
    ///
    /// # Errors
    /// Only when the directory cannot be listed.
    pub fn verify(&self) -> Result<VerifyReport> {
        let _snap = self.inner.snap.lock();
        let keys = self.inner.config.encryption.as_ref();
        verify_dir_with_keys(self.inner.fs.as_ref(), &self.inner.dir, keys)
    }
}
