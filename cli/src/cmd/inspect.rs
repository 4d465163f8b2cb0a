//! `session-ha inspect DIR`: what a store directory holds. Both manifest slots and their
//! chains, the snapshot and WAL files on disk (from directory metadata), and the state
//! opening the store would recover ([`session_ha::store::recovered_state`], loaded in memory,
//! read-only). Checksums are verify's business; inspect shows what is there.

use std::path::Path;

use session_ha::snapshot::{Manifest, SnapKind, SnapRef, SLOTS};
use session_ha::store::{recovered_state_with_keys, RecoveredState};
use session_ha::KeyRing;
use session_ha::ReplicaId;

use super::{vv_json, vv_text, Ui};
use crate::json::{Obj, Value};
use crate::progress::Pass;
use crate::report::{Exit, Failure, Report};
use crate::store_dir::{require_store, segment_first_seq, Entry, Listing};
use crate::text::{bullets, pairs, size, utc, Table};

/// One manifest slot as found.
struct Slot {
    name: &'static str,
    bytes: u64,
    manifest: Result<Manifest, String>,
}

/// Everything inspect found.
struct Found {
    listing: Listing,
    slots: Vec<Slot>,
    /// Generation of the newest valid manifest (the one recovery tries first).
    live: Option<u64>,
    state: Option<RecoveredState>,
}

/// Runs the command.
///
/// # Errors
/// DIR is not a store, or cannot be read.
pub fn run(dir: &Path, keys: Option<&KeyRing>, ui: Ui) -> Result<Report, Failure> {
    let listing = require_store(dir)?;
    let pass = Pass::start(ui.progress, "inspect", Some(listing.total_bytes()));
    let fs = pass.fs();
    let mut slots = Vec::new();
    for e in &listing.manifests {
        let Some(name) = SLOTS.iter().copied().find(|s| *s == e.name) else {
            continue;
        };
        let manifest = fs
            .read_file(&dir.join(name))
            .map_err(|e| e.to_string())
            .and_then(|b| Manifest::decode(&b).map_err(|e| e.to_string()));
        slots.push(Slot {
            name,
            bytes: e.bytes,
            manifest,
        });
    }
    let state = recovered_state_with_keys(&*fs, dir, keys);
    pass.finish();
    let state = state?;
    let live = slots
        .iter()
        .filter_map(|s| s.manifest.as_ref().ok().map(|m| m.generation))
        .max();
    let found = Found {
        listing,
        slots,
        live,
        state,
    };
    Ok(Report {
        exit: Exit::Ok,
        json: json(dir, &found),
        text: text(dir, &found),
    })
}

fn kind_name(k: SnapKind) -> &'static str {
    match k {
        SnapKind::Base => "base",
        SnapKind::Delta => "delta",
        SnapKind::Backup => "backup",
    }
}

impl Found {
    fn valid(&self) -> impl Iterator<Item = &Manifest> {
        self.slots.iter().filter_map(|s| s.manifest.as_ref().ok())
    }

    fn newest(&self) -> Option<&Manifest> {
        self.valid().max_by_key(|m| m.generation)
    }

    fn on_disk(&self, file: &str) -> Option<&Entry> {
        self.listing.snap.iter().find(|e| e.name == file)
    }

    /// "live", "previous", "orphan", "temp" or "other" for a file in `snap/`.
    fn snap_role(&self, name: &str) -> &'static str {
        let named_by = |m: &Manifest| m.chain().any(|r| r.file == name);
        if name.ends_with(".tmp") {
            "temp"
        } else if self.newest().is_some_and(named_by) {
            "live"
        } else if self.valid().any(named_by) {
            "previous"
        } else if name.starts_with("snap-") {
            "orphan"
        } else {
            "other"
        }
    }

    fn is_live(&self, m: &Manifest) -> bool {
        Some(m.generation) == self.live
    }
}

fn chain_json(f: &Found, r: &SnapRef) -> Value {
    let disk = f.on_disk(&r.file);
    Obj::new()
        .field("file", format!("snap/{}", r.file))
        .field("kind", kind_name(r.kind))
        .field("generation", r.generation)
        .field("covers_seq", r.covers_seq)
        .field("bytes", r.bytes)
        .field("present", disk.is_some())
        .field("bytes_on_disk", disk.map(|e| e.bytes))
        .into()
}

