//! `verify`, the recovery dry run and the recovered state of an encrypted store, with and
//! without its key, all read-only. Without the key: `verify` checks every checksum, finds
//! damage, and names the key it could not authenticate with (a warning, not a problem); the
//! dry run and the recovered state say opening would fail for want of that key. With the key:
//! everything is authenticated and read, as for a plain store.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{dir, encrypted_config, flip_bit_on, image, open_on, ring, Writes};
use session_ha::fs::FaultyFs;
use session_ha::store::{
    dry_run_recovery, dry_run_recovery_with_keys, recovered_state, recovered_state_with_keys,
    verify_dir, verify_dir_with_keys,
};
use session_ha::{Error, KeyRing};

fn store() -> (FaultyFs, KeyRing, String) {
    let fs = FaultyFs::with_seed(61);
    let keys = ring(1, &[]);
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    let mut w = Writes::default();
    w.write_many(&store, 20).unwrap();
    let snap = store.snapshot().unwrap().file.unwrap();
    w.write_many(&store, 7).unwrap();
    store.kill();
    drop(store);
    (fs, keys, snap)
}

#[test]
fn an_intact_store_verifies_with_and_without_the_key() {
    let (fs, keys, _) = store();
    let before = image(&fs);
    let without = verify_dir(&fs, dir()).unwrap();
    assert!(without.is_intact(), "{:?}", without.problems);
    let id = keys.current_id().to_string();
    let named: Vec<&String> = without
        .warnings
        .iter()
        .filter(|w| w.contains(&id))
        .collect();
    assert!(named.len() >= 2, "{:?}", without.warnings);
    assert!(without
        .snapshots
        .iter()
        .all(|s| s.checksums_only && s.key_id.is_some()));
    assert!(!without.wal.unauthenticated.is_empty());

    let with = verify_dir_with_keys(&fs, dir(), Some(&keys)).unwrap();
    assert!(with.is_intact(), "{:?}", with.problems);
    assert!(
        with.warnings.iter().all(|w| !w.contains(&id)),
        "{:?}",
        with.warnings
    );
    assert!(with
        .snapshots
        .iter()
        .all(|s| !s.checksums_only && s.entries > 0));
    assert!(with.wal.unauthenticated.is_empty());
    // A wrong key is as good as none: checksums only, the needed key named.
    let wrong = verify_dir_with_keys(&fs, dir(), Some(&ring(9, &[]))).unwrap();
    assert!(wrong.is_intact() && wrong.warnings.iter().any(|w| w.contains(&id)));
    assert_eq!(image(&fs), before, "verify changed something");
}

#[test]
fn damage_is_found_with_and_without_the_key() {
    let (fs, keys, snap) = store();
    let path = dir().join("snap").join(snap);
    flip_bit_on(&fs, &path, 8 * 80 + 3);
    for report in [
        verify_dir(&fs, dir()).unwrap(),
        verify_dir_with_keys(&fs, dir(), Some(&keys)).unwrap(),
    ] {
        assert!(!report.is_intact());
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("checksum mismatch")),
            "{:?}",
            report.problems
        );
    }
}

#[test]
fn the_dry_run_and_the_recovered_state_need_the_key_and_say_which() {
    let (fs, keys, _) = store();
    let before = image(&fs);
    let id = keys.current_id().to_string();

    let plan = dry_run_recovery(&fs, dir()).unwrap();
    let failure = plan.failure.unwrap();
    assert!(
        failure.contains(&id) && failure.contains("not configured"),
        "{failure}"
    );
    let plan = dry_run_recovery_with_keys(&fs, dir(), Some(&ring(9, &[]))).unwrap();
    assert!(plan.failure.unwrap().contains(&id));

    let plan = dry_run_recovery_with_keys(&fs, dir(), Some(&keys)).unwrap();
    assert_eq!(plan.failure, None, "{plan:?}");
    assert_eq!(plan.records_to_replay, 7);
    assert_eq!(plan.sessions, 5);

    let e = recovered_state(&fs, dir()).unwrap_err();
    assert!(matches!(&e, Error::MissingKey { key_id, .. } if *key_id == keys.current_id()));
    let state = recovered_state_with_keys(&fs, dir(), Some(&keys))
        .unwrap()
        .unwrap();
    assert_eq!(state.records_replayed, 7);
    assert_eq!(state.replica.sessions, 5);
    assert_eq!(image(&fs), before, "a dry run changed something");

    // And the real open agrees with the dry run.
    let (store, _) = open_on(&fs, encrypted_config(&keys)).unwrap();
    assert_eq!(store.status().replica.vv, state.replica.vv);
}
