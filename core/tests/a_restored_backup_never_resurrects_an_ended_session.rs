//! I4: a session ended anywhere is never live again anywhere, whatever backup, restore,
//! state transfer, repair or collection happens. The failure this guards against: back up,
//! end a session, let the end be collected everywhere, restore the backup: the session was
//! live again at the restored node, and one repair spread it to every peer.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;

use common::pair::{pair, sync_all, Node};
use session_ha::replicate::FenceReason;
use session_ha::{Error, FsyncPolicy, Limits, ManualTime, Message, SessionId};

/// Ends `gone` at `a`, replicates, and lets both collect the end (and forget the id).
fn end_and_collect(time: &ManualTime, a: &Node, b: &Node) {
    a.s().end("gone").unwrap();
    for _ in 0..8 {
        sync_all(&[a, b]);
        time.advance(31_000);
        a.s().tick().unwrap();
        b.s().tick().unwrap();
    }
    for n in [a, b] {
        assert!(
            n.s().read(|r| r.session_state(b"gone").is_none()),
            "the end was collected and the id forgotten"
        );
    }
}

use session_ha::fs::Vfs;

#[test]
fn a_restore_serves_nothing_until_caught_up_and_then_not_the_ended_session() {
    restore_then_catch_up(None);
}

/// The same with an op log too short for the end: the restored replica catches up by a
/// state transfer, which does not carry the collected session; the causal merge drops it.
#[test]
fn a_restore_caught_up_by_state_transfer_drops_the_collected_session() {
    restore_then_catch_up(Some(2));
}

fn restore_then_catch_up(log_max_ops: Option<usize>) {
    let (time, mut a, mut b) = pair(FsyncPolicy::Always);
    if let Some(max) = log_max_ops {
        for n in [&mut a, &mut b] {
            n.close();
            n.config.replica.log_max_ops = max;
            n.open().unwrap();
        }
    }
    a.s().put("gone", "k", "old").unwrap();
    a.s().put("kept", "k", "v").unwrap();
    sync_all(&[&a, &b]);
    // The backup is taken while "gone" is live.
    let backup = Path::new("/backups/a.backup");
    a.fs.create_dir_all(Path::new("/backups")).unwrap();
    a.s().backup(backup).unwrap();
    end_and_collect(&time, &a, &b);
    // Later writes push the end out of a short op log.
    for i in 0..5 {
        a.s().put(format!("later{i}"), "k", "v").unwrap();
    }
    sync_all(&[&a, &b]);

    // Restore the old backup as a new replica of the region.
    let mut r = common::pair::restored_from(&a, backup, FsyncPolicy::Always);
    let report = r.open().unwrap();
    assert_eq!(report.fence, Some(FenceReason::Restored));
    // Its state is as old as the backup: it says so instead of serving "gone".
    assert!(matches!(
        r.s().get(b"gone"),
        Err(Error::CatchingUp(FenceReason::Restored))
    ));
    assert!(r.s().read(|x| x.session_state(b"gone").is_some()));

    // The restored replica makes no repair before it caught up: its state is the backup's.
    b.s().add_peer(r.id(), "us-east-1").unwrap();
    assert!(matches!(
        r.s().repair_frames(b.id(), &[SessionId::from("gone")]),
        Err(Error::CatchingUp(FenceReason::Restored))
    ));
    assert!(
        b.s().get(b"gone").unwrap().is_none(),
        "the repair resurrected it at b"
    );

    // Catching up with b drops the session the cluster collected, and lifts the fence.
    sync_all(&[&r, &b]);
    assert!(r.s().status().replica.fence.is_none(), "caught up with b");
    assert!(
        r.s().get(b"gone").unwrap().is_none(),
        "resurrected at the restored node"
    );
    assert!(
        r.s()
            .read(|x| x.session_state(b"gone").is_none_or(|s| s.is_ended())),
        "held ended (its end arrived) or not at all (the transfer dropped it)"
    );
    if log_max_ops.is_some() {
        assert!(
            r.s().read(|x| x.session_state(b"gone").is_none()),
            "the end was not in b's op log: only the transfer's causal merge drops it"
        );
    }
    assert_eq!(
        r.s().get_field(b"kept", b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(b.s().get(b"gone").unwrap().is_none());
    assert_eq!(r.s().digest_root().unwrap(), b.s().digest_root().unwrap());
}

#[test]
fn a_repair_from_a_stale_copy_never_brings_back_a_collected_session() {
    let (time, a, b) = pair(FsyncPolicy::Always);
    a.s().put("gone", "k", "old").unwrap();
    sync_all(&[&a, &b]);
    // A repair frame of the live session, made now and delivered after the collection.
    let late = a
        .s()
        .repair_frames(b.id(), &[SessionId::from("gone")])
        .unwrap();
    end_and_collect(&time, &a, &b);
    for f in late {
        // Delivered as it is, it is a replay: refused outright.
        let replayed = b.s().receive_deferred(&f);
        assert!(
            matches!(replayed, Err(Error::ReplayedFrame { .. })),
            "{replayed:?}"
        );
        // A stale copy that is not a replay (say, from a peer restored from an old
        // backup) is merged causally: renumber it past everything sent so far.
        let Ok(Message::Frame(mut frame)) = Message::decode(&f, &Limits::default()) else {
            panic!("a repair frame");
        };
        frame.frame_no = 1 << 40;
        let _ = common::pair::deliver(&b, &Message::Frame(frame).encode(), true);
    }
    assert!(
        b.s().get(b"gone").unwrap().is_none(),
        "the late repair resurrected it"
    );
    assert!(b.s().read(|x| x.session_state(b"gone").is_none()));
}

/// A touch concurrent with the end stays in op logs after the end is collected and
/// forgotten everywhere; a replica that joins later (a new incarnation, a new region) must
/// never hold the session live, whichever member it hears from first.
#[test]
fn a_replica_that_joins_after_a_collection_never_gets_the_sessions_old_ops() {
    let (time, a, b) = pair(FsyncPolicy::Always);
    a.s().put("gone", "k", "v").unwrap();
    sync_all(&[&a, &b]);
    // b touches it while a ends it: the touch is concurrent with the end.
    b.s().touch("gone", 3_600_000).unwrap();
    end_and_collect(&time, &a, &b);
    // The newcomer hears from b first: b's log still holds the touch.
    let c = Node::new("ap-south-1", FsyncPolicy::Always, &time, 3);
    b.meet(&c);
    c.meet(&b);
    sync_all(&[&b, &c]);
    assert!(
        c.s().get(b"gone").unwrap().is_none(),
        "an old op brought the forgotten session back at the newcomer"
    );
    a.meet(&c);
    c.meet(&a);
    sync_all(&[&a, &b, &c]);
    assert!(c.s().get(b"gone").unwrap().is_none());
    assert_eq!(c.s().digest_root().unwrap(), a.s().digest_root().unwrap());
}
