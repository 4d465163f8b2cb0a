//! Two sides of the give-up floor (`give_up.rs`): what a member held of an origin when that
//! origin was retired counts, although that member never acks again; and a replica kept
//! from giving up by the floor still follows a mark another member already set at the seq
//! it holds (two marks of one origin would stop collection's frontier for good). The floor
//! is what this replica heard: a member that never heard the lost member's report gives
//! the origin up below it, and the others follow (`docs/DECISIONS.md`, "What stays
//! unprotected").
//!
//! Region a writes `s` (reaching every member) and then `u`, which reaches d only.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::mesh::{given_up_at, heartbeat, heartbeats, mesh, send};
use session_ha::{ManualTime, Replica, ReplicaConfig};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;

/// a, b, c, d; a's first change reaches all, its second d only; b hears from d by
/// heartbeats (d's ack tells b it holds a's 2). c hears nothing of d's holding.
fn a_second_change_held_by_d_alone(time: &ManualTime) -> Vec<Replica> {
    let mut rs = mesh(&["a", "b", "c", "d"], time, ReplicaConfig::default());
    rs[A].put("s", "k", "1").unwrap();
    for r in [B, C, D] {
        send(&mut rs, A, r);
    }
    rs[A].put("u", "k", "2 reaches d only").unwrap();
    send(&mut rs, A, D);
    heartbeats(time, &mut rs, B, D);
    rs
}

#[test]
fn what_a_member_held_when_the_origin_was_retired_is_never_given_up() {
    // a, b, d: b retires a while d is a member (b's floor: d's acked 2), then d, which
    // never acks again. b holds a's 1 only, and alone: without the floor raised at the
    // removal, it gives a up at 1, and d's backup, restored later, would have a's 2
    // dropped.
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&["a", "b", "d"], &time, ReplicaConfig::default());
    let d = 2;
    rs[A].put("s", "k", "1").unwrap();
    send(&mut rs, A, B);
    rs[A].put("u", "k", "2 reaches d only").unwrap();
    send(&mut rs, A, d);
    heartbeats(&time, &mut rs, B, d);
    let (a_id, d_id) = (rs[A].id(), rs[d].id());
    rs[B].remove_member(a_id).unwrap();
    rs[B].remove_member(d_id).unwrap();
    for _ in 0..4 {
        time.advance(10);
        rs[B].tick();
    }
    assert_eq!(given_up_at(&rs[B], a_id), None);
}

#[test]
fn a_member_with_nothing_more_lets_the_origin_go_at_what_is_held() {
    // The same without the second change: the floor is what b and c hold, and both give
    // a up there (the test above waits for the floor, not for anything else).
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&["a", "b", "c", "d"], &time, ReplicaConfig::default());
    rs[A].put("s", "k", "1").unwrap();
    for r in [B, C, D] {
        send(&mut rs, A, r);
    }
    heartbeats(&time, &mut rs, B, D);
    let (a, d) = (rs[A].id(), rs[D].id());
    for r in [B, C] {
        rs[r].remove_member(a).unwrap();
        rs[r].remove_member(d).unwrap();
    }
    for _ in 0..4 {
        heartbeats(&time, &mut rs, B, C);
    }
    assert_eq!(given_up_at(&rs[B], a), Some(1));
    assert_eq!(given_up_at(&rs[C], a), Some(1));
}

#[test]
fn a_replica_kept_back_by_the_floor_follows_a_members_mark() {
    // c retires a and d having heard nothing of d's 2, and gives a up at 1 once b confirms
    // both retirements. b knows d held 2, so b sets no mark of its own; it follows c's mark
    // at the seq it holds, as every member must end with one mark.
    let time = ManualTime::new(1_000);
    let mut rs = a_second_change_held_by_d_alone(&time);
    let (a, d) = (rs[A].id(), rs[D].id());
    for r in [C, B] {
        rs[r].remove_member(a).unwrap();
        rs[r].remove_member(d).unwrap();
    }
    // c hears b's confirmation from b's ack, but b hears nothing of c until c has its mark.
    // (b's floor was raised before: d's 2.)
    for _ in 0..4 {
        heartbeat(&mut rs, C, B);
        time.advance(10);
        rs[C].tick();
        rs[B].tick();
    }
    assert_eq!(given_up_at(&rs[C], a), Some(1), "c gave a up at 1");
    assert_eq!(given_up_at(&rs[B], a), None, "not before b hears c's mark");
    for _ in 0..2 {
        heartbeats(&time, &mut rs, B, C);
    }
    assert_eq!(given_up_at(&rs[B], a), Some(1), "b follows c's mark");
}
