//! A damaged manifest slot (any byte flipped, cut at any byte) is never trusted: when it is
//! the newest, recovery takes the other slot's generation and loses nothing (its snapshot
//! chain and WAL are kept for exactly this); when it is the older one, recovery takes the
//! newest and still reports the damage. `verify_dir` names the slot either way, and the next
//! snapshot rewrites it.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::store::{dir, image, load_image, open_on, replace_file, store_config, Writes};
use session_ha::fs::FaultyFs;
use session_ha::snapshot::{read_slots, SLOTS};
use session_ha::store::verify_dir;
use session_ha::Digest;

struct Prepared {
    image: BTreeMap<PathBuf, Vec<u8>>,
    writes: Writes,
    root: Digest,
}

/// Generation 1 (a base) in MANIFEST-1, generation 2 (a delta) in MANIFEST-0, a WAL tail.
fn prepare() -> Prepared {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut writes = Writes::default();
    writes.write_many(&store, 8).unwrap();
    store.snapshot().unwrap();
    writes.write_many(&store, 8).unwrap();
    assert_eq!(store.snapshot().unwrap().generation, 2);
    writes.write_many(&store, 3).unwrap();
    let root = store.digest_root().unwrap();
    store.close().unwrap();
    let slots = read_slots(&fs, dir()).unwrap();
    let gens: Vec<u64> = slots.valid.iter().map(|m| m.generation).collect();
    assert_eq!(gens, vec![2, 1]);
    Prepared {
        image: image(&fs),
        writes,
        root,
    }
}

/// Opens a copy whose slot `slot` holds `bytes`; checks recovery used `expect_gen` and
/// reported the slot.
fn check(p: &Prepared, slot: usize, bytes: &[u8], expect_gen: u64, what: &str) -> FaultyFs {
    let fs = load_image(&p.image);
    let path = dir().join(SLOTS[slot]);
    replace_file(&fs, &path, bytes);
    let v = verify_dir(&fs, dir()).unwrap();
    assert!(
        v.problems.iter().any(|e| e.contains(SLOTS[slot])),
        "{what}: verify_dir: {:?}",
        v.problems
    );
    let check = v.manifests.iter().find(|c| c.file == path).unwrap();
    assert!(check.error.is_some(), "{what}");

    let (store, report) =
        open_on(&fs, store_config()).unwrap_or_else(|e| panic!("{what}: no fallback: {e}"));
    assert_eq!(report.manifest_generation, expect_gen, "{what}");
    assert!(
        report.fallbacks.iter().any(|f| f.contains(SLOTS[slot])),
        "{what}: {:?}",
        report.fallbacks
    );
    p.writes.check(&store, what);
    assert_eq!(store.digest_root().unwrap(), p.root, "{what}");

    // The next snapshot rewrites the damaged slot (slot = generation % 2).
    let next = store.snapshot().unwrap();
    let mut rewritten = next.generation;
    if rewritten as usize % 2 != slot {
        rewritten = store.compact().unwrap().generation;
    }
    assert_eq!(rewritten as usize % 2, slot);
    assert!(store.verify().unwrap().is_intact(), "{what}");
    drop(store);
    fs
}

#[test]
fn a_damaged_newest_slot_falls_back_to_the_other_without_loss() {
    let p = prepare();
    let good = p.image[&dir().join(SLOTS[0])].clone();
    for byte in 0..good.len() {
        let mut bad = good.clone();
        bad[byte] ^= 1 << (byte % 8);
        check(
            &p,
            0,
            &bad,
            1,
            &format!("MANIFEST-0 bit {} of byte {byte}", byte % 8),
        );
    }
    for cut in 0..good.len() {
        check(
            &p,
            0,
            &good[..cut],
            1,
            &format!("MANIFEST-0 cut to {cut} bytes"),
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    check(&p, 0, &longer, 1, "MANIFEST-0 with a byte appended");
}

#[test]
fn a_damaged_older_slot_is_reported_and_the_newest_is_used() {
    let p = prepare();
    let good = p.image[&dir().join(SLOTS[1])].clone();
    for byte in [0, 5, 9, 13, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[byte] ^= 0x10;
        check(&p, 1, &bad, 2, &format!("MANIFEST-1 byte {byte}"));
    }
    check(&p, 1, &[], 2, "MANIFEST-1 empty");
}