fn slot_json(f: &Found, s: &Slot) -> Value {
    let o = Obj::new()
        .field("slot", s.name)
        .field("bytes", s.bytes)
        .field("valid", s.manifest.is_ok())
        .field("error", s.manifest.as_ref().err().cloned());
    let m = s.manifest.as_ref().ok();
    o.field("live", m.is_some_and(|m| f.is_live(m)))
        .field("generation", m.map(|m| m.generation))
        .field("region", m.map(|m| m.region.clone()))
        .field("incarnation", m.map(|m| m.incarnation))
        .field(
            "replica_id",
            m.map(|m| ReplicaId::from_region(&m.region, m.incarnation).to_string()),
        )
        .field("wal_from", m.map(|m| m.wal_from))
        .field("covers_seq", m.map(Manifest::covers_seq))
        .field("created_ms", m.map(|m| m.created_ms))
        .field(
            "chain",
            Value::Array(
                m.map(|m| m.chain().map(|r| chain_json(f, r)).collect())
                    .unwrap_or_default(),
            ),
        )
        .into()
}

fn state_json(s: &RecoveredState) -> Value {
    let r = &s.replica;
    Obj::new()
        .field("generation", s.generation)
        .field("records_replayed", s.records_replayed)
        .field("replica_id", r.id.to_string())
        .field("sessions", r.sessions)
        .field("live_sessions", r.live_sessions)
        .field("version_vector", vv_json(&r.vv))
        .field("digest_root", r.digest_root.to_string())
        .field(
            "removed",
            r.removed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )
        .into()
}

fn files_json(entries: &[&Entry], sub: &str) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                Obj::new()
                    .field("file", format!("{sub}/{}", e.name))
                    .field("bytes", e.bytes)
                    .into()
            })
            .collect(),
    )
}

fn json(dir: &Path, f: &Found) -> Obj {
    let newest = f.newest();
    let snapshot_files: Vec<Value> = f
        .listing
        .snap
        .iter()
        .map(|e| {
            Obj::new()
                .field("file", format!("snap/{}", e.name))
                .field("bytes", e.bytes)
                .field("role", f.snap_role(&e.name))
                .into()
        })
        .collect();
    let orphans: Vec<String> = f
        .listing
        .snap
        .iter()
        .filter(|e| f.snap_role(&e.name) == "orphan")
        .map(|e| format!("snap/{}", e.name))
        .collect();
    let (segs, rest): (Vec<&Entry>, Vec<&Entry>) = f
        .listing
        .wal
        .iter()
        .partition(|e| segment_first_seq(&e.name).is_some());
    let segments: Vec<Value> = segs
        .iter()
        .map(|e| {
            Obj::new()
                .field("file", format!("wal/{}", e.name))
                .field("first_seq", segment_first_seq(&e.name))
                .field("bytes", e.bytes)
                .into()
        })
        .collect();
    let broken: Vec<&Entry> = rest
        .iter()
        .copied()
        .filter(|e| e.name.ends_with(".broken"))
        .collect();
    let others: Vec<&Entry> = rest
        .iter()
        .copied()
        .filter(|e| !e.name.ends_with(".broken"))
        .collect();
    let wal = Obj::new()
        .field("segments", Value::Array(segments))
        .field("bytes", segs.iter().map(|e| e.bytes).sum::<u64>())
        .field("broken_files", files_json(&broken, "wal"))
        .field("other_files", files_json(&others, "wal"));
    Obj::new()
        .field("dir", dir)
        .field("region", newest.map(|m| m.region.clone()))
        .field("incarnation", newest.map(|m| m.incarnation))
        .field("live_generation", f.live)
        .field("bytes", f.listing.total_bytes())
        .field(
            "manifests",
            f.slots.iter().map(|s| slot_json(f, s)).collect::<Vec<_>>(),
        )
        .field("snapshot_files", Value::Array(snapshot_files))
        .field("orphans", orphans)
        .field("wal", wal)
        .field("state", f.state.as_ref().map(state_json))
        .field(
            "state_error",
            f.state.is_none().then(|| {
                "no manifest generation recovers; `session-ha recover DIR` says why".to_string()
            }),
        )
}

