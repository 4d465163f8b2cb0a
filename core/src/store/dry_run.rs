//! What opening a store would do, found without changing anything: [`dry_run_recovery`]
//! says which generation it would load, what it would replay and cut, and why it would fail;
//! [`recovered_state`] rebuilds in memory the replica it would recover. Neither modifies,
//! renames, truncates or locks anything. With encryption, the `_with_keys` variants take the
//! key ring: a key that is not configured, or a tag that fails, is the failure (as it would
//! stop a real open), not a reason to fall back.

use std::path::Path;
use std::sync::Arc;

use super::config::StoreConfig;
use super::verify::log_end_problem;
use super::{layout, recovery};
use crate::clock::WallClock;
use crate::crypto::KeyRing;
use crate::error::{Error, Result};
use crate::fs::Vfs;
use crate::replicate::ReplicaStatus;
use crate::snapshot::read_slots;
use crate::wal::{self, ProblemKind};

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

/// Whether `e` would stop a real open at once instead of making it fall back (a key that is
/// not configured, a tag that fails).
fn stops_open(e: &Error) -> bool {
    matches!(e, Error::MissingKey { .. } | Error::Tampered { .. })
}

/// A WAL record opening would replay that sits in a segment whose key is not configured, or
/// fails its tag: what a real open would stop with.
fn wal_key_failure(w: &wal::VerifyReport, covers: u64) -> Option<String> {
    if let Some(p) = w
        .problems
        .iter()
        .find(|p| matches!(p.what, ProblemKind::Tampered { .. }))
    {
        return Some(format!(
            "{} at offset {}: {}",
            p.file.display(),
            p.offset,
            p.what
        ));
    }
    w.unauthenticated.iter().find_map(|(file, id)| {
        let seg = w.segments.iter().find(|s| s.path == *file)?;
        let last = (seg.first_seq + seg.records).checked_sub(1)?;
        (seg.records > 0 && last > covers).then(|| {
            format!(
                "{} holds records to replay, encrypted under key {id}, which is not configured",
                file.display()
            )
        })
    })
}

/// Says what opening the store in `dir` would do; never modifies anything.
///
/// # Errors
/// Only when the directory cannot be read at all.
pub fn dry_run_recovery(fs: &dyn Vfs, dir: &Path) -> Result<RecoveryPlan> {
    dry_run_recovery_with_keys(fs, dir, None)
}

/// [`dry_run_recovery`] of a store that may hold files encrypted under keys of `keys`.
///
/// # Errors
/// As [`dry_run_recovery`].
pub fn dry_run_recovery_with_keys(
    fs: &dyn Vfs,
    dir: &Path,
    keys: Option<&KeyRing>,
) -> Result<RecoveryPlan> {
    let mut plan = RecoveryPlan::default();
    let slots = read_slots(fs, dir)?;
    plan.fallbacks
        .extend(slots.damaged.iter().map(ToString::to_string));
    for m in &recovery::candidates(&slots.valid) {
        let config = StoreConfig {
            encryption: keys.cloned(),
            ..StoreConfig::new(&m.region)
        };
        let replica = match recovery::load_chain(fs, dir, m, &config, Arc::new(WallClock)) {
            Ok(r) => r,
            Err(e) if stops_open(&e) => {
                plan.failure = Some(e.to_string());
                return Ok(plan);
            }
            Err(e) => {
                plan.fallbacks
                    .push(format!("manifest generation {}: {e}", m.generation));
                continue;
            }
        };
        let wal_dir = layout::wal_dir(dir);
        let w = if fs.exists(&wal_dir)? {
            wal::verify_with_keys(fs, &wal_dir, m.covers_seq(), keys)?
        } else {
            wal::VerifyReport::default()
        };
        if let Some(why) = wal_key_failure(&w, m.covers_seq()) {
            plan.failure = Some(why);
            return Ok(plan);
        }
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
    recovered_state_with_keys(fs, dir, None)
}

/// [`recovered_state`] of a store that may hold files encrypted under keys of `keys`.
///
/// # Errors
/// As [`recovered_state`]; [`Error::MissingKey`] / [`Error::Tampered`] when what it would
/// load cannot be decrypted (as opening would fail).
pub fn recovered_state_with_keys(
    fs: &dyn Vfs,
    dir: &Path,
    keys: Option<&KeyRing>,
) -> Result<Option<RecoveredState>> {
    let slots = read_slots(fs, dir)?;
    let wal_dir = layout::wal_dir(dir);
    for m in &recovery::candidates(&slots.valid) {
        let config = StoreConfig {
            encryption: keys.cloned(),
            ..StoreConfig::new(&m.region)
        };
        let mut replica = match recovery::load_chain(fs, dir, m, &config, Arc::new(WallClock)) {
            Ok(r) => r,
            Err(e) if stops_open(&e) => return Err(e),
            Err(_) => continue,
        };
        let mut records_replayed = 0;
        if fs.exists(&wal_dir)? {
            if wal::verify_with_keys(fs, &wal_dir, m.covers_seq(), keys)?.has_corruption() {
                continue;
            }
            let after = m.covers_seq();
            let replayed = wal::read_records(fs, &wal_dir, after, keys, &mut |seq, body| {
                recovery::replay_record(&mut replica, &wal_dir, seq, body)
            });
            match replayed {
                Ok(n) => records_replayed = n,
                Err(e) if stops_open(&e) => return Err(e),
                Err(_) => continue,
            }
        }
        // As opening does (`open.rs`, `log_held_dots`).
        drop(replica.see_held_dots());
        return Ok(Some(RecoveredState {
            generation: m.generation,
            records_replayed,
            replica: replica.status(),
        }));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::OsFs;
    use crate::store::Store;
    use crate::ReplicaId;
    use std::path::PathBuf;

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
