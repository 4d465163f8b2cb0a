//! When the newest delta snapshot is damaged (a bit flipped in any byte, cut short, or
//! gone), recovery falls back to the chain before it (the manifest keeps it as a fallback)
//! and replays the WAL it kept for that case: every acknowledged write is back, the digest root is the one before
//! the crash, `report.fallbacks` names the generation and the file, and the next snapshot
//! replaces the damaged file so the store verifies intact again.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::store::{
    dir, image, load_image, open_on, replace_file, store_config, Writes, SESSIONS,
};
use session_ha::fs::{FaultyFs, Vfs};
use session_ha::store::verify_dir;
use session_ha::{Digest, SessionView};

struct Prepared {
    image: BTreeMap<PathBuf, Vec<u8>>,
    base: String,
    delta: PathBuf,
    writes: Writes,
    root: Digest,
    views: Vec<Option<SessionView>>,
}

/// A base, a delta on it and a WAL tail, of every kind of write; then a clean close.
fn prepare() -> Prepared {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut writes = Writes::default();
    writes.write_many(&store, 9).unwrap();
    store.end("gone").unwrap();
    store.put("temp", "k", "v").unwrap();
    store.delete_field("temp", "k").unwrap();
    store.set_add("s1", "tags", "x").unwrap();
    let base = store.snapshot().unwrap();
    writes.write_many(&store, 6).unwrap();
    store.touch("s1", 3_600_000).unwrap();
    store.set_remove("s1", "tags", "x").unwrap();
    let delta = store.snapshot().unwrap();
    assert_eq!((delta.generation, delta.base), (base.generation + 1, false));
    writes.write_many(&store, 4).unwrap();
    let root = store.digest_root().unwrap();
    let views = views(&store);
    store.close().unwrap();
    Prepared {
        image: image(&fs),
        base: base.file.unwrap(),
        delta: dir().join("snap").join(delta.file.unwrap()),
        writes,
        root,
        views,
    }
}

fn views(store: &session_ha::Store) -> Vec<Option<SessionView>> {
    let mut ids: Vec<String> = (0..SESSIONS).map(|i| format!("s{i}")).collect();
    ids.extend(["gone".into(), "temp".into()]);
    ids.iter()
        .map(|id| store.get(id.as_bytes()).unwrap())
        .collect()
}

/// Opens a copy of the prepared store whose delta holds `bytes` (or is gone) and checks the
/// fallback.
fn check(p: &Prepared, bytes: Option<&[u8]>, what: &str) {
    let fs = load_image(&p.image);
    match bytes {
        Some(b) => replace_file(&fs, &p.delta, b),
        None => {
            fs.remove_file(&p.delta).unwrap();
            fs.sync_dir(&dir().join("snap")).unwrap();
        }
    }
    let v = verify_dir(&fs, dir()).unwrap();
    assert!(!v.is_intact(), "{what}: verify_dir saw nothing");

    let (store, report) =
        open_on(&fs, store_config()).unwrap_or_else(|e| panic!("{what}: no fallback: {e}"));
    assert_eq!(report.snapshots, vec![p.base.clone()], "{what}: {report:?}");
    let name = p.delta.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        report
            .fallbacks
            .iter()
            .any(|f| f.starts_with("manifest generation ") && f.contains(&name)),
        "{what}: {:?}",
        report.fallbacks
    );
    p.writes.check(&store, what);
    assert_eq!(store.digest_root().unwrap(), p.root, "{what}");
    assert_eq!(views(&store), p.views, "{what}");
    common::store::assert_dots_known(&store, what);

    // The next snapshot writes a new delta; the damaged file is no longer needed.
    store.snapshot().unwrap();
    let v = store.verify().unwrap();
    assert!(v.is_intact(), "{what}: {:?}", v.problems);
    store.close().unwrap();
    drop(store);
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert!(
        report.fallbacks.is_empty(),
        "{what}: {:?}",
        report.fallbacks
    );
    assert_eq!(store.digest_root().unwrap(), p.root, "{what}, healed");
}

#[test]
fn a_bit_flip_in_any_byte_of_the_newest_delta_falls_back_without_loss() {
    let p = prepare();
    let good = p.image[&p.delta].clone();
    for byte in 0..good.len() {
        let mut bad = good.clone();
        bad[byte] ^= 1 << (byte % 8);
        check(&p, Some(&bad), &format!("bit {} of byte {byte}", byte % 8));
    }
}

#[test]
fn a_newest_delta_cut_short_or_gone_falls_back_without_loss() {
    let p = prepare();
    let good = p.image[&p.delta].clone();
    for cut in [
        0,
        1,
        31,
        32,
        good.len() / 2,
        good.len() - 32,
        good.len() - 1,
    ] {
        check(&p, Some(&good[..cut]), &format!("cut to {cut} bytes"));
    }
    check(&p, None, "file gone");
}
