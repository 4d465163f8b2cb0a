//! I5: a write the log did not accept is never seen, in a read, a frame, a digest or the
//! status. The failure this guards against: the op was applied in memory before it was
//! logged, so after a failed write or fsync the store kept serving state that was never
//! durable.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::store::{open_on, store_config};
use session_ha::fs::{Fault, FaultyFs, Op, Repeat};
use session_ha::{Error, ReplicaId};

#[test]
fn a_write_the_disk_refused_is_invisible_now_and_after_reopening() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    store.put("kept", "k", "v").unwrap();
    let peer = ReplicaId(7);
    store.add_peer(peer, "eu-west-1").unwrap();
    let root = store.digest_root().unwrap();
    // The disk fills up: the next append fails.
    fs.fail(
        Some(Op::Append),
        fs.calls(Some(Op::Append)),
        Fault::NoSpace,
        Repeat::FromThenOn,
    );
    match store.put("refused", "k", "x") {
        Err(Error::NoSpace { .. }) => {}
        other => panic!("expected NoSpace, got {other:?}"),
    }
    // Memory may hold what the log refused: nothing is served until the store reopens.
    assert!(matches!(store.get(b"refused"), Err(Error::NoSpace { .. })));
    assert!(matches!(store.get(b"kept"), Err(Error::NoSpace { .. })));
    assert!(store.digest_root().is_err());
    assert!(store.frame_for(peer).is_err());
    let st = store.status();
    assert!(st.tainted.is_some(), "{st:?}");
    assert_eq!(
        st.replica.vv, st.replica.durable_vv,
        "status shows only what is durable"
    );
    assert_eq!(
        st.replica.vv.get(store.id()),
        1,
        "the put, not the refused one"
    );
    // A later write is refused before it changes anything.
    assert!(store.put("later", "k", "y").is_err());
    drop(store);

    fs.clear_faults();
    let (store, report) = open_on(&fs, store_config()).unwrap();
    // An unclean stop: a new incarnation, fenced when the member's record made it to disk
    // before the disk filled (the writer thread's timing decides); the member is not
    // running here, so the operator lifts the fence.
    assert!(report.reincarnated_from.is_some(), "{report:?}");
    if report.fence.is_some() {
        assert!(matches!(store.get(b"kept"), Err(Error::CatchingUp(_))));
        store.lift_fence().unwrap();
    }
    assert!(
        store.get(b"refused").unwrap().is_none(),
        "the refused write came back"
    );
    assert!(store.get(b"later").unwrap().is_none());
    assert_eq!(
        store.get_field(b"kept", b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert_eq!(store.digest_root().unwrap(), root);
}

#[test]
fn a_write_whose_sync_failed_is_invisible_until_recovery_decides() {
    let fs = FaultyFs::new();
    let (store, _) = open_on(&fs, store_config()).unwrap();
    store.put("kept", "k", "v").unwrap();
    fs.fail(
        Some(Op::SyncData),
        fs.calls(Some(Op::SyncData)),
        Fault::Eio,
        Repeat::FromThenOn,
    );
    assert!(matches!(
        store.put("unknown", "k", "x"),
        Err(Error::Poisoned(_))
    ));
    assert!(
        store.get(b"unknown").is_err(),
        "served before its record was known durable"
    );
    assert!(store.get(b"kept").is_err());
    drop(store);
    // A failed fsync leaves the record's bytes unknown (here: zeros after the power cut).
    fs.clear_faults();
    fs.crash();
    let (store, report) = open_on(&fs, store_config()).unwrap();
    assert!(store.get(b"unknown").unwrap().is_none(), "{report:?}");
    assert_eq!(
        store.get_field(b"kept", b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}
