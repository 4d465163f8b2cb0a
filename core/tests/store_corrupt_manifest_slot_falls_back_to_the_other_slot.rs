//! A damaged manifest slot (any byte flipped, cut at any byte) is never trusted: when it is
//! the newest, recovery takes the other slot's generation and loses nothing (its snapshot
//! chain and WAL are kept for exactly this); when it is the older one, recovery takes the
//! newest and still reports the damage. `verify_dir` names the slot either way, and the
//! manifest the open installs (a new boot) rewrites it.
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
    /// Generation in each slot.
    gens: [u64; 2],
}

/// A base, a delta and a WAL tail, then a clean close: the close's generation in one slot,
/// the delta's in the other.
fn prepare() -> Prepared {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut writes = Writes::default();
    writes.write_many(&store, 8).unwrap();
    store.snapshot().unwrap();
    writes.write_many(&store, 8).unwrap();
    let delta = store.snapshot().unwrap().generation;
    writes.write_many(&store, 3).unwrap();
    let root = store.digest_root().unwrap();
    store.close().unwrap();
    let slots = read_slots(&fs, dir()).unwrap();
    let gens: Vec<u64> = slots.valid.iter().map(|m| m.generation).collect();
    assert_eq!(gens, vec![delta + 1, delta], "the close is on record");
    let mut by_slot = [0; 2];
    for g in gens {
        by_slot[(g % 2) as usize] = g;
    }
    Prepared {
        image: image(&fs),
        writes,
        root,
        gens: by_slot,
    }
}

/// Opens a copy whose slot `slot` holds `bytes`; checks recovery used the other slot's
/// generation and reported the slot.
fn check(p: &Prepared, slot: usize, bytes: &[u8], what: &str) -> FaultyFs {
    let expect_gen = p.gens[1 - slot];
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

    // The open put a new boot on record in the damaged slot (the next generation's).
    assert!(store.verify().unwrap().is_intact(), "{what}");
    store.snapshot().unwrap();
    assert!(store.verify().unwrap().is_intact(), "{what}");
    drop(store);
    fs
}

impl Prepared {
    fn newest_slot(&self) -> usize {
        usize::from(self.gens[1] > self.gens[0])
    }
}

#[test]
fn a_damaged_newest_slot_falls_back_to_the_other_without_loss() {
    let p = prepare();
    let slot = p.newest_slot();
    let name = SLOTS[slot];
    let good = p.image[&dir().join(name)].clone();
    for byte in 0..good.len() {
        let mut bad = good.clone();
        bad[byte] ^= 1 << (byte % 8);
        check(
            &p,
            slot,
            &bad,
            &format!("{name} bit {} of byte {byte}", byte % 8),
        );
    }
    for cut in 0..good.len() {
        check(
            &p,
            slot,
            &good[..cut],
            &format!("{name} cut to {cut} bytes"),
        );
    }
    let mut longer = good.clone();
    longer.push(0);
    check(&p, slot, &longer, &format!("{name} with a byte appended"));
}

#[test]
fn a_damaged_older_slot_is_reported_and_the_newest_is_used() {
    let p = prepare();
    let slot = 1 - p.newest_slot();
    let name = SLOTS[slot];
    let good = p.image[&dir().join(name)].clone();
    for byte in [0, 5, 9, 13, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[byte] ^= 0x10;
        check(&p, slot, &bad, &format!("{name} byte {byte}"));
    }
    check(&p, slot, &[], &format!("{name} empty"));
}
