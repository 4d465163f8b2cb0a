//! This build reads the on-disk formats of versions 1 and 2 as they were written, forever
//! (`store-v2` is the last test of this file): the
//! committed store in `fixtures/store-v1` (a base, a delta and a WAL tail over two segments,
//! made by `examples/make_store_v1_fixtures.rs`) opens to exactly the sessions, the digest
//! root and the recovery report it was written with, and verifies intact; each committed
//! damaged copy opens (or refuses to) with exactly the fallback or error it always did.
//! Every case runs on a copy in a temporary directory: the fixtures are never modified.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use common::store::{copy_tree, tree};
use session_ha::fs::OsFs;
use session_ha::store::{verify_dir, RecoveryReport};
use session_ha::ReplicaId;
use session_ha::{
    Error, FsyncPolicy, ManualTime, RecoveryMode, Result, SessionView, Store, StoreConfig,
};

/// The digest root the store had when it was written.
const ROOT: &str = "b43f2fd388c6a953d19439d0c4991e0b";
/// The digest root of the same store written by the build of `46ca655` (`store-v2`), as
/// that build opens it.
const ROOT_V2: &str = "aaa2dc3092af235f095a60ccc0bef263";
/// The incarnation that wrote `store-v2`.
const INCARNATION_V2: u32 = 3_294_674_159;
/// Its incarnation.
const INCARNATION: u32 = 869_503_765;
/// The digest root of the same store written by the build of `f4c33c0` (`store-v3`).
const ROOT_V3: &str = "a27aa5b01a94c009f0f439453e13e18f";
/// The incarnation that wrote `store-v3`.
const INCARNATION_V3: u32 = 1_628_736_250;
/// When the fixture store was written (its manual clock started here).
const T0: u64 = 1_700_000_000_000;
const BASE: &str = "snap-00000000000000000001.base";
const DELTA: &str = "snap-00000000000000000002.delta";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A copy of fixture `name` in a temporary directory.
fn copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    copy_tree(&fixture(name), &dir);
    assert_eq!(tree(&dir), tree(&fixture(name)));
    (root, dir)
}

fn open(dir: &Path) -> Result<(Store, RecoveryReport)> {
    let mut c = StoreConfig::new("us-east-1");
    c.fsync = FsyncPolicy::Always;
    c.snapshot_interval = None;
    c.tick_interval = None;
    c.recovery = RecoveryMode::Strict;
    // An hour after the store was written: dave's one-day expiry has not come yet.
    let time = ManualTime::new(T0 + 3_600_000);
    Store::open_with(Arc::new(OsFs), dir, c, Arc::new(time))
}

/// `text` with the temporary directory written as `<dir>`.
fn normalized(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "<dir>")
}

fn view(
    fields: &[(&str, &str)],
    counters: &[(&str, i64)],
    sets: &[(&str, &[&str])],
    expires_at_ms: Option<u64>,
) -> Option<SessionView> {
    let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    Some(SessionView {
        fields: fields.iter().map(|(k, v)| (b(k), b(v))).collect(),
        counters: counters.iter().map(|(k, v)| (b(k), *v)).collect(),
        sets: sets
            .iter()
            .map(|(k, es)| (b(k), es.iter().map(|e| b(e)).collect()))
            .collect(),
        expires_at_ms,
    })
}

/// Everything the fixture store holds, as a reader sees it.
fn assert_contents(store: &Store, what: &str) {
    assert_contents_with_root(store, what, ROOT, INCARNATION);
}

