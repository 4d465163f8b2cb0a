//! Helpers shared by the store test files: a deterministic configuration and clock, a
//! workload whose every write is distinct (so "is write n there?" has exactly one answer),
//! power cuts at a chosen I/O call, and ways to read, copy and damage what is on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use session_ha::fs::{Fault, FaultyFs, Op, Repeat, Vfs};
use session_ha::store::RecoveryReport;
use session_ha::wal::SEGMENT_HEADER_LEN;
use session_ha::{FsyncPolicy, ManualTime, Result, Store, StoreConfig, WriteMode};

/// Region of every test store.
pub const REGION: &str = "us-east-1";
/// Time the manual clock of a test store starts at (Unix ms).
pub const T0: u64 = 1_700_000_000_000;
/// Where a store lives on a [`FaultyFs`].
pub const DIR: &str = "/db/store";
/// Sessions the workload spreads its writes over.
pub const SESSIONS: u64 = 5;

/// Writes wait for an fdatasync of their record; snapshots and maintenance run only when the
/// test asks; small segments, so that workloads roll and snapshots delete segments.
pub fn store_config() -> StoreConfig {
    let mut c = StoreConfig::new(REGION);
    c.fsync = FsyncPolicy::Always;
    c.write_mode = WriteMode::WaitDurable;
    c.snapshot_interval = None;
    c.tick_interval = None;
    c.segment_size = 512;
    c
}

/// The store in [`DIR`] on `fs`, with a manual clock at [`T0`].
pub fn open_on(fs: &FaultyFs, config: StoreConfig) -> Result<(Store, RecoveryReport)> {
    Store::open_with(
        Arc::new(fs.clone()),
        Path::new(DIR),
        config,
        Arc::new(ManualTime::new(T0)),
    )
}

/// [`DIR`] as a path.
pub fn dir() -> &'static Path {
    Path::new(DIR)
}

/// Session of write number `n`.
pub fn session_of(n: u64) -> String {
    format!("s{}", n % SESSIONS)
}

/// Makes write number `n`: a put of a new field, a set add of a new element or an add to a
/// new counter, in turn, so that its presence can be checked exactly.
pub fn write_n(store: &Store, n: u64) -> Result<u64> {
    let s = session_of(n);
    match n % 3 {
        0 => store.put(s.as_str(), format!("f{n}"), format!("v{n}")),
        1 => store.set_add(s.as_str(), "tags", format!("e{n}")),
        _ => store.counter_add(s.as_str(), format!("c{n}"), 1),
    }
}

/// Whether the store holds write number `n`.
pub fn holds(store: &Store, n: u64) -> bool {
    let Some(view) = store.get(session_of(n).as_bytes()).unwrap() else {
        return false;
    };
    match n % 3 {
        0 => view
            .fields
            .get(format!("f{n}").as_bytes())
            .is_some_and(|v| v == format!("v{n}").as_str()),
        1 => view
            .sets
            .get(&b"tags"[..])
            .is_some_and(|t| t.iter().any(|e| e == format!("e{n}").as_str())),
        _ => view.counters.get(format!("c{n}").as_bytes()) == Some(&1),
    }
}

/// The writes a test made: how many it attempted and which were acknowledged.
#[derive(Clone, Debug, Default)]
pub struct Writes {
    /// Writes attempted (numbered from 1).
    pub attempted: u64,
    /// Writes whose call returned Ok.
    pub acked: Vec<u64>,
    /// Errors returned, with the write number.
    pub errors: Vec<(u64, String)>,
}

impl Writes {
    /// Makes the next write; records whether it was acknowledged.
    pub fn write(&mut self, store: &Store) -> Result<u64> {
        self.attempted += 1;
        let n = self.attempted;
        let r = write_n(store, n);
        match &r {
            Ok(_) => self.acked.push(n),
            Err(e) => self.errors.push((n, e.to_string())),
        }
        r
    }

    /// Makes `count` writes, stopping at the first error.
    pub fn write_many(&mut self, store: &Store, count: u64) -> Result<()> {
        for _ in 0..count {
            self.write(store)?;
        }
        Ok(())
    }

