//! I4 after a crash that lost the records naming the replica's members: membership lives in
//! the log and in snapshots, so a power cut that takes the newest segment (or all of
//! `wal/`) can leave a replica that knows no member and cannot tell that the cluster has
//! collected ends it never saw. The failure this guards against: such a replica opened
//! unfenced, was introduced to its old peers again, and served a session whose end they
//! had collected. The manifest now records that the replica has had a member (installed
//! when its first member is added), so the open fences it; a store whose manifest predates
//! that record (version 2) is fenced when it meets its first member.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;

use common::pair::{sync_all, Node, NODE_DIR};
use common::store::{replace_file, T0};
use session_ha::fs::Vfs;
use session_ha::replicate::FenceReason;
use session_ha::snapshot::{Manifest, SLOTS};
use session_ha::{FsyncPolicy, ManualTime};

/// `a` snapshots "gone" before it has a member, meets `b`, and `b` ends "gone"; both
/// collect the end. Then `a` loses power and its log: only the snapshot is left.
fn lose_the_members(time: &ManualTime, a: &mut Node, b: &Node, unclustered: bool) {
    a.s().put("gone", "k", "old").unwrap();
    a.s().snapshot().unwrap();
    a.meet(b);
    b.meet(a);
    sync_all(&[a, b]);
    b.s().end("gone").unwrap();
    for _ in 0..8 {
        sync_all(&[a, b]);
        time.advance(31_000);
        a.s().tick().unwrap();
        b.s().tick().unwrap();
    }
    for n in [&*a, b] {
        assert!(n.s().read(|r| r.session_state(b"gone").is_none()));
    }
    a.power_cut();
    assert!(a.fs.erase(&Path::new(NODE_DIR).join("wal")));
    if unclustered {
        // As a version-2 store's manifest: no record of ever having had a member.
        for slot in SLOTS {
            let path = Path::new(NODE_DIR).join(slot);
            let mut m = Manifest::decode(&a.fs.read_file(&path).unwrap()).unwrap();
            m.clustered = false;
            replace_file(&a.fs, &path, &m.encode());
        }
    }
}

/// After `a` caught up with `b`: the collected session stays gone, later writes arrive.
fn caught_up_without_the_collected_session(a: &Node, b: &Node) {
    b.s().put("later", "k", "v").unwrap();
    sync_all(&[a, b]);
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

#[test]
fn a_replica_that_lost_its_members_with_its_log_opens_fenced() {
    let time = ManualTime::new(T0);
    let mut a = Node::new("us-east-1", FsyncPolicy::Always, &time, 1);
    let b = Node::new("eu-central-1", FsyncPolicy::Always, &time, 2);
    lose_the_members(&time, &mut a, &b, false);
    let report = a.open().unwrap();
    assert!(report.reincarnated_from.is_some(), "{report:?}");
    assert!(
        a.s().read(|r| r.peers().is_empty()),
        "the members were lost"
    );
    assert_eq!(
        report.fence,
        Some(FenceReason::LostTail),
        "a replica that may be older than what the cluster collected opened unfenced"
    );
    assert!(
        a.s().get(b"gone").is_err(),
        "a fenced replica served a read"
    );
    a.meet(&b);
    assert!(
        a.s().get(b"gone").is_err(),
        "a fenced replica served a read"
    );
    caught_up_without_the_collected_session(&a, &b);
}

#[test]
fn a_store_without_that_record_is_fenced_when_it_meets_its_first_member() {
    let time = ManualTime::new(T0);
    let mut a = Node::new("us-east-1", FsyncPolicy::Always, &time, 1);
    let b = Node::new("eu-central-1", FsyncPolicy::Always, &time, 2);
    lose_the_members(&time, &mut a, &b, true);
    let report = a.open().unwrap();
    assert!(report.reincarnated_from.is_some(), "{report:?}");
    assert_eq!(report.fence, None, "nothing on disk says it had members");
    // A clean close before it meets anyone (as `session-ha retire` does) must not make the
    // next open forget that it crashed.
    a.close();
    let report = a.open().unwrap();
    assert!(!report.clean_shutdown, "{report:?}");
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
    caught_up_without_the_collected_session(&a, &b);
}
