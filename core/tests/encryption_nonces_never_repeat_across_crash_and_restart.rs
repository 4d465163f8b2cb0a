//! No (file key, nonce) pair is ever sealed twice, across crashes, torn tails, power cuts at
//! any call, clean closes, snapshots, compactions and restarts: every pair sealed under the
//! ring is recorded (also those whose bytes a crash then lost, the case that matters: a torn
//! record rewritten under the same key and seq would reuse its nonce), and none repeats. The
//! last case shows the check does catch a repeat.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::store::{crash, cut_power_at, encrypted_config, open_on, ring, Writes};
use session_ha::crypto::{FileCipher, NonceLog};
use session_ha::fs::FaultyFs;
use session_ha::{FsyncPolicy, StoreConfig, WriteMode};

type Pair = ([u8; 16], [u8; 12]);

fn repeats(pairs: &[Pair]) -> Vec<(Pair, usize)> {
    let mut seen: HashMap<Pair, usize> = HashMap::new();
    for p in pairs {
        *seen.entry(*p).or_default() += 1;
    }
    seen.into_iter().filter(|(_, n)| *n > 1).collect()
}

fn assert_unique(log: &NonceLog, what: &str) {
    let pairs = log.pairs();
    let twice = repeats(&pairs);
    assert!(
        twice.is_empty(),
        "{what}: {} of {} (file key, nonce) pairs sealed more than once: {twice:?}",
        twice.len(),
        pairs.len()
    );
}

#[test]
fn crash_restart_cycles_never_seal_a_nonce_twice_under_one_file_key() {
    let (keys, log) = ring(1, &[]).with_nonce_log();
    let mut fs = FaultyFs::with_seed(41);
    let mut truncated = 0;
    let mut w = Writes::default();
    for cycle in 0u64..40 {
        let config = StoreConfig {
            fsync: if cycle % 3 == 0 {
                FsyncPolicy::Never
            } else {
                FsyncPolicy::Always
            },
            write_mode: if cycle % 2 == 0 {
                WriteMode::Queued
            } else {
                WriteMode::WaitDurable
            },
            ..encrypted_config(&keys)
        };
        let (store, report) = open_on(&fs, config).unwrap();
        truncated += report.wal.bytes_truncated;
        w.write_many(&store, 6 + cycle % 5).unwrap();
        if cycle % 4 == 1 {
            store.snapshot().unwrap();
        }
        if cycle % 9 == 4 {
            store.compact().unwrap();
        }
        match cycle % 5 {
            // A power cut at a later call, then writes until it bites, then the crash.
            0 => {
                cut_power_at(&fs, fs.calls(None) + 3 + cycle % 7);
                for _ in 0..20 {
                    if w.write(&store).is_err() {
                        break;
                    }
                }
                crash(&fs, Some(store), Some(cycle));
            }
            // Queued records torn by the power cut.
            1 | 2 => {
                w.write_many(&store, 4).unwrap();
                crash(&fs, Some(store), Some(cycle * 7 + 1));
            }
            // The machine's disk image after a crash, as another machine would boot it.
            3 => {
                w.write_many(&store, 3).unwrap();
                let image = fs.crash_image();
                store.kill();
                drop(store);
                fs = image;
            }
            _ => store.close().unwrap(),
        }
        assert_unique(&log, &format!("after cycle {cycle}"));
    }
    assert!(
        truncated > 0,
        "no cycle cut a torn tail: the case that matters never ran"
    );
    assert!(log.pairs().len() > 150, "{} pairs", log.pairs().len());
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    assert!(store.verify().unwrap().is_intact());
}

#[test]
fn the_check_finds_a_nonce_sealed_twice() {
    let (keys, log) = ring(1, &[]).with_nonce_log();
    let fs = FaultyFs::with_seed(42);
    let first = FileCipher::create(&keys, &fs);
    let again = FileCipher::open(Some(&keys), first.block(), Path::new("f")).unwrap();
    let mut a = b"one".to_vec();
    let mut b = b"two".to_vec();
    first.seal([7; 12], b"", &mut a, 0);
    again.seal([7; 12], b"", &mut b, 0);
    assert_eq!(repeats(&log.pairs()).len(), 1);
}
