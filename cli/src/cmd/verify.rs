//! `session-ha verify DIR`: every checksum of a store directory, read-only
//! ([`session_ha::store::verify_dir_with_keys`]). Exit 0 when intact (warnings allowed), 1
//! with the problems when not. Encrypted files are checked by checksum without `--key-file`
//! (a warning names the key) and authenticated with it.

use std::path::Path;

use session_ha::store::{verify_dir_with_keys, FileCheck, VerifyReport};
use session_ha::KeyRing;

use super::{problem_kind, Ui};
use crate::json::{Obj, Value};
use crate::progress::Pass;
use crate::report::{Exit, Failure, Report};
use crate::store_dir::require_store;
use crate::text::{bullets, count, pairs, rel, size, Table};

/// Runs the command.
///
/// # Errors
/// DIR is not a store, or cannot be listed.
pub fn run(dir: &Path, keys: Option<&KeyRing>, ui: Ui) -> Result<Report, Failure> {
    let listing = require_store(dir)?;
    let pass = Pass::start(ui.progress, "verify", Some(listing.total_bytes()));
    let result = verify_dir_with_keys(&*pass.fs(), dir, keys);
    pass.finish();
    let r = result?;
    let exit = if r.is_intact() { Exit::Ok } else { Exit::No };
    Ok(Report {
        exit,
        json: json(dir, &r),
        text: text(dir, &r),
    })
}

fn check_json(dir: &Path, c: &FileCheck, entries: bool) -> Value {
    let o = Obj::new()
        .field("file", rel(dir, &c.file))
        .field("bytes", c.bytes);
    let o = if entries {
        o.field("entries", c.entries)
    } else {
        o
    };
    let o = o.field("error", c.error.clone());
    if entries {
        o.field("key_id", c.key_id.map(|k| k.to_string()))
            .field("checksums_only", c.checksums_only)
            .into()
    } else {
        o.into()
    }
}

fn json(dir: &Path, r: &VerifyReport) -> Obj {
    let w = &r.wal;
    let segments: Vec<Value> = w
        .segments
        .iter()
        .map(|s| {
            Obj::new()
                .field("file", rel(dir, &s.path))
                .field("first_seq", s.first_seq)
                .field("records", s.records)
                .field("bytes", s.bytes)
                .field("key_id", s.key_id.map(|k| k.to_string()))
                .into()
        })
        .collect();
    let problems: Vec<Value> = w
        .problems
        .iter()
        .map(|p| {
            let (kind, detail) = problem_kind(&p.what);
            Obj::new()
                .field("file", rel(dir, &p.file))
                .field("offset", p.offset)
                .field("kind", kind)
                .field("corruption", p.is_corruption())
                .field("detail", detail)
                .into()
        })
        .collect();
    let files =
        |v: &[std::path::PathBuf]| -> Vec<String> { v.iter().map(|p| rel(dir, p)).collect() };
    let wal = Obj::new()
        .field("segments", Value::Array(segments))
        .field("records", w.records)
        .field("first_seq", w.first_seq)
        .field("last_seq", w.last_seq)
        .field("problems", Value::Array(problems))
        .field("broken_files", files(&w.broken_files))
        .field("temp_files", files(&w.temp_files));
    Obj::new()
        .field("dir", dir)
        .field("intact", r.is_intact())
        .field("generation", r.generation)
        .field(
            "manifests",
            r.manifests
                .iter()
                .map(|c| check_json(dir, c, false))
                .collect::<Vec<_>>(),
        )
        .field(
            "snapshots",
            r.snapshots
                .iter()
                .map(|c| check_json(dir, c, true))
                .collect::<Vec<_>>(),
        )
        .field("orphans", files(&r.orphans))
        .field("wal", wal)
        .field("problems", r.problems.clone())
        .field("warnings", r.warnings.clone())
}

fn text(dir: &Path, r: &VerifyReport) -> String {
    let verdict = if r.is_intact() {
        "intact".to_string()
    } else {
        let n = r.problems.len();
        format!("DAMAGED: {n} problem{}", if n == 1 { "" } else { "s" })
    };
    let mut out = format!("verify {}: {verdict}\n\n", dir.display());
    let w = &r.wal;
    let snap_bytes: u64 = r.snapshots.iter().map(|c| c.bytes).sum();
    let entries: u64 = r.snapshots.iter().map(|c| c.entries).sum();
    let seqs = match (w.first_seq, w.last_seq) {
        (Some(a), Some(b)) => format!(", seq {a}..{b}"),
        _ => String::new(),
    };
    out.push_str(&pairs(
        2,
        &[
            (
                "generation",
                r.generation
                    .map_or("none verifies".into(), |g| g.to_string()),
            ),
            ("manifest slots", r.manifests.len().to_string()),
            (
                "snapshots",
                format!(
                    "{}, {}, {entries} entries",
                    count(r.snapshots.len() as u64, "file"),
                    size(snap_bytes),
                ),
            ),
            (
                "wal",
                format!(
                    "{}, {}{seqs}, {}",
                    count(w.segments.len() as u64, "segment"),
                    count(w.records, "record"),
                    size(w.segments.iter().map(|s| s.bytes).sum())
                ),
            ),
        ],
    ));
    out.push_str("\nproblems\n");
    out.push_str(&bullets(2, &r.problems));
    if !r.warnings.is_empty() {
        out.push_str("\nwarnings\n");
        out.push_str(&bullets(2, &r.warnings));
    }
    let mut t = Table::new(&["file", ">bytes", ">entries", "status"]);
    let status = |e: &Option<String>| e.clone().unwrap_or_else(|| "ok".into());
    for c in &r.manifests {
        t.row(vec![
            rel(dir, &c.file),
            c.bytes.to_string(),
            String::new(),
            status(&c.error),
        ]);
    }
    for c in &r.snapshots {
        t.row(vec![
            rel(dir, &c.file),
            c.bytes.to_string(),
            c.entries.to_string(),
            status(&c.error),
        ]);
    }
    for s in &w.segments {
        let found: Vec<String> = w
            .problems
            .iter()
            .filter(|p| p.file == s.path)
            .map(|p| {
                let (kind, detail) = problem_kind(&p.what);
                format!("{kind} at {}: {detail}", p.offset)
            })
            .collect();
        t.row(vec![
            rel(dir, &s.path),
            s.bytes.to_string(),
            s.records.to_string(),
            if found.is_empty() {
                "ok".into()
            } else {
                found.join("; ")
            },
        ]);
    }
    out.push_str("\nfiles checked\n");
    out.push_str(&t.render(2));
    let others: Vec<String> = r
        .orphans
        .iter()
        .map(|p| format!("{} (orphan snapshot: no manifest names it)", rel(dir, p)))
        .chain(
            w.broken_files
                .iter()
                .map(|p| format!("{} (torn tail cut off by an earlier recovery)", rel(dir, p))),
        )
        .chain(
            w.temp_files
                .iter()
                .map(|p| format!("{} (temporary, removed on open)", rel(dir, p))),
        )
        .collect();
    if !others.is_empty() {
        out.push_str("\nother files\n");
        out.push_str(&bullets(2, &others));
    }
    out
}
