//! I4 with a retired region's unreplicated write. Region a makes a write that never leaves
//! it, and is lost; b retires a, ends the session and collects the end. Then a's write
//! comes back: in a backup the operator restores as a new incarnation, or from a's own disk
//! when the region returns. Unless b's vector says it has seen that write, it is news, and
//! brings the ended session back at the returning node and, once that one caught up, at b.
//! b gives a's history up once the retirement is confirmed (`causal::GIVEN_UP`); the rule
//! and its price are in `docs/DECISIONS.md` ("A retired incarnation's unreplicated
//! writes"). Without the give-up, the first two tests fail with "revived at the returning
//! node".

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::pair::{backed_up_then_lost, pair, retire_end_and_collect, settle, sync_all, Node};
use session_ha::FsyncPolicy;

/// a writes `s.k` (replicated to b) and `s.k2` (durable at a only).
fn write_then_one_unreplicated(a: &Node, b: &Node) {
    a.s().put("s", "k", "v").unwrap();
    sync_all(&[a, b]);
    a.s().put("s", "k2", "unreplicated").unwrap();
    a.sync();
}

/// `back` (the returning node, fenced) catches up with b; neither serves `s`.
fn catch_up_without_revival(back: &Node, b: &Node) {
    sync_all(&[back, b]);
    assert!(
        back.s().status().replica.fence.is_none(),
        "caught up with b"
    );
    assert!(
        back.s().get(b"s").unwrap().is_none(),
        "revived at the returning node"
    );
    assert!(b.s().get(b"s").unwrap().is_none(), "revived at b");
    // The dropped write is never sent as an op afterwards either.
    for _ in 0..3 {
        sync_all(&[back, b]);
    }
    assert!(b.s().get(b"s").unwrap().is_none(), "revived at b later");
    assert!(back.s().get(b"s").unwrap().is_none(), "revived later");
}

#[test]
fn a_restored_backup_of_a_retired_region_does_not_revive_a_session_ended_since() {
    let (time, mut a, b) = pair(FsyncPolicy::Always);
    write_then_one_unreplicated(&a, &b);
    let a_id = a.id();
    let mut r = backed_up_then_lost(&mut a);
    retire_end_and_collect(&time, &b, a_id);
    let report = r.open().unwrap();
    assert_eq!(
        report.fence,
        Some(session_ha::replicate::FenceReason::Restored)
    );
    b.s().add_peer(r.id(), "us-east-1").unwrap();
    catch_up_without_revival(&r, &b);
}

#[test]
fn a_retired_region_back_from_its_own_disk_does_not_revive_a_session_ended_since() {
    let (time, mut a, b) = pair(FsyncPolicy::Always);
    write_then_one_unreplicated(&a, &b);
    let a_id = a.id();
    // a's host dies with its disk intact (the unreplicated write is on it).
    a.power_cut();
    retire_end_and_collect(&time, &b, a_id);
    // The host comes back: a new incarnation, fenced, holding the write in its log.
    let report = a.open().unwrap();
    assert!(
        report.fence.is_some(),
        "a crashed open of a clustered replica is fenced"
    );
    assert_ne!(a.id(), a_id);
    assert!(
        a.s().read(|r| r.session_state(b"s").is_some()),
        "the write is back"
    );
    b.s().add_peer(a.id(), "us-east-1").unwrap();
    catch_up_without_revival(&a, &b);
}

/// [`write_then_one_unreplicated`], plus a session only a holds (`new`); then a is backed
/// up and lost. Returns a's id and the node restored from the backup (not yet opened).
fn two_unreplicated_writes_then_lost(a: &mut Node, b: &Node) -> (session_ha::ReplicaId, Node) {
    write_then_one_unreplicated(a, b);
    a.s().put("new", "k", "only at a").unwrap();
    a.sync();
    (a.id(), backed_up_then_lost(a))
}

#[test]
fn a_backup_restored_after_its_region_was_given_up_brings_back_only_what_the_cluster_held() {
    // Once every member confirmed the retirement and b holds what any member held of a, a's
    // history is given up: a write that never left a counts as seen and removed, to a
    // session b still holds as to one it never heard of.
    let (time, mut a, b) = pair(FsyncPolicy::Always);
    let (a_id, mut r) = two_unreplicated_writes_then_lost(&mut a, &b);
    b.s().remove_member(a_id).unwrap();
    time.advance(1_000);
    b.s().tick().unwrap();
    b.sync();
    r.open().unwrap();
    b.s().add_peer(r.id(), "us-east-1").unwrap();
    settle(&time, &[&r, &b], 3, 1_000);
    assert!(r.s().status().replica.fence.is_none(), "caught up with b");
    for n in [&r, &b] {
        let s = n.s().get(b"s").unwrap().expect("s is live");
        assert!(s.fields.get(b"k").is_some(), "what b held stays");
        assert!(s.fields.get(b"k2").is_none(), "a given-up write came back");
        assert!(
            n.s().get(b"new").unwrap().is_none(),
            "a given-up session came back"
        );
    }
}

#[test]
fn a_backup_restored_before_its_region_is_retired_brings_back_its_unreplicated_writes() {
    // The way to recover them: restore first. The restored node continues a's history as a
    // new incarnation and retires a itself; b confirms that retirement only with the
    // restored node's holdings counted, so nothing it holds is given up.
    let (time, mut a, b) = pair(FsyncPolicy::Always);
    let (a_id, mut r) = two_unreplicated_writes_then_lost(&mut a, &b);
    r.open().unwrap();
    b.s().add_peer(r.id(), "us-east-1").unwrap();
    settle(&time, &[&r, &b], 4, 1_000);
    assert!(
        b.s().status().replica.removed.contains(&a_id),
        "b took a's retirement from the restored node"
    );
    for n in [&r, &b] {
        let s = n.s().get(b"s").unwrap().expect("s is live");
        assert!(s.fields.get(b"k2").is_some(), "k2 recovered");
        assert!(n.s().get(b"new").unwrap().is_some(), "new recovered");
    }
    // Its history is given up only now, with nothing of it missing: ending s and
    // collecting the end leaves it ended at both.
    b.s().end("s").unwrap();
    settle(&time, &[&r, &b], 8, 31_000);
    for n in [&r, &b] {
        assert!(n.s().get(b"s").unwrap().is_none(), "s ended");
        assert!(
            n.s().read(|x| x.session_state(b"s").is_none()),
            "end collected"
        );
    }
}
