//! `session-ha recover DIR`: what opening the store would do, found without changing
//! anything ([`session_ha::store::dry_run_recovery`]). Exit 0 when recovery would succeed,
//! 1 when it would fail (an encrypted store without `--key-file` would: the key is named).

use std::path::Path;

use session_ha::store::{dry_run_recovery_with_keys, RecoveryPlan};
use session_ha::KeyRing;

use super::Ui;
use crate::json::Obj;
use crate::progress::Pass;
use crate::report::{Exit, Failure, Report};
use crate::store_dir::require_store;
use crate::text::{bullets, pairs};

/// Runs the command.
///
/// # Errors
/// DIR is not a store, or cannot be read.
pub fn run(dir: &Path, keys: Option<&KeyRing>, ui: Ui) -> Result<Report, Failure> {
    let listing = require_store(dir)?;
    let pass = Pass::start(
        ui.progress,
        "recover (dry run)",
        Some(listing.total_bytes()),
    );
    let result = dry_run_recovery_with_keys(&*pass.fs(), dir, keys);
    pass.finish();
    let plan = result?;
    let exit = if plan.failure.is_none() {
        Exit::Ok
    } else {
        Exit::No
    };
    Ok(Report {
        exit,
        json: json(dir, &plan),
        text: text(dir, &plan),
    })
}

/// The snapshot files as paths relative to DIR, like every other command reports files.
fn snap_paths(p: &RecoveryPlan) -> Vec<String> {
    p.snapshots.iter().map(|f| format!("snap/{f}")).collect()
}

fn json(dir: &Path, p: &RecoveryPlan) -> Obj {
    Obj::new()
        .field("dir", dir)
        .field("would_succeed", p.failure.is_none())
        .field("generation", p.generation)
        .field("snapshots", snap_paths(p))
        .field("sessions", p.sessions)
        .field("covers_seq", p.covers_seq)
        .field("records_to_replay", p.records_to_replay)
        .field("bytes_to_truncate", p.bytes_to_truncate)
        .field("fallbacks", p.fallbacks.clone())
        .field("failure", p.failure.clone())
}

fn text(dir: &Path, p: &RecoveryPlan) -> String {
    let outcome = match (&p.failure, p.fallbacks.is_empty()) {
        (None, true) => "recovery would succeed",
        (None, false) => "recovery would succeed, falling back past damage (see fallbacks)",
        (Some(_), _) => "RECOVERY WOULD FAIL",
    };
    let mut out = format!(
        "recover {} (dry run: nothing was changed): {outcome}\n\n",
        dir.display()
    );
    let truncate = if p.bytes_to_truncate > 0 {
        format!(
            "{} (torn WAL tail, kept in a .broken file)",
            p.bytes_to_truncate
        )
    } else {
        "0".into()
    };
    out.push_str(&pairs(
        2,
        &[
            (
                "generation",
                p.generation.map_or("none".into(), |g| g.to_string()),
            ),
            ("sessions in snapshots", p.sessions.to_string()),
            ("snapshots cover WAL seq", p.covers_seq.to_string()),
            ("records to replay", p.records_to_replay.to_string()),
            ("bytes to truncate", truncate),
        ],
    ));
    out.push_str("\nsnapshots to load\n");
    out.push_str(&bullets(2, &snap_paths(p)));
    out.push_str("\nfallbacks (generations or slots skipped)\n");
    out.push_str(&bullets(2, &p.fallbacks));
    if let Some(why) = &p.failure {
        out.push_str(&format!("\nfailure\n  {why}\n"));
    }
    out
}
