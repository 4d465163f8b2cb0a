//! Opening a store: recovery, then what it means for this replica, then a new boot on record
//! before anything is accepted (I2 and I3 in `docs/INVARIANTS.md`).
//!
//! ```text
//!  recover (every checksum)                      damage in the log, RebuildFromPeers:
//!     │                                             keep the prefix before it, set the rest
//!     │                                             aside; damage to every chain: move the
//!     │                                             directory aside, start empty
//!     ▼
//!  log ends before the recorded log_end?  ──► durable records are gone: Strict refuses
//!     │                                       (DataLoss naming the range), RebuildFromPeers
//!     │                                       continues as a new incarnation, fenced
//!     ▼
//!  previous run closed cleanly?  ── yes ──► same incarnation
//!     │ no (a crash)
//!     ▼
//!  new incarnation, always: nothing on disk says where the crashed run's log ended (a
//!     │  newest segment lost, or cut at a record boundary, after the crash looks like a
//!     │  log that ended there), so no dot of the old id is ever made again (I2)
//!     │  (also after a clean close while fenced by a history regression: the run did not
//!     │  get that history back, and a peer holds dots of its id this one may reuse)
//!     ▼
//!  fenced until it has caught up with a member (if it has members): its state may be
//!     │  older than what the cluster collected meanwhile
//!     ▼
//!  install manifest: boot + 1, log_end = what is here, not clean, incarnation, retired,
//!  fence — before the first write, frame or ack of this run
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::config::{RecoveryMode, StoreConfig};
use super::layout;
use super::recovery::{self, is_damage, Recovered};
use crate::clock::TimeSource;
use crate::error::{Error, Result};
use crate::fs::{DirLock, Vfs};
use crate::replicate::change::{encode_changes, Change};
use crate::replicate::FenceReason;
use crate::snapshot::{install_manifest, Manifest};
use crate::wal::{FsyncPolicy, WalRecovery};

/// A store's state once it is open: recovered, decided, and on record.
pub(crate) struct Opened {
    pub(crate) recovered: Recovered,
    pub(crate) lock: DirLock,
}

/// Opens (recovering or creating) the store in `dir`.
pub(crate) fn open(
    fs: &Arc<dyn Vfs>,
    dir: &Path,
    config: &StoreConfig,
    time: &Arc<dyn TimeSource>,
) -> Result<Opened> {
    crate::fs::create_dir_durably(fs.as_ref(), dir)?;
    let lock = fs.lock_dir(dir)?;
    let rebuild = config.recovery == RecoveryMode::RebuildFromPeers;
    let (mut r, lock, moved_after) =
        match recovery::recover(fs, dir, config, time, WalRecovery::Strict) {
            Ok(r) => (r, lock, None),
            Err(e) if is_damage(&e) && rebuild => {
                match recovery::recover(fs, dir, config, time, WalRecovery::KeepPrefix) {
                    Ok(r) => (r, lock, None),
                    Err(e2) if is_damage(&e2) => {
                        drop(lock);
                        let moved = quarantine(fs, dir, time.now_ms())?;
                        crate::fs::create_dir_durably(fs.as_ref(), dir)?;
                        let lock = fs.lock_dir(dir)?;
                        let mut r = recovery::recover(fs, dir, config, time, WalRecovery::Strict)?;
                        r.report.fallbacks.push(format!("moved aside after: {e}"));
                        r.report.quarantined = Some(moved.clone());
                        (r, lock, Some(moved))
                    }
                    Err(e2) => return Err(e2),
                }
            }
            Err(e) => return Err(e),
        };
    let fence_before = r.replica.fence();
    decide(fs.as_ref(), config, &mut r, moved_after.is_some())?;
    log_decided_fence(&r, fence_before)?;
    log_held_dots(&mut r)?;
    put_on_record(fs.as_ref(), dir, config, time.now_ms(), &mut r)?;
    Ok(Opened { recovered: r, lock })
}

/// Whether recovery lost durable records, and whether the replica must continue as a new
/// incarnation; applies it (see the module doc).
fn decide(fs: &dyn Vfs, config: &StoreConfig, r: &mut Recovered, rebuilt: bool) -> Result<()> {
    let newest = &r.newest;
    let report = &mut r.report;
    report.clean_shutdown = newest.clean;
    report.log_end_recorded = newest.log_end;
    if rebuilt {
        // Empty, and a new incarnation already: fenced until peers refilled it.
        let change = r.replica.raise_fence(FenceReason::Rebuilt);
        drop(change);
        report.fence = r.replica.fence();
        return Ok(());
    }
    let end = r.wal.last_seq();
    let mut lost_suffix = false;
    if let Some(cut) = &report.wal.damage_cut {
        report.lost = Some((cut.kept_through + 1, newest.log_end.max(cut.kept_through)));
        lost_suffix = true;
    }
    if end < newest.log_end {
        let why = format!(
            "WAL records {}..={} were durable (the manifest of generation {} records the log \
             reaching {}) but the log ends at {end}{}",
            end + 1,
            newest.log_end,
            newest.generation,
            newest.log_end,
            if newest.clean {
                " after a clean close"
            } else {
                ""
            }
        );
        if config.recovery == RecoveryMode::Strict {
            return Err(Error::DataLoss(why));
        }
        report.fallbacks.push(format!("continued without: {why}"));
        report.lost = Some((end + 1, newest.log_end));
        lost_suffix = true;
    }
    // After a crash, whatever the log shows may be short of what it held: a cut tail, a
    // power cut under `Never`, or damage at rest that leaves no trace (a lost newest
    // segment). The state may be older than what the cluster collected since, so it is
    // fenced until it has caught up with a member.
    let crashed = !newest.clean && !report.created;
    // Fenced because a peer holds more of this replica's own history: if the run that
    // learnt it could not take that history back, no one may hold the ops before it, and
    // the next write under this id could reuse one of their dots (I2).
    let regressed = matches!(
        r.replica.fence(),
        Some(FenceReason::HistoryRegression { .. })
    );
    if lost_suffix || crashed || regressed {
        let incarnation = layout::new_incarnation(fs);
        let old = r.replica.reincarnate(incarnation);
        report.reincarnated_from = Some(old);
        report.incarnation = incarnation;
        if r.replica.peers().is_empty() && !newest.clustered && !r.manifest.clustered {
            r.replica.fence_at_first_member = true;
        } else {
            drop(r.replica.raise_fence(FenceReason::LostTail));
        }
    }
    report.fence = r.replica.fence();
    Ok(())
}

