//! Recovery: manifest -> base -> deltas -> WAL tail, every checksum verified.
//!
//! The newest manifest generation that verifies is tried first; if its chain or the WAL it
//! needs is damaged, the previous generation (whose files and WAL are kept until the next
//! install) is tried. What could not be used, and why, goes into the [`RecoveryReport`]; when
//! no generation works the error names every failure and the WAL range that is gone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::StoreConfig;
use super::layout;
use crate::clock::TimeSource;
use crate::error::{Error, Result};
use crate::fs::Vfs;
use crate::replicate::{decode_changes, Change, Replica};
use crate::snapshot::{read_snapshot_pipelined, Manifest, SnapEntry};
use crate::wal::{self, Wal, WalConfig};

/// What opening a store found and did.
#[derive(Clone, Debug, Default)]
pub struct RecoveryReport {
    /// Region of the store.
    pub region: String,
    /// Incarnation of the replica.
    pub incarnation: u32,
    /// Whether the directory was new (nothing to recover).
    pub created: bool,
    /// Manifest generation recovered from.
    pub manifest_generation: u64,
    /// Snapshot files loaded, base first.
    pub snapshots: Vec<String>,
    /// Sessions held after recovery (ended ones included).
    pub sessions: usize,
    /// WAL records up to this were covered by the snapshots.
    pub covers_seq: u64,
    /// What the WAL's recovery found (records replayed, bytes truncated, broken files).
    pub wal: wal::RecoveryReport,
    /// Manifest generations (or slots) that could not be used, and why.
    pub fallbacks: Vec<String>,
    /// Where a damaged directory was moved ([`super::RecoveryMode::RebuildFromPeers`]).
    pub quarantined: Option<PathBuf>,
    /// How long recovery took.
    pub elapsed: Duration,
}

/// A recovered replica and its log.
pub(crate) struct Recovered {
    pub(crate) replica: Replica,
    pub(crate) wal: Wal,
    pub(crate) manifest: Manifest,
    pub(crate) previous: Option<Manifest>,
    pub(crate) report: RecoveryReport,
}

/// Whether `e` means "this generation's data is damaged or missing" (try an older one).
pub(crate) fn is_damage(e: &Error) -> bool {
    match e {
        Error::Corrupt { .. } | Error::DataLoss(_) => true,
        Error::Io { source, .. } => source.kind() == std::io::ErrorKind::NotFound,
        _ => false,
    }
}

/// The WAL configuration a store uses.
pub(crate) fn wal_config(config: &StoreConfig) -> WalConfig {
    WalConfig {
        fsync: config.fsync,
        segment_size: config.segment_size,
        writer: config.wal_writer,
        ..WalConfig::default()
    }
}

/// Loads the snapshot chain of `m` into a fresh replica (nothing is modified on disk).
pub(crate) fn load_chain(
    fs: &dyn Vfs,
    dir: &Path,
    m: &Manifest,
    config: &StoreConfig,
    time: Arc<dyn TimeSource>,
) -> Result<Replica> {
    let mut replica = Replica::new(&m.region, m.incarnation, config.replica.clone(), time);
    let mut meta = None;
    for snap in m.chain() {
        let path = layout::snap_dir(dir).join(&snap.file);
        let (header, file_meta) = read_snapshot_pipelined(fs, &path, |entry| match entry {
            SnapEntry::Session(id, state) => replica.restore_session(id, state),
            SnapEntry::Gone(id) => replica.forget_session(&id),
            SnapEntry::Meta(_) => {}
        })?;
        if header.generation != snap.generation
            || header.covers_seq != snap.covers_seq
            || header.kind != snap.kind
        {
            let why = format!(
                "{} is generation {} covering {} ({:?}), the manifest expects {} covering {} ({:?})",
                snap.file, header.generation, header.covers_seq, header.kind, snap.generation, snap.covers_seq, snap.kind
            );
            return Err(Error::DataLoss(why));
        }
        meta = Some(file_meta);
    }
    replica.finish_restore();
    if let Some(meta) = meta {
        replica.restore_meta(&meta);
    }
    // Snapshot content is durable already: only what the WAL replays is new.
    replica.take_dirty();
    Ok(replica)
}

/// Replays one WAL record into `replica`.
pub(crate) fn replay_record(
    replica: &mut Replica,
    wal_dir: &Path,
    seq: u64,
    body: &[u8],
) -> Result<()> {
    let changes: Vec<Change> = decode_changes(body).map_err(|source| Error::Corrupt {
        path: wal_dir.to_path_buf(),
        offset: seq,
        source,
    })?;
    for c in &changes {
        replica.replay(c);
    }
    Ok(())
}