fn text(dir: &Path, f: &Found) -> String {
    let mut out = format!("store {}\n", dir.display());
    let newest = f.newest();
    let head: Vec<(&str, String)> = match newest {
        Some(m) => vec![
            ("region", m.region.clone()),
            (
                "incarnation",
                format!(
                    "{} (replica {})",
                    m.incarnation,
                    ReplicaId::from_region(&m.region, m.incarnation)
                ),
            ),
            ("live generation", m.generation.to_string()),
            ("size on disk", size(f.listing.total_bytes())),
        ],
        None => vec![("manifest", "NO SLOT VERIFIES".into())],
    };
    out.push_str(&pairs(2, &head));

    out.push_str("\nmanifest slots\n");
    let mut t = Table::new(&[
        "slot",
        ">generation",
        "region",
        ">incarnation",
        ">wal_from",
        "created (UTC)",
        "status",
    ]);
    for s in &f.slots {
        match &s.manifest {
            Ok(m) => t.row(vec![
                s.name.into(),
                m.generation.to_string(),
                m.region.clone(),
                m.incarnation.to_string(),
                m.wal_from.to_string(),
                utc(m.created_ms),
                if f.is_live(m) { "live" } else { "previous" }.into(),
            ]),
            Err(e) => t.row(vec![
                s.name.into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                format!("DAMAGED: {e}"),
            ]),
        }
    }
    out.push_str(&t.render(2));

    let mut valid: Vec<&Manifest> = f.valid().collect();
    valid.sort_by_key(|m| std::cmp::Reverse(m.generation));
    for m in valid {
        let role = if f.is_live(m) { "live" } else { "previous" };
        out.push_str(&format!(
            "\nchain of generation {} ({role}), covers WAL seq {}, replays from {}\n",
            m.generation,
            m.covers_seq(),
            m.wal_from
        ));
        let mut t = Table::new(&[
            "kind",
            "file",
            ">generation",
            ">covers_seq",
            ">bytes",
            "on disk",
        ]);
        for r in m.chain() {
            let disk = match f.on_disk(&r.file) {
                None => "MISSING".to_string(),
                Some(e) if e.bytes != r.bytes => format!("SIZE {} differs", e.bytes),
                Some(_) => "ok".into(),
            };
            t.row(vec![
                kind_name(r.kind).into(),
                format!("snap/{}", r.file),
                r.generation.to_string(),
                r.covers_seq.to_string(),
                r.bytes.to_string(),
                disk,
            ]);
        }
        if t.is_empty() {
            out.push_str("  no snapshot yet: everything is in the WAL\n");
        } else {
            out.push_str(&t.render(2));
        }
    }

    out.push_str("\nsnapshot files\n");
    let mut t = Table::new(&["file", ">bytes", "role"]);
    for e in &f.listing.snap {
        t.row(vec![
            format!("snap/{}", e.name),
            e.bytes.to_string(),
            f.snap_role(&e.name).into(),
        ]);
    }
    out.push_str(&if t.is_empty() {
        "  none\n".into()
    } else {
        t.render(2)
    });

    let mut t = Table::new(&["file", ">first_seq", ">bytes"]);
    let (mut wal_bytes, mut segments) = (0, 0);
    let mut others = Vec::new();
    for e in &f.listing.wal {
        match segment_first_seq(&e.name) {
            Some(first) => {
                wal_bytes += e.bytes;
                segments += 1;
                t.row(vec![
                    format!("wal/{}", e.name),
                    first.to_string(),
                    e.bytes.to_string(),
                ]);
            }
            None if e.name.ends_with(".broken") => others.push(format!(
                "wal/{} ({} bytes: a torn tail cut off by an earlier recovery)",
                e.name, e.bytes
            )),
            None => others.push(format!("wal/{} ({} bytes)", e.name, e.bytes)),
        }
    }
    out.push_str(&format!(
        "\nwal segments ({segments}, {})\n",
        size(wal_bytes)
    ));
    out.push_str(&if t.is_empty() {
        "  none\n".into()
    } else {
        t.render(2)
    });
    if !others.is_empty() {
        out.push_str("other wal files\n");
        out.push_str(&bullets(2, &others));
    }

    match &f.state {
        Some(s) => {
            let r = &s.replica;
            out.push_str(&format!(
                "\nrecovered state (generation {} + {} WAL records, loaded read-only)\n",
                s.generation, s.records_replayed
            ));
            let removed: Vec<String> = r.removed.iter().map(ToString::to_string).collect();
            out.push_str(&pairs(
                2,
                &[
                    (
                        "sessions",
                        format!(
                            "{} ({} live, {} ended)",
                            r.sessions,
                            r.live_sessions,
                            r.sessions.saturating_sub(r.live_sessions)
                        ),
                    ),
                    ("version vector", vv_text(&r.vv, Some(r.id))),
                    ("digest root", r.digest_root.to_string()),
                    (
                        "removed members",
                        if removed.is_empty() {
                            "none".into()
                        } else {
                            removed.join(", ")
                        },
                    ),
                ],
            ));
        }
        None => out.push_str(
            "\nrecovered state\n  NONE: no manifest generation recovers; \
             `session-ha recover DIR` says why\n",
        ),
    }
    out
}
