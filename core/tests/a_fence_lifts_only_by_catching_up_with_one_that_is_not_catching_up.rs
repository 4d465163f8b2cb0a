//! The catch-up fence after a crash (I2, I4): a replica that restarted after an unclean stop
//! is a new incarnation, fenced while it has members, and only an acknowledgement from a
//! member that is not catching up itself lifts the fence. The failure this guards against:
//! two regions crashed, the first to come back caught up with the second (which had lost the
//! end of a session the cluster had collected) and served that session again. When every
//! member crashed, what they hold together is all there is: the fences lift once each holds
//! everything every member acknowledged to it.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::pair::{send, sync_all, Node};
use session_ha::{FsyncPolicy, ManualTime};

fn fenced(n: &Node) -> bool {
    n.s().status().replica.fence.is_some()
}

fn three() -> (ManualTime, Node, Node, Node) {
    let (time, a, b, c) = common::pair::three(FsyncPolicy::Always);
    a.s().put("s", "k", "v").unwrap();
    sync_all(&[&a, &b, &c]);
    (time, a, b, c)
}

fn crash(n: &mut Node) {
    let old = n.id();
    n.power_cut();
    let report = n.open().unwrap();
    assert_eq!(report.reincarnated_from, Some(old), "{report:?}");
    assert!(report.fence.is_some(), "{report:?}");
}

#[test]
fn an_ack_from_a_member_catching_up_itself_lifts_no_fence() {
    let (_time, mut a, mut b, c) = three();
    crash(&mut a);
    crash(&mut b);
    // a and b talk only to each other: each holds all the other does, and both stay fenced.
    for _ in 0..4 {
        send(&a, &b, true);
        send(&b, &a, true);
    }
    assert!(fenced(&a) && fenced(&b));
    assert!(a.s().get(b"s").is_err(), "a fenced replica served a read");
    // c never crashed: its ack is the one that counts.
    sync_all(&[&a, &b, &c]);
    assert!(!fenced(&a) && !fenced(&b) && !fenced(&c));
    for n in [&a, &b, &c] {
        assert_eq!(
            n.s().get_field(b"s", b"k").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}

#[test]
fn when_every_member_crashed_the_fences_lift_once_all_hold_the_same() {
    let (_time, mut a, mut b, mut c) = three();
    crash(&mut a);
    crash(&mut b);
    crash(&mut c);
    // Two of three talking is not enough: the third may hold what neither does.
    for _ in 0..4 {
        send(&a, &b, true);
        send(&b, &a, true);
    }
    assert!(fenced(&a) && fenced(&b) && fenced(&c));
    sync_all(&[&a, &b, &c]);
    assert!(!fenced(&a) && !fenced(&b) && !fenced(&c));
    let root = a.s().digest_root().unwrap();
    assert_eq!(b.s().digest_root().unwrap(), root);
    assert_eq!(c.s().digest_root().unwrap(), root);
}

/// A fence raised at open is on record in the log too: an older `Unfence` record replayed at
/// the next open must not lift it. (The fence of the manifest is applied before the log is
/// replayed.)
#[test]
fn a_fence_raised_at_open_survives_the_replay_of_an_older_unfence() {
    let (_time, mut a, b, c) = three();
    crash(&mut a);
    sync_all(&[&a, &b, &c]);
    assert!(!fenced(&a), "caught up: an Unfence record is in a's log");
    // A second crash, and a clean stop before a catches up again.
    crash(&mut a);
    a.close();
    let report = a.open().unwrap();
    assert!(report.fence.is_some(), "{report:?}");
    assert!(fenced(&a), "the older Unfence record lifted the fence");
}

/// After a crash the replica has a new id; until a peer learns it, the peer's frames go to
/// the old id (numbered on), and then to the new one, numbered from 1. Neither stream is a
/// replay of the other: the frames numbered afresh are taken at once (a shared count refused
/// them as replays until the new numbering caught up with the old, seconds of stalled
/// catching up in the DR drill).
#[test]
fn frames_for_the_old_id_and_the_new_one_are_numbered_apart() {
    let (_time, a, mut b, _c) = three();
    let old_b = b.id();
    for i in 0..5 {
        a.s().put(format!("s{i}"), "k", "v").unwrap();
        a.sync();
        let f = a.s().frame_for(old_b).unwrap().unwrap();
        b.s().receive(&f).unwrap();
    }
    crash(&mut b);
    // a does not know b's new id yet: its frames still name the old one.
    a.s().put("before", "k", "v").unwrap();
    a.sync();
    let f = a.s().frame_for(old_b).unwrap().unwrap();
    b.s().receive(&f).unwrap();
    // a learns the new id (a hello); its first frame to it is number 1.
    common::pair::hello(&b, &a);
    let hb = a.s().heartbeat(b.id()).unwrap();
    let taken = b.s().receive(&hb);
    assert!(taken.is_ok(), "{taken:?}");
}