/// A fence this open raised (or changed) goes into the log too, durably, before the manifest:
/// the manifest's fence is applied before the WAL replays, so without a record of its own an
/// older `Unfence` (or `Fence`) record replayed at the next open would undo this decision.
fn log_decided_fence(r: &Recovered, before: Option<FenceReason>) -> Result<()> {
    let Some(reason) = r.replica.fence() else {
        return Ok(());
    };
    if before == Some(reason) {
        return Ok(());
    }
    r.wal.append(&encode_changes(&[Change::Fence(reason)]))?;
    r.wal.sync()
}

/// The sessions recovered may hold effects whose records are gone: a snapshot copies
/// sessions after its cut, so a session in it can hold a write of a record lost since (a
/// cut tail, damage). Their dots are recorded as seen, as a merge's are, and the sessions
/// logged, so that the next open sees them too (I4: a later removal of such an effect must
/// hold against every older copy of it). After an intact log there are none; the check is
/// one pass over the sessions' dots, and the dry run makes the same one.
fn log_held_dots(r: &mut Recovered) -> Result<()> {
    let changes = r.replica.see_held_dots();
    if changes.is_empty() {
        return Ok(());
    }
    let lsn = r.wal.append(&encode_changes(&changes))?;
    r.wal.sync()?;
    // The vector entries those dots raised are durable in that record: said so, or the
    // store would count them as unlogged (no clean close, a taint on a later failure).
    r.replica.note_logged(lsn);
    r.replica.note_durable(lsn);
    Ok(())
}

/// Installs this run's manifest (a new boot, where the log ends now, not clean) before the
/// store accepts anything, and gives the replica its boot.
fn put_on_record(
    fs: &dyn Vfs,
    dir: &Path,
    config: &StoreConfig,
    now_ms: u64,
    r: &mut Recovered,
) -> Result<()> {
    let mut retired = r.newest.retired.clone();
    if r.report.reincarnated_from.is_some() && !retired.contains(&r.manifest.incarnation) {
        retired.push(r.manifest.incarnation);
    }
    // The chain before the live one stays the fallback; when recovery had to fall back
    // itself, the chain it fell back from is damaged and none is kept.
    let loaded_newest = r.manifest.current() == r.newest.current();
    let fallback = if loaded_newest {
        r.newest
            .fallback
            .clone()
            .or_else(|| r.previous.as_ref().map(Manifest::current))
            .filter(|f| *f != r.manifest.current())
    } else {
        None
    };
    let m = Manifest {
        generation: r.newest.generation.max(r.manifest.generation) + 1,
        incarnation: r.report.incarnation,
        boot: r.newest.boot + 1,
        fallback,
        log_end: r.wal.last_seq(),
        clean: false,
        unsynced: config.fsync == FsyncPolicy::Never,
        retired,
        fence: r.replica.fence(),
        created_ms: now_ms,
        clustered: r.newest.clustered || r.manifest.clustered || !r.replica.peers().is_empty(),
        ..r.manifest.clone()
    };
    install_manifest(fs, dir, &m)?;
    r.replica.set_boot(m.boot);
    r.report.boot = m.boot;
    r.previous = Some(std::mem::replace(&mut r.manifest, m));
    Ok(())
}

/// Installs the manifest of a clean close: the log ends exactly at `log_end`.
pub(crate) fn record_clean_close(
    fs: &dyn Vfs,
    dir: &Path,
    current: &Manifest,
    log_end: u64,
    fence: Option<FenceReason>,
    now_ms: u64,
) -> Result<Manifest> {
    let m = Manifest {
        generation: current.generation + 1,
        log_end,
        clean: true,
        fence,
        created_ms: now_ms,
        ..current.clone()
    };
    install_manifest(fs, dir, &m)?;
    Ok(m)
}

/// Installs a manifest that records the replica as clustered (its first member was just
/// added), unless `current` already does.
pub(crate) fn record_clustered(
    fs: &dyn Vfs,
    dir: &Path,
    current: &Manifest,
    now_ms: u64,
) -> Result<Option<Manifest>> {
    if current.clustered {
        return Ok(None);
    }
    let m = Manifest {
        generation: current.generation + 1,
        clustered: true,
        created_ms: now_ms,
        ..current.clone()
    };
    install_manifest(fs, dir, &m)?;
    Ok(Some(m))
}

/// Moves a damaged store directory aside; returns where.
fn quarantine(fs: &Arc<dyn Vfs>, dir: &Path, now_ms: u64) -> Result<PathBuf> {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".quarantine-{now_ms}"));
    let to = dir.with_file_name(name);
    fs.rename(dir, &to)?;
    fs.sync_dir(crate::fs::parent_dir(dir))?;
    Ok(to)
}
