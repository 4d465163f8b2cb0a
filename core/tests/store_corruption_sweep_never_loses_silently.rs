//! The corruption sweep (I3): a small, cleanly closed store; every byte of its last WAL
//! segment flipped, every truncation of that segment, every file deleted. No case may make
//! `verify` report the store intact, no case may open with an acknowledged write missing
//! unless the open reports the loss, and none may panic. Under `Strict` a case that opens
//! holds every acknowledged write; under `RebuildFromPeers` every case opens, and whatever
//! it lacks is named in `report.lost` (or the directory was moved aside).
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::store::{dir, holds, image, load_image, open_on, segments, store_config, Writes};
use session_ha::fs::FaultyFs;
use session_ha::store::verify_dir;
use session_ha::RecoveryMode;

struct Prepared {
    image: BTreeMap<PathBuf, Vec<u8>>,
    writes: Writes,
    last_segment: PathBuf,
}

/// Writes in three segments, a snapshot between them, an ended session (its end is the last
/// record), a clean close.
fn prepare() -> Prepared {
    let fs = FaultyFs::with_seed(5);
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 12).unwrap();
    store.snapshot().unwrap();
    w.write_many(&store, 10).unwrap();
    store.put("doomed", "k", "v").unwrap();
    store.end("doomed").unwrap();
    store.close().unwrap();
    let last_segment = segments(&fs, dir()).pop().unwrap().1;
    Prepared {
        image: image(&fs),
        writes: w,
        last_segment,
    }
}

/// One damaged copy: verify must see it; each recovery mode must either refuse or hold
/// every acknowledged write, unless it says what it lost.
fn check(p: &Prepared, damage: impl Fn(&FaultyFs), what: &str) {
    let fs = load_image(&p.image);
    damage(&fs);
    let v = verify_dir(&fs, dir()).unwrap();
    assert!(!v.is_intact(), "{what}: verify found nothing: {v:?}");
    let before = image(&fs);
    for mode in [RecoveryMode::Strict, RecoveryMode::RebuildFromPeers] {
        let fs = load_image(&before);
        let config = session_ha::StoreConfig {
            recovery: mode,
            ..store_config()
        };
        match open_on(&fs, config) {
            Err(e) => assert_eq!(mode, RecoveryMode::Strict, "{what}: {mode:?} refused: {e}"),
            Ok((store, report)) => {
                let missing: Vec<u64> = p
                    .writes
                    .acked
                    .iter()
                    .copied()
                    .filter(|&n| !holds_unfenced(&store, n))
                    .collect();
                let ended = store.read(|r| r.session_state(b"doomed").is_none_or(|s| s.is_ended()));
                let told = report.lost.is_some() || report.quarantined.is_some();
                assert!(
                    ended || told,
                    "{what}: {mode:?}: the ended session is back: {report:?}"
                );
                assert!(
                    missing.is_empty() || told,
                    "{what}: {mode:?} lost {missing:?} without a word: {report:?}"
                );
            }
        }
    }
}

/// Whether the store holds write `n`, fence or not (a rebuilt store is fenced).
fn holds_unfenced(store: &session_ha::Store, n: u64) -> bool {
    if store.status().replica.fence.is_some() {
        let _ = store.lift_fence();
    }
    holds(store, n)
}

#[test]
fn every_flipped_byte_of_the_last_segment_is_found_and_never_silently_lost() {
    let p = prepare();
    let len = p.image[&p.last_segment].len();
    for byte in 0..len {
        let what = format!("bit {} of byte {byte} of the last segment", byte % 8);
        check(
            &p,
            |fs| assert!(fs.flip_bit(&p.last_segment, byte as u64, (byte % 8) as u8)),
            &what,
        );
    }
}

#[test]
fn every_truncation_of_the_last_segment_is_found_and_never_silently_lost() {
    let p = prepare();
    let len = p.image[&p.last_segment].len();
    for cut in 0..len {
        let what = format!("last segment cut to {cut} of {len} bytes");
        check(&p, |fs| assert!(fs.cut(&p.last_segment, cut as u64)), &what);
    }
}

#[test]
fn every_deleted_file_is_found_and_never_silently_lost() {
    let p = prepare();
    let files: Vec<PathBuf> = p
        .image
        .keys()
        .filter(|f| f.file_name().is_some_and(|n| n != "LOCK"))
        .cloned()
        .collect();
    assert!(files.len() >= 6, "{files:?}");
    for f in &files {
        check(
            &p,
            |fs| assert!(fs.erase(f)),
            &format!("{} deleted", f.display()),
        );
    }
    check(
        &p,
        |fs| assert!(fs.erase(&dir().join("wal"))),
        "wal/ deleted",
    );
    check(
        &p,
        |fs| assert!(fs.erase(&dir().join("snap"))),
        "snap/ deleted",
    );
}