    /// Checks that `store` holds every acknowledged write and nothing never attempted.
    pub fn check(&self, store: &Store, what: &str) {
        let missing: Vec<u64> = self
            .acked
            .iter()
            .copied()
            .filter(|&n| !holds(store, n))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: acknowledged writes {missing:?} are lost ({self:?})"
        );
        for n in self.attempted + 1..self.attempted + 4 {
            assert!(!holds(store, n), "{what}: write {n} was never made");
        }
    }
}

/// Makes every call from the `nth` (0-based, counted since `fs` was created) on fail with
/// EIO: nothing after it reaches the disk, as if the power went right before it.
pub fn cut_power_at(fs: &FaultyFs, nth: u64) {
    fs.fail(None, nth, Fault::Eio, Repeat::FromThenOn);
}

/// Abandons `store` as a crash would (while the planned faults still hold), clears the
/// faults and cuts the power,
/// tearing unsynced appends by `tear` if given.
pub fn crash(fs: &FaultyFs, store: Option<Store>, tear: Option<u64>) {
    // Abandoned as a crash leaves it: nothing more written, synced or put on record.
    if let Some(s) = store {
        s.kill();
    }
    fs.clear_faults();
    match tear {
        None => fs.crash(),
        Some(seed) => fs.crash_tearing(seed),
    }
}

/// Every live file of `fs` and its bytes (no call is counted).
pub fn image(fs: &FaultyFs) -> BTreeMap<PathBuf, Vec<u8>> {
    fs.files()
        .into_iter()
        .filter_map(|p| fs.peek(&p).map(|b| (p, b)))
        .collect()
}

/// A new file system holding exactly `image` (every file and directory durable), to run one
/// case of a sweep on a copy of a prepared store.
pub fn load_image(image: &BTreeMap<PathBuf, Vec<u8>>) -> FaultyFs {
    let fs = FaultyFs::new();
    for (path, bytes) in image {
        let parent = session_ha::fs::parent_dir(path);
        session_ha::fs::create_dir_durably(&fs, parent).unwrap();
        let mut f = fs.create(path).unwrap();
        f.append(bytes).unwrap();
        f.sync_data().unwrap();
        drop(f);
        fs.sync_dir(parent).unwrap();
    }
    fs
}

/// Calls that change something on a file system (or could): what a read-only pass must never
/// make.
pub fn mutating(log: &[(Op, PathBuf)]) -> Vec<(Op, PathBuf)> {
    log.iter()
        .filter(|(op, _)| {
            matches!(
                op,
                Op::Create
                    | Op::OpenAppend
                    | Op::Rename
                    | Op::Remove
                    | Op::CreateDir
                    | Op::SyncDir
                    | Op::Lock
                    | Op::Append
                    | Op::SyncData
                    | Op::SetLen
            )
        })
        .cloned()
        .collect()
}

/// Replaces the content of the file `path` on `fs` (durably).
pub fn replace_file(fs: &dyn Vfs, path: &Path, bytes: &[u8]) {
    fs.remove_file(path).unwrap();
    let mut f = fs.create(path).unwrap();
    f.append(bytes).unwrap();
    f.sync_data().unwrap();
    drop(f);
    fs.sync_dir(session_ha::fs::parent_dir(path)).unwrap();
}

/// Flips bit `bit` (counted from the start of the file) of `path` on `fs`.
pub fn flip_bit_on(fs: &dyn Vfs, path: &Path, bit: usize) {
    let mut b = fs.read_file(path).unwrap();
    b[bit / 8] ^= 1 << (bit % 8);
    replace_file(fs, path, &b);
}