/// [`assert_contents`] with the digest root `root` and the writer's `incarnation` (the v2
/// store's states carry the dots and stamps its build wrote, so its root differs from the
/// v1 store's).
fn assert_contents_with_root(store: &Store, what: &str, root: &str, incarnation: u32) {
    let expect = [
        (
            "alice",
            view(
                &[("mood", "happy"), ("role", "admin"), ("user", "alice")],
                &[],
                &[],
                None,
            ),
        ),
        ("bob", view(&[], &[("hits", 14)], &[], None)),
        ("carol", view(&[], &[], &[("tags", &["w", "z"])], None)),
        (
            "dave",
            view(&[("k", "v")], &[], &[], Some(1_700_086_410_000)),
        ),
        ("erin", None),
        ("frank", view(&[("k", "v2")], &[], &[], None)),
        ("gina", view(&[("k", "v")], &[], &[], None)),
    ];
    for (id, v) in &expect {
        assert_eq!(
            &store.get(id.as_bytes()).unwrap(),
            v,
            "{what}: session {id}"
        );
    }
    let ids: Vec<&str> = vec!["alice", "bob", "carol", "dave", "frank", "gina"];
    let got: Vec<Vec<u8>> = store
        .session_ids()
        .unwrap()
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    let want: Vec<Vec<u8>> = ids.iter().map(|s| s.as_bytes().to_vec()).collect();
    assert_eq!(got, want, "{what}");
    assert_eq!(store.digest_root().unwrap().to_string(), root, "{what}");
    let written_by = ReplicaId::from_region("us-east-1", incarnation);
    assert_eq!(
        store.read(|r| r.version_vector().get(written_by)),
        21,
        "{what}"
    );
}

#[test]
fn the_v1_store_opens_to_exactly_what_was_written() {
    let (_root, dir) = copy("store-v1");
    let v = verify_dir(&OsFs, &dir).unwrap();
    assert!(v.is_intact() && v.warnings.is_empty(), "{v:?}");
    assert_eq!(v.generation, Some(2));
    assert_eq!(v.wal.records, 21);

    let (store, report) = open(&dir).unwrap();
    assert!(!report.created);
    assert_eq!(report.manifest_generation, 2);
    assert_eq!(report.snapshots, vec![BASE.to_string(), DELTA.to_string()]);
    assert_eq!(report.covers_seq, 17);
    assert_eq!(report.sessions, 7, "erin ended, and is still held");
    // The first segment (records 1..=17) is covered by the snapshots: not even read.
    assert_eq!(report.wal.segments_skipped, 1);
    assert_eq!((report.wal.records, report.wal.records_replayed), (4, 4));
    assert_eq!(report.wal.last_seq, Some(21));
    assert_eq!(report.wal.bytes_truncated, 0);
    assert!(report.fallbacks.is_empty(), "{:?}", report.fallbacks);
    assert_contents(&store, "store-v1");
    // A v1 manifest does not record a clean close: the store carries on as a new
    // incarnation, so no dot of the old id can be made twice (I2).
    let written_by = ReplicaId::from_region("us-east-1", INCARNATION);
    assert_eq!(report.reincarnated_from, Some(written_by));
    assert_ne!(store.incarnation(), INCARNATION);

    // And it carries on in this build: a write, a snapshot, a reopen.
    store.put("alice", "again", "yes").unwrap();
    assert!(store.snapshot().unwrap().generation > 2);
    store.close().unwrap();
    drop(store);
    let (store, report) = open(&dir).unwrap();
    assert!(report.fallbacks.is_empty());
    assert_eq!(store.get_field(b"alice", b"again").unwrap().unwrap(), "yes");
}

#[test]
fn the_v1_store_with_a_damaged_delta_falls_back_to_generation_1() {
    let (_root, dir) = copy("store-v1-bad-delta");
    let v = verify_dir(&OsFs, &dir).unwrap();
    let problems: Vec<String> = v.problems.iter().map(|p| normalized(p, &dir)).collect();
    assert_eq!(problems, vec![BAD_DELTA.to_string()]);

    let (store, report) = open(&dir).unwrap();
    assert_eq!(report.manifest_generation, 1);
    assert_eq!(report.snapshots, vec![BASE.to_string()]);
    assert_eq!(report.covers_seq, 13);
    assert_eq!(report.wal.records_replayed, 8);
    let fallbacks: Vec<String> = report
        .fallbacks
        .iter()
        .map(|f| normalized(f, &dir))
        .collect();
    assert_eq!(
        fallbacks,
        vec![format!("manifest generation 2: {BAD_DELTA}")]
    );
    assert_contents(&store, "bad delta");
}

