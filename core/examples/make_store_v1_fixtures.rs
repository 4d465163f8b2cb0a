//! Writes the golden store directories of on-disk format version 1 that
//! `tests/store_v1_fixtures_still_open.rs` loads: a store with a base, a delta and a WAL tail
//! holding sessions of every kind, and damaged copies of it.
//!
//! ```text
//! cargo run -p session-ha --example make_store_v1_fixtures -- core/tests/fixtures
//! ```
//!
//! Run once; the committed output is the fixture. Running it again makes a different store
//! (a new incarnation, new segment salts), so the constants in the test would no longer
//! match: never regenerate the v1 fixtures, add new ones beside them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use session_ha::fs::OsFs;
use session_ha::{FsyncPolicy, ManualTime, Store, StoreConfig, WriteMode};

/// Clock of the store while it was written (Unix ms).
const T0: u64 = 1_700_000_000_000;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn config() -> StoreConfig {
    let mut c = StoreConfig::new("us-east-1");
    c.fsync = FsyncPolicy::Always;
    c.write_mode = WriteMode::WaitDurable;
    c.snapshot_interval = None;
    c.tick_interval = None;
    c.segment_size = 1024;
    c
}

/// The good store: a base, a delta and a WAL tail. Prints what it holds.
fn write_store(dir: &Path) -> Res<()> {
    let time = ManualTime::new(T0);
    let (store, _) = Store::open_with(Arc::new(OsFs), dir, config(), Arc::new(time.clone()))?;
    let tick = || time.advance(1000);

    // Generation 1, a base: fields, a deleted field, counters, a set, an expiry, an end.
    store.put_fields(
        "alice",
        vec![
            ("user".into(), "alice".into()),
            ("role".into(), "admin".into()),
        ],
    )?;
    tick();
    store.put("alice", "tmp", "x")?;
    tick();
    store.delete_field("alice", "tmp")?;
    tick();
    store.counter_add("bob", "hits", 5)?;
    tick();
    store.counter_add("bob", "hits", -2)?;
    tick();
    for e in ["x", "y", "z"] {
        store.set_add("carol", "tags", e)?;
        tick();
    }
    store.set_remove("carol", "tags", "y")?;
    tick();
    store.put("dave", "k", "v")?;
    tick();
    store.touch("dave", 86_400_000)?;
    tick();
    store.put("erin", "k", "v")?;
    tick();
    store.end("erin")?;
    tick();
    let base = store.compact()?;
    println!("base: {base:?}");

    // Generation 2, a delta.
    store.put("alice", "mood", "happy")?;
    tick();
    store.counter_add("bob", "hits", 10)?;
    tick();
    store.set_add("carol", "tags", "w")?;
    tick();
    store.put("frank", "k", "v1")?;
    tick();
    let delta = store.snapshot()?;
    println!("delta: {delta:?}");

    // The WAL tail.
    store.counter_add("bob", "hits", 1)?;
    tick();
    store.put("gina", "k", "v")?;
    tick();
    store.set_remove("carol", "tags", "x")?;
    tick();
    store.put("frank", "k", "v2")?;
    tick();

    println!("incarnation: {}", store.incarnation());
    println!("digest root: {}", store.digest_root()?);
    for id in ["alice", "bob", "carol", "dave", "erin", "frank", "gina"] {
        println!("{id}: {:?}", store.get(id.as_bytes())?);
    }
    println!("status: {:?}", store.status());
    store.close()?;
    drop(store);
    for lock in [dir.join("LOCK"), dir.join("wal").join("LOCK")] {
        if lock.exists() {
            std::fs::remove_file(lock)?;
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Res<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn flip(path: &Path, byte: usize, mask: u8) -> Res<()> {
    let mut b = std::fs::read(path)?;
    b[byte] ^= mask;
    std::fs::write(path, b)?;
    println!("flipped {mask:#04x} at byte {byte} of {}", path.display());
    Ok(())
}

fn one(dir: &Path, sub: &str, ext: &str) -> Res<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir.join(sub))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    found.retain(|p| p.to_string_lossy().ends_with(ext));
    found.sort();
    found
        .pop()
        .ok_or_else(|| format!("no {ext} in {sub}").into())
}

/// The records of a segment: (offset, length), after its 24-byte header.
fn records(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 24;
    while at + 4 <= segment.len() {
        let len = u32::from_le_bytes([
            segment[at],
            segment[at + 1],
            segment[at + 2],
            segment[at + 3],
        ]) as usize;
        out.push((at, 20 + len));
        at += 20 + len;
    }
    out
}

fn main() -> Res<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: make_store_v1_fixtures <fixtures dir>")?,
    );
    let good = out.join("store-v1");
    if good.exists() {
        return Err(format!(
            "{} exists: the v1 fixtures are never regenerated",
            good.display()
        )
        .into());
    }
    write_store(&good)?;

    // A record of the WAL tail with records after it: corruption, never a torn tail.
    let bad = out.join("store-v1-bad-wal-record");
    copy_dir(&good, &bad)?;
    let seg = one(&bad, "wal", ".log")?;
    let recs = records(&std::fs::read(&seg)?);
    let (at, _) = recs[recs.len() - 2];
    flip(&seg, at + 18, 0x04)?;

    // The newest delta: recovery falls back to generation 1.
    let bad = out.join("store-v1-bad-delta");
    copy_dir(&good, &bad)?;
    flip(&one(&bad, "snap", ".delta")?, 50, 0x20)?;

    // The base both generations share: nothing recovers.
    let bad = out.join("store-v1-bad-base");
    copy_dir(&good, &bad)?;
    flip(&one(&bad, "snap", ".base")?, 60, 0x01)?;

    // The newest manifest slot (generation 2 is in MANIFEST-0).
    let bad = out.join("store-v1-bad-manifest-slot");
    copy_dir(&good, &bad)?;
    flip(&bad.join("MANIFEST-0"), 30, 0x80)?;

    // A write cut by a crash: the first 11 bytes of a copy of the last record.
    let torn = out.join("store-v1-torn-tail");
    copy_dir(&good, &torn)?;
    let seg = one(&torn, "wal", ".log")?;
    let mut bytes = std::fs::read(&seg)?;
    let (at, _) = *records(&bytes).last().ok_or("empty segment")?;
    let cut = bytes[at..at + 11].to_vec();
    bytes.extend_from_slice(&cut);
    std::fs::write(&seg, bytes)?;
    println!("appended 11 torn bytes to {}", seg.display());
    Ok(())
}
