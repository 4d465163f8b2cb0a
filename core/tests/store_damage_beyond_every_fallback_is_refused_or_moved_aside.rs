//! Damage that no manifest generation can recover from (both manifest slots, the base both
//! chains share, a WAL record in the middle of the log): under `RecoveryMode::Strict`
//! opening fails with `Error::DataLoss` whose message names the damaged files and the WAL
//! range, touching nothing. Under `RecoveryMode::RebuildFromPeers` damage to the log keeps
//! every record before it, sets the rest aside and continues as a new incarnation, naming
//! exactly the records lost (its peers refill them); damage to every snapshot chain moves the
//! directory aside whole to `<dir>.quarantine-<ms>` and the store reopens empty as a new
//! incarnation, fenced until its peers have refilled it. Damage a fallback can recover from
//! is never moved aside.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::{Path, PathBuf};

use common::store::{flip_bit, record_spans, segments, store_config, tree, Writes};
use session_ha::fs::OsFs;
use session_ha::replicate::FenceReason;
use session_ha::{Error, RecoveryMode, ReplicaId, Store, StoreConfig};

struct Damaged {
    _root: tempfile::TempDir,
    dir: PathBuf,
    incarnation: u32,
    writes: Writes,
    /// What the Strict error must name.
    named: Vec<String>,
}

/// A store with a base, a delta on it and a WAL tail (24 writes, one record each).
fn store() -> (tempfile::TempDir, PathBuf, u32, Writes, String, String) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let (store, _) = Store::open(&dir, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 12).unwrap();
    let base = store.snapshot().unwrap().file.unwrap();
    w.write_many(&store, 6).unwrap();
    let delta = store.snapshot().unwrap().file.unwrap();
    w.write_many(&store, 6).unwrap();
    let incarnation = store.incarnation();
    store.close().unwrap();
    (root, dir, incarnation, w, base, delta)
}

fn both_slots() -> Damaged {
    let (root, dir, incarnation, writes, _, _) = store();
    let mut named = Vec::new();
    for slot in ["MANIFEST-0", "MANIFEST-1"] {
        flip_bit(&dir.join(slot), 8 * 20 + 3);
        named.push(dir.join(slot).display().to_string());
    }
    Damaged {
        _root: root,
        dir,
        incarnation,
        writes,
        named,
    }
}

fn shared_base() -> Damaged {
    let (root, dir, incarnation, writes, base, _) = store();
    let path = dir.join("snap").join(base);
    flip_bit(&path, 8 * 50);
    let named = vec![
        path.display().to_string(),
        "fallback chain".into(),
        "the log holds WAL records".into(),
    ];
    Damaged {
        _root: root,
        dir,
        incarnation,
        writes,
        named,
    }
}

fn mid_log_record() -> Damaged {
    let (root, dir, incarnation, writes, _, _) = store();
    let (_, seg) = segments(&OsFs, &dir).pop().unwrap();
    let (at, _) = record_spans(&std::fs::read(&seg).unwrap())[1];
    flip_bit(&seg, 8 * (at + 17));
    let named = vec![format!("{} at offset {at}", seg.display())];
    Damaged {
        _root: root,
        dir,
        incarnation,
        writes,
        named,
    }
}

fn rebuild() -> StoreConfig {
    let mut c = store_config();
    c.recovery = RecoveryMode::RebuildFromPeers;
    c
}

fn strict_refuses(d: &Damaged, what: &str) {
    let before = tree(&d.dir);
    match Store::open(&d.dir, store_config()) {
        Err(Error::DataLoss(msg)) => {
            for n in &d.named {
                assert!(msg.contains(n.as_str()), "{what}: {n:?} not in {msg:?}");
            }
        }
        other => panic!("{what}: expected DataLoss, got {other:?}"),
    }
    assert_eq!(tree(&d.dir), before, "{what}: a refused open changed files");
}

