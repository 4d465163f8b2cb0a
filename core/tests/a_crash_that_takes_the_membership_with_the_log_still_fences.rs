//! I4 after a crash that lost the records naming the replica's members: membership lives in
//! the log and in snapshots, so a power cut that takes the newest segment (or all of
//! `wal/`) can leave a replica that knows no member and cannot tell that the cluster has
//! collected ends it never saw. The failure this guards against: such a replica opened
//! unfenced, was introduced to its old peers again, and served a session whose end they
//! had collected. Now the first member it is introduced to raises its catch-up fence.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;

use common::pair::{sync_all, Node, NODE_DIR};
use common::store::T0;
use session_ha::replicate::FenceReason;
use session_ha::{FsyncPolicy, ManualTime};

#[test]
fn a_replica_that_lost_its_members_with_its_log_is_fenced_when_it_meets_one() {
    let time = ManualTime::new(T0);
    let mut a = Node::new("us-east-1", FsyncPolicy::Always, &time, 1);
    let b = Node::new("eu-central-1", FsyncPolicy::Always, &time, 2);
    // a snapshots "gone" while it knows no member yet.
    a.s().put("gone", "k", "old").unwrap();
    a.s().snapshot().unwrap();
    a.meet(&b);
    b.meet(&a);
    sync_all(&[&a, &b]);
    // b ends it; both collect the end and forget the id.
    b.s().end("gone").unwrap();
    for _ in 0..8 {
        sync_all(&[&a, &b]);
        time.advance(31_000);
        a.s().tick().unwrap();
        b.s().tick().unwrap();
    }
    for n in [&a, &b] {
        assert!(n.s().read(|r| r.session_state(b"gone").is_none()));
    }

    // A power cut, and the log goes with it: only the snapshot, with "gone" live and no
    // member, is left.
    a.power_cut();
    assert!(a.fs.erase(&Path::new(NODE_DIR).join("wal")));
    let report = a.open().unwrap();
    assert!(report.reincarnated_from.is_some(), "{report:?}");
    assert!(
        a.s().read(|r| r.peers().is_empty()),
        "the members were lost"
    );
    // Its first member raises the fence: nothing is served until it has caught up.
    a.meet(&b);
    assert_eq!(
        a.s().status().replica.fence,
        Some(FenceReason::LostTail),
        "a replica that may be older than what the cluster collected stays unfenced"
    );
    assert!(
        a.s().get(b"gone").is_err(),
        "a fenced replica served a read"
    );

    b.s().put("later", "k", "v").unwrap();
    sync_all(&[&a, &b]);
    assert_eq!(a.s().status().replica.fence, None, "caught up with b");
    assert!(
        a.s().get(b"gone").unwrap().is_none(),
        "the session whose end was collected is served again"
    );
    assert_eq!(
        a.s().get_field(b"later", b"k").unwrap().as_deref(),
        Some(&b"v"[..])
    );
}