fn try_generation(
    fs: &Arc<dyn Vfs>,
    dir: &Path,
    m: &Manifest,
    config: &StoreConfig,
    time: &Arc<dyn TimeSource>,
) -> Result<(Replica, Wal, wal::RecoveryReport)> {
    let mut replica = load_chain(fs.as_ref(), dir, m, config, time.clone())?;
    let wal_dir = layout::wal_dir(dir);
    let (wal, report) = Wal::open(
        fs.clone(),
        &wal_dir,
        wal_config(config),
        m.covers_seq(),
        |seq, body| replay_record(&mut replica, &wal_dir, seq, body),
    )?;
    replica.track_durability(wal.durable_seq());
    Ok((replica, wal, report))
}

/// Recovers the store in `dir` (already locked by the caller), or creates it.
pub(crate) fn recover(
    fs: &Arc<dyn Vfs>,
    dir: &Path,
    config: &StoreConfig,
    time: &Arc<dyn TimeSource>,
) -> Result<Recovered> {
    let started = Instant::now();
    let slots = crate::snapshot::read_slots(fs.as_ref(), dir)?;
    let mut report = RecoveryReport {
        region: config.region.clone(),
        ..RecoveryReport::default()
    };
    report
        .fallbacks
        .extend(slots.damaged.iter().map(|e| e.to_string()));
    if slots.valid.is_empty() {
        if slots.damaged.is_empty()
            && !layout::holds_wal(fs.as_ref(), dir)?
            && layout::holds_data(fs.as_ref(), dir)?
        {
            return Err(Error::InvalidArgument(format!(
                "{} holds snapshot files but no manifest and no log: an interrupted restore; run the restore again",
                dir.display()
            )));
        }
        if !slots.damaged.is_empty() || layout::holds_data(fs.as_ref(), dir)? {
            return Err(Error::DataLoss(format!(
                "{} holds data but no manifest verifies: {}",
                dir.display(),
                report.fallbacks.join("; ")
            )));
        }
        return create(fs, dir, config, time, report, started);
    }
    for (i, m) in slots.valid.iter().enumerate() {
        if m.region != config.region {
            return Err(Error::InvalidArgument(format!(
                "{} holds region {:?}, not {:?}",
                dir.display(),
                m.region,
                config.region
            )));
        }
        match try_generation(fs, dir, m, config, time) {
            Ok((replica, wal, wal_report)) => {
                report.incarnation = m.incarnation;
                report.manifest_generation = m.generation;
                report.snapshots = m.chain().map(|s| s.file.clone()).collect();
                report.sessions = replica.sessions().count();
                report.covers_seq = m.covers_seq();
                report.wal = wal_report;
                report.elapsed = started.elapsed();
                let previous = slots.valid.get(i + 1).cloned();
                return Ok(Recovered {
                    replica,
                    wal,
                    manifest: m.clone(),
                    previous,
                    report,
                });
            }
            Err(e) if is_damage(&e) => report
                .fallbacks
                .push(format!("manifest generation {}: {e}", m.generation)),
            Err(e) => return Err(e),
        }
    }
    let wal_dir = layout::wal_dir(dir);
    let held = wal::verify(fs.as_ref(), &wal_dir, 0)
        .ok()
        .and_then(|r| r.first_seq.zip(r.last_seq))
        .map_or("no WAL records".to_string(), |(a, b)| {
            format!("WAL records {a}..={b}")
        });
    let covered = slots
        .valid
        .iter()
        .map(Manifest::covers_seq)
        .min()
        .unwrap_or(0);
    Err(Error::DataLoss(format!(
        "no manifest generation recovers: {}; the snapshots covered WAL records up to {covered}, the log holds {held}",
        report.fallbacks.join("; ")
    )))
}

fn create(
    fs: &Arc<dyn Vfs>,
    dir: &Path,
    config: &StoreConfig,
    time: &Arc<dyn TimeSource>,
    mut report: RecoveryReport,
    started: Instant,
) -> Result<Recovered> {
    let incarnation = layout::new_incarnation(fs.as_ref());
    let manifest = Manifest::new(&config.region, incarnation, time.now_ms());
    fs.create_dir_all(&layout::snap_dir(dir))?;
    fs.sync_dir(dir)?;
    crate::snapshot::install_manifest(fs.as_ref(), dir, &manifest)?;
    let mut replica = Replica::new(
        &config.region,
        incarnation,
        config.replica.clone(),
        time.clone(),
    );
    let (wal, wal_report) = Wal::open(
        fs.clone(),
        &layout::wal_dir(dir),
        wal_config(config),
        0,
        |_, _| Ok(()),
    )?;
    replica.track_durability(wal.durable_seq());
    report.created = true;
    report.incarnation = incarnation;
    report.wal = wal_report;
    report.elapsed = started.elapsed();
    Ok(Recovered {
        replica,
        wal,
        manifest,
        previous: None,
        report,
    })
}
