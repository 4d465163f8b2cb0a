//! I1: an acknowledgement, explicit or implied by the vector a frame carries, covers only
//! what is durable at the acker. The failure this guards against: the receiver acked ops it
//! held only in memory, lost power before its next fsync, and the origin, believing them
//! held, reported nothing pending, never resent them, and the next op waited behind the gap
//! forever.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::pair::{deliver, pair, send, sync_all};
use session_ha::FsyncPolicy;

fn pending_for(a: &common::pair::Node, b: &common::pair::Node) -> u64 {
    let id = b.id();
    let st = a.s().status();
    st.replica
        .peers
        .iter()
        .find(|p| p.id == id)
        .unwrap()
        .pending_ops
}

#[test]
fn a_receiver_that_has_not_synced_acknowledges_nothing_it_could_lose() {
    let (_time, a, mut b) = pair(FsyncPolicy::EveryMillis(10));
    for i in 0..5 {
        a.s().put(format!("s{i}"), "k", "v").unwrap();
    }
    a.sync();
    let frame = a.s().frame_for(b.id()).unwrap().unwrap();
    // b applies the ops but its log has not synced: the ack is held back...
    assert!(
        deliver(&b, &frame, false).is_none(),
        "an ack before the sync"
    );
    // ...and its heartbeat claims only what is durable.
    let hb = b.s().heartbeat(a.id()).unwrap();
    a.s().receive(&hb).unwrap();
    assert_eq!(pending_for(&a, &b), 5, "a counts b's unsynced copy as held");
    assert_eq!(b.s().status().replica.durable_vv.get(a.id()), 0);

    // b loses power before its sync: the ops are gone there, and a still knows it.
    let old_b = b.id();
    b.power_cut();
    let report = b.open().unwrap();
    // After any crash the store continues under a new id (I2), fenced until it has caught
    // up: it has had a member (its manifest says so), even though the record naming it
    // was lost with the unsynced log.
    assert_eq!(report.reincarnated_from, Some(old_b), "{report:?}");
    assert!(report.fence.is_some(), "{report:?}");
    assert_eq!(b.s().read(|r| r.version_vector().get(a.id())), 0);

    // The next round resends them (b's new boot resets what a believed), and b holds them.
    a.s().put("s9", "k", "v").unwrap();
    sync_all(&[&a, &b]);
    assert_eq!(pending_for(&a, &b), 0);
    assert!(b.s().status().replica.fence.is_none(), "caught up with a");
    for i in [0, 1, 2, 3, 4, 9] {
        let sid = format!("s{i}");
        assert_eq!(
            b.s().get_field(sid.as_bytes(), b"k").unwrap().as_deref(),
            Some(&b"v"[..]),
            "{sid}"
        );
    }
    assert_eq!(a.s().digest_root().unwrap(), b.s().digest_root().unwrap());
}

#[test]
fn own_ops_are_shipped_only_once_durable_whatever_the_policy() {
    let (_time, a, b) = pair(FsyncPolicy::EveryMillis(10));
    a.s().put("s", "k", "v").unwrap();
    assert!(
        a.s().frame_for(b.id()).unwrap().is_none(),
        "an op left before it was durable"
    );
    a.sync();
    assert!(a.s().frame_for(b.id()).unwrap().is_some());
}

#[test]
fn status_and_sync_count_durable_acknowledgements_only() {
    let (_time, a, b) = pair(FsyncPolicy::Always);
    a.s().put("s", "k", "v").unwrap();
    a.sync();
    // b applies, never syncs: a never hears an ack, so the op stays pending.
    send(&a, &b, false);
    assert_eq!(pending_for(&a, &b), 1);
    send(&b, &a, true);
    assert_eq!(
        pending_for(&a, &b),
        1,
        "b's frames claim its durable vector only"
    );
    b.sync();
    send(&b, &a, true);
    assert_eq!(pending_for(&a, &b), 0);
}