#[test]
fn the_v1_store_with_a_damaged_newest_manifest_slot_falls_back_to_the_other() {
    let (_root, dir) = copy("store-v1-bad-manifest-slot");
    let v = verify_dir(&OsFs, &dir).unwrap();
    let problems: Vec<String> = v.problems.iter().map(|p| normalized(p, &dir)).collect();
    assert_eq!(problems, vec![BAD_SLOT.to_string()]);
    assert_eq!(v.generation, Some(1));

    let (store, report) = open(&dir).unwrap();
    assert_eq!(report.manifest_generation, 1);
    assert_eq!(report.covers_seq, 13);
    assert_eq!(report.wal.records_replayed, 8);
    let fallbacks: Vec<String> = report
        .fallbacks
        .iter()
        .map(|f| normalized(f, &dir))
        .collect();
    assert_eq!(fallbacks, vec![BAD_SLOT.to_string()]);
    assert_contents(&store, "bad manifest slot");
}

#[test]
fn the_v1_store_with_a_torn_tail_is_cut_back_to_its_last_record() {
    let (_root, dir) = copy("store-v1-torn-tail");
    let v = verify_dir(&OsFs, &dir).unwrap();
    assert!(v.is_intact(), "{:?}", v.problems);
    let warnings: Vec<String> = v.warnings.iter().map(|w| normalized(w, &dir)).collect();
    assert_eq!(warnings, vec![TORN.to_string()]);

    let (store, report) = open(&dir).unwrap();
    assert_eq!(report.manifest_generation, 2);
    assert_eq!(report.wal.bytes_truncated, 11);
    // A format-1 manifest does not say where the log ended: the cut bytes may have been an
    // acknowledged record, so the replica continues as a new incarnation (I2).
    assert_eq!(
        report.reincarnated_from,
        Some(ReplicaId::from_region("us-east-1", INCARNATION))
    );
    assert_ne!(store.incarnation(), INCARNATION);
    assert_eq!(report.wal.records_replayed, 4);
    let broken: Vec<String> = report
        .wal
        .broken_files
        .iter()
        .map(|b| normalized(&b.display().to_string(), &dir))
        .collect();
    assert_eq!(
        broken,
        vec!["<dir>/wal/wal-00000000000000000018.log.251.broken"]
    );
    assert!(report.fallbacks.is_empty());
    assert_contents(&store, "torn tail");
}