fn moved_aside(d: &Damaged, what: &str) {
    let before = tree(&d.dir);
    let (store, report) = Store::open(&d.dir, rebuild()).unwrap();
    let q: &Path = report
        .quarantined
        .as_deref()
        .unwrap_or_else(|| panic!("{what}: not moved aside: {report:?}"));
    let name = q.file_name().unwrap().to_string_lossy().into_owned();
    let ms = name.strip_prefix("store.quarantine-").unwrap();
    assert!(ms.parse::<u64>().is_ok(), "{what}: {name}");
    assert_eq!(q.parent(), d.dir.parent());
    assert_eq!(tree(q), before, "{what}: the quarantined copy was changed");
    assert!(
        report
            .fallbacks
            .iter()
            .any(|f| f.starts_with("moved aside after: ")),
        "{what}: {:?}",
        report.fallbacks
    );
    assert_ne!(
        report.incarnation, d.incarnation,
        "{what}: a new incarnation"
    );
    assert_eq!(store.incarnation(), report.incarnation);
    // Empty, it would answer "no such session" for sessions its peers hold: it says it is
    // catching up instead, until they refilled it (or an operator lifts the fence).
    assert_eq!(report.fence, Some(FenceReason::Rebuilt));
    assert!(matches!(
        store.session_ids(),
        Err(Error::CatchingUp(FenceReason::Rebuilt))
    ));
    assert!(
        store.read(|r| r.sessions().count()) == 0,
        "{what}: not empty"
    );
    assert!(!d.writes.acked.is_empty());
    store.lift_fence().unwrap();

    // The new store works and stays; the quarantined directory stays as it was.
    let mut w = Writes::default();
    w.write_many(&store, 3).unwrap();
    store.close().unwrap();
    drop(store);
    let (store, report) = Store::open(&d.dir, rebuild()).unwrap();
    assert!(
        report.quarantined.is_none() && report.fallbacks.is_empty(),
        "{report:?}"
    );
    w.check(&store, what);
    assert_eq!(
        tree(q),
        before,
        "{what}: the quarantined copy was changed later"
    );
}

#[test]
fn strict_names_both_damaged_manifest_slots() {
    strict_refuses(&both_slots(), "both slots");
}

#[test]
fn strict_names_the_shared_base_and_the_wal_range() {
    strict_refuses(&shared_base(), "shared base");
}

#[test]
fn strict_names_the_damaged_wal_record() {
    strict_refuses(&mid_log_record(), "mid-log record");
}

#[test]
fn rebuild_from_peers_moves_both_damaged_slots_aside() {
    moved_aside(&both_slots(), "both slots");
}

#[test]
fn rebuild_from_peers_moves_a_damaged_shared_base_aside() {
    moved_aside(&shared_base(), "shared base");
}

#[test]
fn rebuild_from_peers_keeps_the_log_before_a_damaged_record_and_names_what_is_lost() {
    let d = mid_log_record();
    let (store, report) = Store::open(&d.dir, rebuild()).unwrap();
    assert!(report.quarantined.is_none(), "{report:?}");
    let cut = report
        .wal
        .damage_cut
        .clone()
        .expect("the damage cut the log");
    let kept = cut.kept_through;
    assert_eq!(report.lost, Some((kept + 1, 24)), "{report:?}");
    assert!(cut.error.contains(&d.named[0]), "{cut:?}");
    assert!(
        !report.wal.broken_files.is_empty(),
        "the damaged bytes are kept aside"
    );
    // It may have lost acknowledged records of its own: a new incarnation (I2).
    assert_ne!(store.incarnation(), d.incarnation);
    assert_eq!(
        report.reincarnated_from,
        Some(ReplicaId::from_region("us-east-1", d.incarnation))
    );
    for &n in &d.writes.acked {
        assert_eq!(
            common::store::holds(&store, n),
            n <= kept,
            "write {n} (kept through {kept})"
        );
    }
    // It carries on, and the next open finds nothing more to cut.
    let mut w = Writes::default();
    w.write_many(&store, 2).unwrap();
    store.close().unwrap();
    drop(store);
    let (_, report) = Store::open(&d.dir, rebuild()).unwrap();
    assert!(
        report.wal.damage_cut.is_none() && report.lost.is_none(),
        "{report:?}"
    );
}

#[test]
fn rebuild_from_peers_keeps_a_store_a_fallback_can_recover() {
    let (_root, dir, incarnation, w, _, delta) = store();
    flip_bit(&dir.join("snap").join(delta), 8 * 40);
    let (store, report) = Store::open(&dir, rebuild()).unwrap();
    assert!(report.quarantined.is_none(), "{report:?}");
    assert!(
        report.lost.is_none() && report.reincarnated_from.is_none(),
        "{report:?}"
    );
    assert_eq!(store.incarnation(), incarnation);
    w.check(&store, "recoverable damage under RebuildFromPeers");
    let siblings = std::fs::read_dir(dir.parent().unwrap()).unwrap().count();
    assert_eq!(siblings, 1, "nothing was moved aside");
}
