//! `session-ha export DIR FILE`: a consistent, self-verifying backup of a closed store.
//! The store is opened as a restarting node would (region from its newest manifest, no
//! maintenance thread, no snapshots), [`Store::backup`] writes FILE and reads it back whole,
//! and the store is closed again. A store held by a running node is locked: that is an
//! answer (exit 1) pointing at the node's own backup call. With `--key-file` the store is
//! opened with that key ring and the backup is encrypted under its current key.

use std::path::Path;
use std::sync::Arc;

use session_ha::fs::OsFs;
use session_ha::snapshot::read_slots;
use session_ha::store::{BackupReport, RecoveryReport};
use session_ha::{Error, KeyRing, ReplicaId, Store, StoreConfig, WallClock};

use super::{vv_json, vv_text, Ui};
use crate::json::Obj;
use crate::progress::Pass;
use crate::report::{Exit, Failure, Report};
use crate::store_dir::require_store;
use crate::text::{bullets, pairs, size};

/// Runs the command.
///
/// # Errors
/// DIR is not a store, FILE exists, the store is locked or too damaged to open, I/O errors.
pub fn run(dir: &Path, file: &Path, keys: Option<&KeyRing>, ui: Ui) -> Result<Report, Failure> {
    let listing = require_store(dir)?;
    if file.symlink_metadata().is_ok() {
        return Err(Failure::new(
            Exit::Usage,
            "exists",
            format!("{} exists; export never overwrites", file.display()),
        )
        .hint("choose a new file name"));
    }
    let parent = session_ha::fs::parent_dir(file);
    if !parent.is_dir() {
        return Err(Failure::new(
            Exit::Usage,
            "not_found",
            format!("{}: no such directory for the backup", parent.display()),
        ));
    }
    let slots = read_slots(&OsFs, dir)?;
    let Some(newest) = slots.valid.first() else {
        return Err(Failure::new(
            Exit::No,
            "data_loss",
            format!(
                "no manifest slot of {} verifies, so the store cannot be opened",
                dir.display()
            ),
        )
        .hint("`session-ha recover DIR` says what is damaged"));
    };
    let config = StoreConfig {
        snapshot_interval: None,
        tick_interval: None,
        encryption: keys.cloned(),
        ..StoreConfig::new(&newest.region)
    };
    let pass = Pass::start(ui.progress, "export", Some(listing.total_bytes()));
    let (store, recovery) = match Store::open_with(pass.fs(), dir, config, Arc::new(WallClock)) {
        Ok(opened) => opened,
        Err(e) => return Err(open_failure(e)),
    };
    let backup = store.backup(file);
    let closed = store.close();
    pass.finish();
    let backup = backup?;
    let mut warnings = Vec::new();
    if let Err(e) = closed {
        warnings.push(format!(
            "closing the store after the backup failed: {e} (the backup is complete and verified)"
        ));
    }
    let incarnation = store.incarnation();
    Ok(Report {
        exit: Exit::Ok,
        json: json(dir, &backup, &recovery, incarnation, &warnings),
        text: text(dir, &backup, &recovery, incarnation, &warnings),
    })
}

fn open_failure(e: Error) -> Failure {
    match e {
        Error::Locked { .. } => Failure::from(e).hint(
            "a running node holds this store: back it up through the node, \
             erlmcp_session_ha:backup/1 (Erlang) or Store::backup (Rust)",
        ),
        Error::Corrupt { .. } | Error::DataLoss(_) => {
            Failure::from(e).hint("`session-ha verify DIR` and `session-ha recover DIR` say more")
        }
        e => Failure::from(e),
    }
}

/// A size in binary units, with the exact count when that differs.
fn size_exact(bytes: u64) -> String {
    if bytes < 1024 {
        size(bytes)
    } else {
        format!("{} ({bytes} bytes)", size(bytes))
    }
}

fn json(
    dir: &Path,
    b: &BackupReport,
    r: &RecoveryReport,
    incarnation: u32,
    warnings: &[String],
) -> Obj {
    let recovery = Obj::new()
        .field("generation", r.manifest_generation)
        .field("records_replayed", r.wal.records_replayed)
        .field("bytes_truncated", r.wal.bytes_truncated)
        .field("fallbacks", r.fallbacks.clone());
    Obj::new()
        .field("dir", dir)
        .field("file", b.file.as_path())
        .field("region", &r.region)
        .field("incarnation", incarnation)
        .field("sessions", b.sessions)
        .field("bytes", b.bytes)
        .field("version_vector", vv_json(&b.vv))
        .field("verified", true)
        .field("elapsed_ms", b.elapsed.as_millis() as u64)
        .field("recovery", recovery)
        .field("warnings", warnings.to_vec())
}

fn text(
    dir: &Path,
    b: &BackupReport,
    r: &RecoveryReport,
    incarnation: u32,
    warnings: &[String],
) -> String {
    let mut out = format!(
        "exported {} to {}: written and read back whole\n\n",
        dir.display(),
        b.file.display()
    );
    let mut recovery = format!(
        "generation {}, {} WAL records replayed",
        r.manifest_generation, r.wal.records_replayed
    );
    if r.wal.bytes_truncated > 0 {
        recovery.push_str(&format!(
            ", {} bytes of torn WAL tail cut off (kept in a .broken file)",
            r.wal.bytes_truncated
        ));
    }
    out.push_str(&pairs(
        2,
        &[
            ("region", r.region.clone()),
            ("incarnation", incarnation.to_string()),
            ("sessions", b.sessions.to_string()),
            ("size", size_exact(b.bytes)),
            (
                "version vector",
                vv_text(&b.vv, Some(ReplicaId::from_region(&r.region, incarnation))),
            ),
            ("store opened", recovery),
            ("elapsed", format!("{:.2} s", b.elapsed.as_secs_f64())),
        ],
    ));
    if !r.fallbacks.is_empty() {
        out.push_str("\nrecovery fallbacks\n");
        out.push_str(&bullets(2, &r.fallbacks));
    }
    if !warnings.is_empty() {
        out.push_str("\nwarnings\n");
        out.push_str(&bullets(2, warnings));
    }
    out
}
