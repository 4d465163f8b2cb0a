//! I2 against a data directory copied back by hand: a cleanly closed copy opens under the
//! same id, so only its peers can tell it that it lost part of its own history. One peer may
//! hold such a lost op only as an effect in a merged copy (a repair from a region that has
//! since died), its dot out of order with nothing before it: the peer's vector does not show
//! it, only the gap its ack reports does. The replica must not write that dot again — a peer
//! holding it drops the new op as one it has, and the regions differ while both say synced.
//! It stays fenced (the ops before the dot are gone, it cannot take them back), and the
//! next open continues as a new incarnation.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::pair::{deliver, send, settle, Node};
use common::store::{image, load_image};
use session_ha::replicate::FenceReason;
use session_ha::{Error, FsyncPolicy, ManualTime, SessionId};

/// Three regions that know each other; a writes s1..s5 and everyone holds them.
fn three() -> (ManualTime, Node, Node, Node) {
    let (time, a, b, c) = common::pair::three(FsyncPolicy::Always);
    for i in 1..=5 {
        a.s().put(format!("s{i}"), "k", "v").unwrap();
    }
    a.sync();
    settle(&time, &[&a, &b, &c], 2, 10);
    (time, a, b, c)
}

#[test]
fn a_copied_back_replica_stays_fenced_then_continues_as_a_new_incarnation() {
    let (time, mut a, b, c) = three();
    let old_id = a.id();
    let ours = a.s().read(|r| r.version_vector().get(old_id));
    assert_eq!(ours, 5);

    // The copy an operator keeps: a's directory after a clean close.
    a.close();
    let copy = image(&a.fs);
    a.open().unwrap();

    // Two more writes that reach c as ops; b gets only c's repaired copy of the second.
    a.s().put("x", "k", "lost").unwrap();
    a.s().put("y", "k", "kept").unwrap();
    a.sync();
    send(&a, &c, true);
    assert_eq!(c.s().read(|r| r.version_vector().get(old_id)), 7);
    let y: SessionId = "y".into();
    for f in c
        .s()
        .repair_frames(b.id(), std::slice::from_ref(&y))
        .unwrap()
    {
        deliver(&b, &f, true).unwrap();
    }
    let b_ctx = b.s().read(|r| r.status());
    assert_eq!(
        b_ctx.vv.get(old_id),
        5,
        "b holds a's seq 7 only out of order"
    );
    assert!(
        b_ctx.gaps.iter().any(|g| g.origin == old_id && g.to == 6),
        "b reports the gap before the dot it holds: {:?}",
        b_ctx.gaps
    );

    // c is gone for good, and a's directory is the copy again.
    drop(c);
    if let Some(s) = a.store.take() {
        s.kill();
    }
    a.fs = load_image(&copy);
    let report = a.open().unwrap();
    assert_eq!(
        report.reincarnated_from, None,
        "a clean copy opens as it was"
    );
    assert_eq!(a.id(), old_id);

    // The first exchange with b tells a that b holds seq 7 of its own id.
    send(&a, &b, true);
    send(&b, &a, true);
    let refused = a.s().put("z", "k", "new");
    assert!(
        matches!(
            refused,
            Err(Error::CatchingUp(FenceReason::HistoryRegression {
                theirs: 7,
                ..
            }))
        ),
        "a must not make seq 6 and 7 again, one of which b holds: {refused:?}"
    );
    settle(&time, &[&a, &b], 3, 10);
    assert!(
        matches!(
            a.s().put("z", "k", "new"),
            Err(Error::CatchingUp(FenceReason::HistoryRegression { .. }))
        ),
        "nobody holds seq 6, so the fence cannot lift under this id"
    );

    // A restart continues as a new incarnation, which catches up and writes again.
    a.close();
    let report = a.open().unwrap();
    assert_eq!(report.reincarnated_from, Some(old_id));
    assert_ne!(a.id(), old_id);
    settle(&time, &[&a, &b], 4, 10);
    a.s().put("z", "k", "new").unwrap();
    a.sync();
    settle(&time, &[&a, &b], 2, 10);
    let at_b = b.s().get_field(b"z", b"k").unwrap();
    assert_eq!(
        at_b.as_deref(),
        Some(&b"new"[..]),
        "b applied a's new write"
    );
    assert_eq!(
        b.s().get_field(b"y", b"k").unwrap().as_deref(),
        Some(&b"kept"[..]),
        "the copy of y b held is still there"
    );
    // y's copy holds a dot no vector covers (its op is gone), so no frame carries it to a:
    // the digests differ over it until an operator's repair, as for any such effect.
    assert_ne!(a.s().digest_root().unwrap(), b.s().digest_root().unwrap());
    for f in b
        .s()
        .repair_frames(a.id(), std::slice::from_ref(&y))
        .unwrap()
    {
        deliver(&a, &f, true).unwrap();
    }
    assert_eq!(a.s().digest_root().unwrap(), b.s().digest_root().unwrap());
}

#[test]
fn a_replica_whose_own_ops_a_peer_holds_in_order_is_not_refused_for_it() {
    // The same exchange without any loss: b's ack names no gap of a's ops, a writes on.
    let (time, a, b, _c) = three();
    a.s().put("x", "k", "v").unwrap();
    a.sync();
    send(&a, &b, true);
    send(&b, &a, true);
    settle(&time, &[&a, &b], 1, 10);
    assert_eq!(a.s().read(|r| r.fence()), None);
    a.s().put("y", "k", "v").unwrap();
}
