//! Read-only checks of a store directory: [`verify_dir`] reads every manifest slot, every
//! snapshot file a manifest names (live chains and fallbacks: every chunk and footer
//! checksum) and every WAL record, and checks that the log reaches where the newest manifest
//! says it did (I3: after a clean close, anything missing or damaged before that end is
//! corruption); [`dry_run_recovery`] says what opening the store would do;
//! [`recovered_state`] rebuilds in memory the replica opening it would recover. None of them
//! modifies, renames, truncates or locks anything, so all can run beside an open store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::StoreConfig;
use super::{layout, recovery, Store};
use crate::clock::WallClock;
use crate::error::Result;
use crate::fs::Vfs;
use crate::replicate::ReplicaStatus;
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

fn check_snapshot(fs: &dyn Vfs, path: &Path) -> FileCheck {
    let bytes = fs.file_len(path).unwrap_or(0);
    let mut check = FileCheck {
        file: path.to_path_buf(),
        bytes,
        entries: 0,
        error: None,
    };
    let result = SnapshotReader::open(fs, path).and_then(|mut r| {
        check.entries = r.check_all()?;
        Ok(())
    });
    check.error = result.err().map(|e| e.to_string());
    check
}

/// Checks every checksum in the store directory `dir`; never modifies anything.
///
/// # Errors
/// Only when the directory cannot be listed; damage is reported in the [`VerifyReport`].
pub fn verify_dir(fs: &dyn Vfs, dir: &Path) -> Result<VerifyReport> {
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
        let check = check_snapshot(fs, &snap_dir.join(file));
        if let Some(e) = &check.error {
            report.problems.push(e.clone());
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
        report.wal = wal::verify(fs, &wal_dir, covered)?;
        for older in chains.iter().skip(replay_from + 1) {
            let needs = wal::verify(fs, &wal_dir, older.covers_seq())?;
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
fn log_end_problem(
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

/// What opening a store would do, found without changing anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryPlan {
    /// Manifest generation recovery would use.
    pub generation: Option<u64>,
    /// Snapshot files it would load.
    pub snapshots: Vec<String>,
    /// Sessions in those snapshots.
    pub sessions: usize,
    /// WAL records the snapshots cover.
    pub covers_seq: u64,
    /// WAL records it would replay.
    pub records_to_replay: u64,
    /// Bytes of torn tail it would cut off (and keep as `.broken`).
    pub bytes_to_truncate: u64,
    /// Generations it would have to skip, and why.
    pub fallbacks: Vec<String>,
    /// Why it would fail, if it would.
    pub failure: Option<String>,
}

/// Says what opening the store in `dir` would do; never modifies anything.
///
/// # Errors
/// Only when the directory cannot be read at all.
pub fn dry_run_recovery(fs: &dyn Vfs, dir: &Path) -> Result<RecoveryPlan> {
    let mut plan = RecoveryPlan::default();
    let slots = read_slots(fs, dir)?;
    plan.fallbacks
        .extend(slots.damaged.iter().map(ToString::to_string));
    for m in &recovery::candidates(&slots.valid) {
        let config = StoreConfig::new(&m.region);
        let replica = match recovery::load_chain(fs, dir, m, &config, Arc::new(WallClock)) {
            Ok(r) => r,
            Err(e) => {
                plan.fallbacks
                    .push(format!("manifest generation {}: {e}", m.generation));
                continue;
            }
        };
        let wal_dir = layout::wal_dir(dir);
        let w = if fs.exists(&wal_dir)? {
            wal::verify(fs, &wal_dir, m.covers_seq())?
        } else {
            wal::VerifyReport::default()
        };
        if let Some(p) = w.problems.iter().find(|p| p.is_corruption()) {
            let why = format!("{} at offset {}: {}", p.file.display(), p.offset, p.what);
            plan.fallbacks
                .push(format!("manifest generation {}: WAL {why}", m.generation));
            continue;
        }
        let wal_dir = layout::wal_dir(dir);
        if let Some(gone) = log_end_problem(&w, &wal_dir, &slots.valid[0], m.covers_seq()) {
            plan.failure = Some(format!("acknowledged data is gone: {gone}"));
        }
        plan.generation = Some(m.generation);
        plan.snapshots = m.chain().map(|s| s.file.clone()).collect();
        plan.sessions = replica.sessions().count();
        plan.covers_seq = m.covers_seq();
        plan.records_to_replay = w
            .last_seq
            .map_or(0, |last| last.saturating_sub(m.covers_seq()));
        plan.bytes_to_truncate = w
            .problems
            .iter()
            .map(|p| match &p.what {
                ProblemKind::TornTail { bytes, .. } => *bytes,
                _ => 0,
            })
            .sum();
        return Ok(plan);
    }
    if slots.valid.is_empty() && slots.damaged.is_empty() && !layout::holds_data(fs, dir)? {
        plan.failure = None;
        plan.fallbacks
            .push("no store here: opening would create one".into());
        return Ok(plan);
    }
    plan.failure = Some(format!(
        "no manifest generation recovers: {}",
        plan.fallbacks.join("; ")
    ));
    Ok(plan)
}

/// The replica opening a store would recover, rebuilt in memory by [`recovered_state`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveredState {
    /// Manifest generation it was recovered from.
    pub generation: u64,
    /// WAL records replayed on top of that generation's snapshot chain.
    pub records_replayed: u64,
    /// The rebuilt replica's status: sessions, version vector, digest root, removed members.
    /// Peers are registered at run time, not stored, so the peer list is empty.
    pub replica: ReplicaStatus,
}

/// Rebuilds in memory the replica that opening the store in `dir` would recover (the newest
/// manifest generation whose snapshot chain loads and whose WAL holds no corruption, plus the
/// WAL records after it, up to a torn tail) and returns its status; never modifies anything.
/// `None` when no generation recovers or `dir` holds no store: [`dry_run_recovery`] says why.
///
/// # Errors
/// Only when the directory or the WAL cannot be read at all.
pub fn recovered_state(fs: &dyn Vfs, dir: &Path) -> Result<Option<RecoveredState>> {
    let slots = read_slots(fs, dir)?;
    let wal_dir = layout::wal_dir(dir);
    for m in &recovery::candidates(&slots.valid) {
        let config = StoreConfig::new(&m.region);
        let Ok(mut replica) = recovery::load_chain(fs, dir, m, &config, Arc::new(WallClock)) else {
            continue;
        };
        let mut records_replayed = 0;
        if fs.exists(&wal_dir)? {
            if wal::verify(fs, &wal_dir, m.covers_seq())?.has_corruption() {
                continue;
            }
            let replayed = wal::read_records(fs, &wal_dir, m.covers_seq(), &mut |seq, body| {
                recovery::replay_record(&mut replica, &wal_dir, seq, body)
            });
            match replayed {
                Ok(n) => records_replayed = n,
                Err(_) => continue,
            }
        }
        return Ok(Some(RecoveredState {
            generation: m.generation,
            records_replayed,
            replica: replica.status(),
        }));
    }
    Ok(None)
}

impl Store {
    /// Checks every checksum of this store's files; never modifies anything. Snapshots are
    /// held off while it runs, so no file it checks is deleted under it.
    ///
    /// # Errors
    /// Only when the directory cannot be listed.
    pub fn verify(&self) -> Result<VerifyReport> {
        let _snap = self.inner.snap.lock();
        verify_dir(self.inner.fs.as_ref(), &self.inner.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFs;
    use crate::ReplicaId;

    fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    let bytes = std::fs::read(&p).unwrap();
                    out.push((p, bytes));
                }
            }
        }
        out.sort();
        out
    }

    fn config() -> StoreConfig {
        StoreConfig {
            snapshot_interval: None,
            tick_interval: None,
            ..StoreConfig::new("eu-west-1")
        }
    }

    #[test]
    fn recovered_state_counts_the_snapshot_chain_and_the_wal_tail_without_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("store");
        let (store, _) = Store::open(&dir, config()).unwrap();
        for i in 0..5 {
            store
                .put(format!("s{i}").into_bytes(), "user", "alice")
                .unwrap();
        }
        store.snapshot().unwrap();
        for i in 5..8 {
            store
                .put(format!("s{i}").into_bytes(), "user", "bob")
                .unwrap();
        }
        let (id, incarnation) = (store.id(), store.incarnation());
        store.close().unwrap();
        drop(store);
        let before = files(&dir);

        let state = recovered_state(&OsFs, &dir).unwrap().unwrap();
        assert_eq!(files(&dir), before);
        assert_eq!(state.records_replayed, 3);
        assert_eq!(state.replica.sessions, 8);
        assert_eq!(state.replica.vv.get(id), 8);
        assert_eq!(id, ReplicaId::from_region("eu-west-1", incarnation));

        let (store, _) = Store::open(&dir, config()).unwrap();
        assert_eq!(store.status().replica.vv, state.replica.vv);
        assert_eq!(store.digest_root().unwrap(), state.replica.digest_root);
    }

    #[test]
    fn recovered_state_is_none_when_the_wal_is_corrupt_and_none_for_an_empty_dir() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(recovered_state(&OsFs, tmp.path()).unwrap(), None);
        let dir = tmp.path().join("store");
        let (store, _) = Store::open(&dir, config()).unwrap();
        for i in 0..3 {
            store.put(format!("s{i}").into_bytes(), "k", "v").unwrap();
        }
        store.close().unwrap();
        drop(store);
        let wal_dir = layout::wal_dir(&dir);
        let seg = std::fs::read_dir(&wal_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .unwrap();
        let mut bytes = std::fs::read(&seg).unwrap();
        // Inside the first record's body: valid records follow, so this is corruption.
        bytes[crate::wal::SEGMENT_HEADER_LEN + 16] ^= 0x40;
        std::fs::write(&seg, bytes).unwrap();
        assert_eq!(recovered_state(&OsFs, &dir).unwrap(), None);
    }
}