#[test]
fn the_v1_store_with_a_damaged_wal_record_is_refused_by_name() {
    let (_root, dir) = copy("store-v1-bad-wal-record");
    let v = verify_dir(&OsFs, &dir).unwrap();
    let problems: Vec<String> = v.problems.iter().map(|p| normalized(p, &dir)).collect();
    assert_eq!(problems, vec![BAD_RECORD_PROBLEM.to_string()]);
    match open(&dir) {
        Err(Error::DataLoss(msg)) => assert_eq!(normalized(&msg, &dir), BAD_RECORD_ERROR),
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_v1_store_with_a_damaged_base_is_refused_by_name() {
    let (_root, dir) = copy("store-v1-bad-base");
    let v = verify_dir(&OsFs, &dir).unwrap();
    let problems: Vec<String> = v.problems.iter().map(|p| normalized(p, &dir)).collect();
    assert_eq!(problems, vec![BAD_BASE.to_string()]);
    match open(&dir) {
        Err(Error::DataLoss(msg)) => assert_eq!(normalized(&msg, &dir), BAD_BASE_ERROR),
        other => panic!("{other:?}"),
    }
}

// What recovery and verify_dir said about the damaged copies when the fixtures were made.
const BAD_DELTA: &str = "corrupt data in <dir>/snap/snap-00000000000000000002.delta at offset 32: checksum mismatch: stored 0x3a22437c, computed 0xc674b3ca";
const BAD_SLOT: &str = "corrupt data in <dir>/MANIFEST-0 at offset 0: checksum mismatch: stored 0x7cc4d79c, computed 0xba9ef0b0";
const TORN: &str = "<dir>/wal/wal-00000000000000000018.log at offset 251: torn tail of 11 bytes (cut off by the next open): truncated: needed 16 bytes, have 11; the next open cuts it and, since it may have held acknowledged records, continues as a new incarnation";
const BAD_RECORD_PROBLEM: &str = "<dir>/wal/wal-00000000000000000018.log at offset 130: corrupt record: checksum mismatch: stored 0x86fbf607, computed 0x2e5b178f";
const BAD_RECORD_ERROR: &str = concat!(
    "no manifest generation recovers: ",
    "manifest generation 2: corrupt data in <dir>/wal/wal-00000000000000000018.log at offset 130: checksum mismatch: stored 0x86fbf607, computed 0x2e5b178f; ",
    "manifest generation 1: corrupt data in <dir>/wal/wal-00000000000000000018.log at offset 130: checksum mismatch: stored 0x86fbf607, computed 0x2e5b178f; ",
    "the snapshots covered WAL records up to 13, the log holds WAL records 1..=21",
);
const BAD_BASE: &str = "corrupt data in <dir>/snap/snap-00000000000000000001.base at offset 32: checksum mismatch: stored 0xa73dbab0, computed 0x48a28227";
const BAD_BASE_ERROR: &str = concat!(
    "no manifest generation recovers: ",
    "manifest generation 2: corrupt data in <dir>/snap/snap-00000000000000000001.base at offset 32: checksum mismatch: stored 0xa73dbab0, computed 0x48a28227; ",
    "manifest generation 1: corrupt data in <dir>/snap/snap-00000000000000000001.base at offset 32: checksum mismatch: stored 0xa73dbab0, computed 0x48a28227; ",
    "the snapshots covered WAL records up to 13, the log holds WAL records 1..=21",
);

/// The same store as written by the build of `46ca655` (snapshot format 2, manifest format
/// 3), committed as `fixtures/store-v2`: this build (snapshot format 4; 3 added the meta's
/// `retired_held`) reads it to the same contents and carries on.
#[test]
fn the_v2_store_opens_to_exactly_what_was_written() {
    an_older_store_opens_to_exactly_what_was_written("store-v2", ROOT_V2, INCARNATION_V2);
}

/// The same store as written by the build of `f4c33c0` (snapshot format 3), committed as
/// `fixtures/store-v3`: this build (snapshot format 4, which added the meta's
/// `retired_runs`) reads it to the same contents and carries on.
#[test]
fn the_v3_store_opens_to_exactly_what_was_written() {
    an_older_store_opens_to_exactly_what_was_written("store-v3", ROOT_V3, INCARNATION_V3);
}

/// The fixture `name`, written by an older build, verifies intact, opens to the contents
/// of `fixtures/store-v1` (under digest root `root` and its own incarnation), takes a
/// write and a snapshot in this build's format, and reopens with it.
fn an_older_store_opens_to_exactly_what_was_written(name: &str, root: &str, incarnation: u32) {
    let (_root, dir) = copy(name);
    let v = verify_dir(&OsFs, &dir).unwrap();
    assert!(v.is_intact() && v.warnings.is_empty(), "{v:?}");
    let (store, report) = open(&dir).unwrap();
    assert!(!report.created);
    assert!(report.fallbacks.is_empty(), "{:?}", report.fallbacks);
    assert!(
        report.snapshots.iter().any(|s| s.ends_with(".base")),
        "{:?}",
        report.snapshots
    );
    assert_contents_with_root(&store, name, root, incarnation);
    store.put("alice", "again", "yes").unwrap();
    assert!(store.snapshot().unwrap().generation > report.manifest_generation);
    store.close().unwrap();
    drop(store);
    let (store, _) = open(&dir).unwrap();
    assert_eq!(
        store.get_field(b"alice", b"again").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
    store.close().unwrap();
}
