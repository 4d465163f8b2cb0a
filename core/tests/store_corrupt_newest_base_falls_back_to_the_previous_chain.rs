//! A compaction keeps the chain it replaced (base and deltas) and the WAL that chain needs
//! until the next generation is installed: when the new base is damaged (a bit flipped in
//! any byte), recovery falls back to the previous base and its deltas, replays the log from
//! there, and loses nothing.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{dir, image, load_image, open_on, replace_file, store_config, Writes};
use session_ha::fs::FaultyFs;

#[test]
fn a_bit_flip_in_any_byte_of_the_newest_base_falls_back_to_the_previous_chain() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 9).unwrap();
    let first = store.snapshot().unwrap();
    w.write_many(&store, 9).unwrap();
    let delta = store.snapshot().unwrap();
    w.write_many(&store, 9).unwrap();
    let base = store.compact().unwrap();
    assert_eq!(
        (delta.generation, base.generation, base.base),
        (first.generation + 1, first.generation + 2, true)
    );
    w.write_many(&store, 4).unwrap();
    let root = store.digest_root().unwrap();
    store.close().unwrap();
    drop(store);
    let pristine = image(&fs);
    let path = dir().join("snap").join(base.file.unwrap());
    let good = pristine[&path].clone();

    for byte in 0..good.len() {
        let what = format!("bit {} of byte {byte} of the new base", byte % 8);
        let fs = load_image(&pristine);
        let mut bad = good.clone();
        bad[byte] ^= 1 << (byte % 8);
        replace_file(&fs, &path, &bad);
        let (store, report) =
            open_on(&fs, store_config()).unwrap_or_else(|e| panic!("{what}: no fallback: {e}"));
        assert_eq!(
            report.snapshots,
            vec![first.file.clone().unwrap(), delta.file.clone().unwrap()],
            "{what}: the first base and the delta"
        );
        assert_eq!(report.covers_seq, delta.covers_seq, "{what}");
        assert!(
            report
                .fallbacks
                .iter()
                .any(|f| f.starts_with(&format!("manifest generation {}: ", base.generation + 1))),
            "{what}: {:?}",
            report.fallbacks
        );
        w.check(&store, &what);
        assert_eq!(store.digest_root().unwrap(), root, "{what}");
    }
}
