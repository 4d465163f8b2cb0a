//! I4 and the give-up of a retired origin's history. Region a ends a session; the end
//! reaches c, not b. a is retired; then c's disk dies too, and b is left holding less of a
//! than c did. If b gave a up at what it holds, the end would count as a given-up change:
//! c's backup, restored later, would hold it and drop it on catching up, and the session
//! would be live again at both. Nothing of a retired origin is given up below what a member
//! was reported to hold of it, so the end comes back with the backup (found by the
//! multi-region simulator, seed 42940), and that report is on record, so a survivor that
//! restarts in between still knows it. The same holds when the end reached c out of order
//! (inside a repair, past a change of a that never left it): c's acks tell b the runs it
//! holds beyond its vector, and b keeps those on record too. The price, in
//! `docs/DECISIONS.md`: such an origin stays unprotected, as one with a gap does.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::path::Path;

use common::pair::{deliver, repair_to, restored_from, send, settle, Node};
use session_ha::fs::Vfs;
use session_ha::FsyncPolicy;

/// How a's end reaches c.
#[derive(Clone, Copy)]
enum Reach {
    /// Replicated, in order.
    InOrder,
    /// Inside a repair of `s`, past a change of a (`u`) that never leaves a: c holds the
    /// end out of order, with a gap below it.
    OutOfOrder,
}

/// `from` repairs to `to` every session whose digest differs between them.
fn repair_differences(from: &Node, to: &Node) {
    let theirs = to.s().read(|r| r.digests().clone());
    let differ = from.s().read(|r| r.digests().diff(&theirs));
    repair_to(from, to, &differ);
}

/// `from`'s heartbeat to `to`, and its ack back: `to` learns what `from` holds, and no op
/// moves.
fn heartbeat(from: &Node, to: &Node) {
    let beat = from.s().heartbeat(to.id()).unwrap();
    if let Some(ack) = deliver(to, &beat, true) {
        from.s().receive(&ack).unwrap();
    }
}

#[test]
fn an_end_a_lost_member_held_comes_back_with_its_backup() {
    end_held_by_a_lost_member(Reach::InOrder, None);
}

#[test]
fn a_survivor_that_restarts_remembers_what_the_lost_member_held_from_its_log() {
    end_held_by_a_lost_member(Reach::InOrder, Some(false));
}

/// The report is logged with the ack or frame that raised it: a clean close runs no tick,
/// so logging it at the tick only would forget it here (b gives a up at 1).
#[test]
fn a_survivor_that_restarts_before_any_tick_remembers_what_the_lost_member_held() {
    end_held_by_a_lost_member_ticking(Reach::InOrder, Some(false), false);
}

#[test]
fn a_survivor_that_restarts_remembers_what_the_lost_member_held_from_its_snapshot() {
    end_held_by_a_lost_member(Reach::InOrder, Some(true));
}

/// Without the runs on record, b gives a up at 1 ("b gave a up below what c held of it")
/// and the restored node drops the end on catching up.
#[test]
fn an_end_a_lost_member_held_out_of_order_comes_back_with_its_backup() {
    end_held_by_a_lost_member(Reach::OutOfOrder, None);
}

#[test]
fn what_a_lost_member_held_out_of_order_is_remembered_from_the_log() {
    end_held_by_a_lost_member_ticking(Reach::OutOfOrder, Some(false), false);
}

#[test]
fn what_a_lost_member_held_out_of_order_is_remembered_from_the_snapshot() {
    end_held_by_a_lost_member(Reach::OutOfOrder, Some(true));
}

/// The scenario of the module doc; `restart` restarts b once it has heard what c holds,
/// before c dies, after a snapshot if `Some(true)` (the report is on record: logged at b's
/// tick, kept in its snapshots).
fn end_held_by_a_lost_member(reach: Reach, restart: Option<bool>) {
    end_held_by_a_lost_member_ticking(reach, restart, true);
}

/// [`end_held_by_a_lost_member`]; b ticks while it hears from c only if `ticks` (the
/// report must be on record with the ack that brought it, not only at the next tick).
fn end_held_by_a_lost_member_ticking(reach: Reach, restart: Option<bool>, ticks: bool) {
    let (time, a, mut b, mut c) = common::pair::three(FsyncPolicy::Always);
    a.s().put("s", "k", "v").unwrap();
    a.sync();
    settle(&time, &[&a, &b, &c], 2, 10);

    // The end reaches c only; c is backed up holding it.
    match reach {
        Reach::InOrder => {
            a.s().end("s").unwrap();
            a.sync();
            send(&a, &c, true);
        }
        Reach::OutOfOrder => {
            a.s().put("u", "k", "never leaves a").unwrap();
            a.s().end("s").unwrap();
            a.sync();
            repair_to(&a, &c, &["s".into()]);
            let gaps = c.s().status().replica.gaps;
            assert!(
                gaps.iter().any(|g| g.origin == a.id() && g.from == 2),
                "c holds a's end past a gap: {gaps:?}"
            );
        }
    }
    assert!(c
        .s()
        .read(|r| r.session_state(b"s").is_some_and(|s| s.is_ended())));
    let backup = Path::new("/backups/c.backup");
    c.fs.create_dir_all(Path::new("/backups")).unwrap();
    c.s().backup(backup).unwrap();

    // a is lost and retired; b hears from c only by heartbeats, so it learns that c holds
    // a's end without getting it.
    let a_id = a.id();
    drop(a);
    b.s().remove_member(a_id).unwrap();
    c.s().remove_member(a_id).unwrap();
    for _ in 0..3 {
        heartbeat(&b, &c);
        heartbeat(&c, &b);
        time.advance(10);
        if ticks {
            b.s().tick().unwrap();
        }
        c.s().tick().unwrap();
    }
    assert!(b.s().get(b"s").unwrap().is_some(), "b never got the end");
    if let Some(snapshot) = restart {
        if snapshot {
            b.s().snapshot().unwrap();
        }
        b.close();
        b.open().unwrap();
    }

    // c's disk dies; b retires it and runs on alone.
    let c_id = c.id();
    let restored = restored_from(&c, backup, FsyncPolicy::Always);
    c.power_cut();
    b.s().remove_member(c_id).unwrap();
    for _ in 0..5 {
        time.advance(10);
        b.s().tick().unwrap();
        b.sync();
    }
    let given_up = b
        .s()
        .status()
        .replica
        .retired
        .iter()
        .find(|r| r.id == a_id)
        .and_then(|r| r.given_up_at);
    assert_eq!(given_up, None, "b gave a up below what c held of it");

    // The operator restores c's backup; it joins b and catches up.
    let mut c2 = restored;
    c2.open().unwrap();
    c2.meet(&b);
    b.meet(&c2);
    settle(&time, &[&b, &c2], 6, 10);
    assert_eq!(c2.s().status().replica.fence, None, "caught up with b");
    // Replication ships what vectors tell apart; a change held out of order travels in the
    // operator's repair (the README's incident step) of the sessions whose digests differ.
    repair_differences(&c2, &b);
    settle(&time, &[&b, &c2], 2, 10);
    assert!(
        c2.s().get(b"s").unwrap().is_none(),
        "the end was dropped at the restored node"
    );
    assert!(
        b.s().get(b"s").unwrap().is_none(),
        "the session is live again at b"
    );
}
