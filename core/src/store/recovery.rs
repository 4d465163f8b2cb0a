//! Recovery: manifest -> base -> deltas -> WAL tail, every checksum verified.
//!
//! The newest manifest generation that verifies is tried first, with its live chain, then
//! its fallback chain, then the other slot's generation (whose files and WAL are kept until
//! the next snapshot). What could not be used, and why, goes into the [`RecoveryReport`];
//! when nothing works the error names every failure and the WAL range that is gone. What
//! the recovered state means for this replica (is anything acknowledged missing, must it
//! continue as a new incarnation) is decided in `open.rs`.

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
use crate::wal::{self, Wal, WalConfig, WalRecovery};

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
    /// This run's boot number.
    pub boot: u64,
    /// Whether the previous run closed cleanly (the manifest recorded where its log ended).
    pub clean_shutdown: bool,
    /// Every record up to this was durable as the newest manifest recorded.
    pub log_end_recorded: u64,
    /// Records that were durable but are gone (damage before the recorded end, or what a
    /// damaged log had after the damage), as `(first, last)`; `last` is unknown (0) when the
    /// damage hid it. Only [`super::RecoveryMode::RebuildFromPeers`] opens with a loss;
    /// peers refill it.
    pub lost: Option<(u64, u64)>,
    /// The incarnation this replica was before it continued as a new one (I2), when it did.
    pub reincarnated_from: Option<crate::clock::ReplicaId>,
    /// Why reads and writes are refused until the replica has caught up, if they are.
    pub fence: Option<crate::replicate::FenceReason>,
    /// How long recovery took.
    pub elapsed: Duration,
}

/// A recovered replica and its log.
pub(crate) struct Recovered {
    pub(crate) replica: Replica,
    pub(crate) wal: Wal,
    /// The manifest whose chain was loaded (the live chain, or a fallback put in its place).
    pub(crate) manifest: Manifest,
    /// The newest manifest that verifies: its boot, log end and clean flag are the record.
    pub(crate) newest: Manifest,
    /// The other slot's manifest, if it verifies.
    pub(crate) previous: Option<Manifest>,
    pub(crate) report: RecoveryReport,
}

/// Whether `e` means "this generation's data is damaged or missing" (try an older one). A key
/// that is not configured or a tag that fails is not: it stops recovery at once, before
/// anything is changed (`crate::crypto`).
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
        encryption: config.encryption.clone(),
        ..WalConfig::default()
    }
}

/// The chains to try, best first: each valid manifest's live chain, then its fallback.
pub(crate) fn candidates(valid: &[Manifest]) -> Vec<Manifest> {
    labelled_candidates(valid)
        .into_iter()
        .map(|(m, _)| m)
        .collect()
}

/// The chains a store keeps whole and that must therefore load: the newest manifest's live
/// chain and its fallback, and the other slot's live chain (its own fallback may already
/// be deleted).
pub(crate) fn kept_chains(valid: &[Manifest]) -> Vec<Manifest> {
    let mut out: Vec<Manifest> = Vec::new();
    let newest = valid
        .first()
        .into_iter()
        .flat_map(|m| std::iter::once(m.clone()).chain(m.with_fallback()));
    for c in newest.chain(valid.iter().skip(1).cloned()) {
        if !out.iter().any(|o| o.current() == c.current()) {
            out.push(c);
        }
    }
    out
}

/// [`candidates`], each with how a report names it ("manifest generation 7", "manifest
/// generation 7, fallback chain").
fn labelled_candidates(valid: &[Manifest]) -> Vec<(Manifest, String)> {
    let mut out: Vec<(Manifest, String)> = Vec::new();
    for m in valid {
        let live = (m.clone(), format!("manifest generation {}", m.generation));
        let fallback = m.with_fallback().map(|f| {
            let label = format!("manifest generation {}, fallback chain", m.generation);
            (f, label)
        });
        for (c, label) in std::iter::once(live).chain(fallback) {
            if !out.iter().any(|(o, _)| o.current() == c.current()) {
                out.push((c, label));
            }
        }
    }
    out
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
    for &old in &m.retired {
        replica.retire(crate::clock::ReplicaId::from_region(&m.region, old));
    }
    let mut meta = None;
    for snap in m.chain() {
        let path = layout::snap_dir(dir).join(&snap.file);
        let keys = config.encryption.as_ref();
        let (header, file_meta) = read_snapshot_pipelined(fs, &path, keys, |entry| match entry {
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
    // The manifest is newer than the chain's meta; the WAL replay that follows is newer
    // still (I4: a fence outlives restarts until it is lifted).
    replica.set_fence(m.fence);
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
    on_damage: WalRecovery,
) -> Result<(Replica, Wal, wal::RecoveryReport)> {
    let mut replica = load_chain(fs.as_ref(), dir, m, config, time.clone())?;
    let wal_dir = layout::wal_dir(dir);
    let (wal, report) = Wal::open(
        fs.clone(),
        &wal_dir,
        WalConfig {
            recovery: on_damage,
            ..wal_config(config)
        },
        m.covers_seq(),
        |seq, body| replay_record(&mut replica, &wal_dir, seq, body),
    )?;
    replica.track_durability(wal.durable_seq());
    Ok((replica, wal, report))
}

/// Recovers the store in `dir` (already locked by the caller), or creates it. Damage in the
/// log stops recovery unless `on_damage` keeps the prefix before it.
pub(crate) fn recover(
    fs: &Arc<dyn Vfs>,
    dir: &Path,
    config: &StoreConfig,
    time: &Arc<dyn TimeSource>,
    on_damage: WalRecovery,
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
    if let Some(m) = slots.valid.iter().find(|m| m.region != config.region) {
        return Err(Error::InvalidArgument(format!(
            "{} holds region {:?}, not {:?}",
            dir.display(),
            m.region,
            config.region
        )));
    }
    let newest = slots.valid[0].clone();
    for (m, label) in labelled_candidates(&slots.valid) {
        match try_generation(fs, dir, &m, config, time, on_damage) {
            Ok((replica, wal, wal_report)) => {
                report.incarnation = m.incarnation;
                report.manifest_generation = m.generation;
                report.snapshots = m.chain().map(|s| s.file.clone()).collect();
                report.sessions = replica.sessions().count();
                report.covers_seq = m.covers_seq();
                report.wal = wal_report;
                report.elapsed = started.elapsed();
                let previous = slots.valid.get(1).cloned();
                return Ok(Recovered {
                    replica,
                    wal,
                    manifest: m,
                    newest,
                    previous,
                    report,
                });
            }
            Err(e) if is_damage(&e) => report.fallbacks.push(format!("{label}: {e}")),
            Err(e) => return Err(e),
        }
    }
    let wal_dir = layout::wal_dir(dir);
    let held = wal::verify_with_keys(fs.as_ref(), &wal_dir, 0, config.encryption.as_ref())
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
        newest: manifest.clone(),
        manifest,
        previous: None,
        report,
    })
}