/// Every file under `dir` on the real disk and its bytes, `LOCK` files left out (they are
/// empty and only their lock means anything).
pub fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else if p.file_name().is_some_and(|n| n != "LOCK") {
                let rel = p.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Copies the directory tree `from` to `to` on the real disk (`LOCK` files left out).
pub fn copy_tree(from: &Path, to: &Path) {
    for (rel, bytes) in tree(from) {
        let p = to.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
}

/// Flips bit `bit` of the real file `path`.
pub fn flip_bit(path: &Path, bit: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[bit / 8] ^= 1 << (bit % 8);
    std::fs::write(path, b).unwrap();
}

/// The WAL segments of the store in `store_dir`: (first seq, path), oldest first.
pub fn segments(fs: &dyn Vfs, store_dir: &Path) -> Vec<(u64, PathBuf)> {
    let wal = store_dir.join("wal");
    let mut out: Vec<(u64, PathBuf)> = fs
        .list_dir(&wal)
        .unwrap()
        .into_iter()
        .filter_map(|n| {
            let first = n.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()?;
            Some((first, wal.join(n)))
        })
        .collect();
    out.sort();
    out
}

/// The records of a segment's bytes: (offset, encoded length), in order (see `wal::record`:
/// 4 bytes of body length, then 16 bytes of header and trailer around the body).
pub fn record_spans(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = SEGMENT_HEADER_LEN;
    while at + 4 <= segment.len() {
        let len = u32::from_le_bytes([
            segment[at],
            segment[at + 1],
            segment[at + 2],
            segment[at + 3],
        ]) as usize;
        let total = 20 + len;
        if at + total > segment.len() {
            break;
        }
        out.push((at, total));
        at += total;
    }
    out
}

/// Checks that every dot in the store's sessions is in its causal context: a dot outside it
/// would be handed out again by the next local write.
pub fn assert_dots_known(store: &Store, what: &str) {
    store.read(|r| {
        let ctx = r.context();
        for (id, st) in r.sessions() {
            let mut dots = Vec::new();
            dots.extend(st.fields.values().map(|reg| reg.stamp.dot));
            dots.extend(st.ended.iter().map(|s| s.dot));
            for set in st.sets.values() {
                dots.extend(set.entries.values().flatten().copied());
                dots.extend(set.removed.iter().flat_map(|(a, b)| [*a, *b]));
            }
            for dot in dots {
                assert!(
                    ctx.contains(dot),
                    "{what}: session {id:?} holds {dot:?}, which the context {:?} lacks",
                    ctx.vv()
                );
            }
        }
    });
}

/// The key of test key ring `n` (distinct for every `n`).
pub fn test_key(n: u8) -> [u8; 32] {
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = n.wrapping_mul(37).wrapping_add(i as u8);
    }
    k
}

/// A key ring holding test key `current`, then test keys `older` (for reading only).
pub fn ring(current: u8, older: &[u8]) -> session_ha::KeyRing {
    session_ha::KeyRing::new(test_key(current), older.iter().map(|&n| test_key(n))).unwrap()
}

/// [`store_config`] with encryption under `keys`.
pub fn encrypted_config(keys: &session_ha::KeyRing) -> StoreConfig {
    StoreConfig {
        encryption: Some(keys.clone()),
        ..store_config()
    }
}

/// The records of an encrypted segment's bytes (header of 56 bytes), as [`record_spans`].
pub fn sealed_record_spans(segment: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = session_ha::wal::ENCRYPTED_SEGMENT_HEADER_LEN;
    while at + 4 <= segment.len() {
        let len = u32::from_le_bytes([
            segment[at],
            segment[at + 1],
            segment[at + 2],
            segment[at + 3],
        ]) as usize;
        let total = 20 + len;
        if at + total > segment.len() {
            break;
        }
        out.push((at, total));
        at += total;
    }
    out
}

/// Flips one bit inside the body of the record at `span` of a segment and recomputes its
/// body crc (seeded with the segment's salt), as someone altering the file on purpose would:
/// only the authentication tag can tell.
pub fn tamper_record(segment: &mut [u8], (at, total): (usize, usize)) {
    let salt = u32::from_le_bytes([segment[8], segment[9], segment[10], segment[11]]);
    let body = at + 16..at + total - 4;
    segment[body.start + 1] ^= 0x04;
    let mut h = crc32fast::Hasher::new_with_initial(salt);
    h.update(&segment[at + 4..at + 12]);
    h.update(&segment[body.clone()]);
    let crc = h.finalize();
    segment[body.end..body.end + 4].copy_from_slice(&crc.to_le_bytes());
}
