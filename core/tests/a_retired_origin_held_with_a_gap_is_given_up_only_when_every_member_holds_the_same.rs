//! Giving up a retired origin held with a gap (`give_up.rs`). Region a's changes reach b and
//! c only partly: 1 as an op, 3 (and 4) inside repaired copies; 2 never leaves a. Once a is
//! retired, a mark at the highest seq held counts the gap as seen, so it must be the same at
//! every member and cover everything any member holds: a member with a change above another
//! member's mark would lose it at the next merge. Members tell each other what they hold
//! beyond their vectors in their acks' gaps, the last run of each retired origin included.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::mesh::{given_up_at, heartbeats, mesh, repair, rounds, send};
use session_ha::causal::Gap;
use session_ha::replicate::MAX_SEQ;
use session_ha::{Limits, ManualTime, Message, Replica, ReplicaConfig, ReplicaId, SessionId};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

/// a, b, c; a writes `s` (sent to both), `u` (never sent), `t` (repaired to both), and,
/// when `v_to_b_only`, `v` (repaired to b alone). Returns the replicas and a's id.
fn partly_replicated(time: &ManualTime, v_to_b_only: bool) -> (Vec<Replica>, ReplicaId) {
    let mut rs = mesh(&["a", "b", "c"], time, ReplicaConfig::default());
    rs[A].put("s", "k", "1").unwrap();
    send(&mut rs, A, B);
    send(&mut rs, A, C);
    rs[A].put("u", "k", "2 never leaves a").unwrap();
    rs[A].put("t", "k", "3").unwrap();
    let t: SessionId = "t".into();
    repair(&mut rs, A, B, std::slice::from_ref(&t));
    repair(&mut rs, A, C, std::slice::from_ref(&t));
    if v_to_b_only {
        rs[A].put("v", "k", "4").unwrap();
        repair(&mut rs, A, B, &["v".into()]);
    }
    let a = rs[A].id();
    for r in [B, C] {
        rs[r].remove_member(a).unwrap();
    }
    (rs, a)
}

#[test]
fn members_holding_the_same_give_it_up_at_the_highest_seq_held() {
    let time = ManualTime::new(1_000);
    let (mut rs, a) = partly_replicated(&time, false);
    rounds(&time, &mut rs, &[B, C], 4);
    for r in [B, C] {
        assert_eq!(given_up_at(&rs[r], a), Some(3), "{}", rs[r].name());
        assert!(rs[r].status().gaps.is_empty(), "the gap counts as seen");
        assert!(rs[r].contains(b"t") && rs[r].contains(b"s"));
    }
}

#[test]
fn a_member_holding_more_is_waited_for_until_the_others_hold_it_too() {
    let time = ManualTime::new(1_000);
    let (mut rs, a) = partly_replicated(&time, true);
    for _ in 0..4 {
        heartbeats(&time, &mut rs, B, C);
    }
    // b holds 1, 3, 4 and c 1, 3: neither may give a up (c at 3 would lose b's 4).
    for r in [B, C] {
        assert_eq!(given_up_at(&rs[r], a), None, "{}", rs[r].name());
    }
    // What b holds reaches c (a repair here; replication's own transfers do it too).
    repair(&mut rs, B, C, &["v".into()]);
    for _ in 0..2 {
        heartbeats(&time, &mut rs, B, C);
    }
    for r in [B, C] {
        assert_eq!(given_up_at(&rs[r], a), Some(4), "{}", rs[r].name());
        assert!(rs[r].contains(b"v"), "{} kept a's 4", rs[r].name());
    }
}

/// c's ack to b's heartbeat, without the last run of each origin (as a build from before
/// sends it).
fn ack_without_last_runs(rs: &mut [Replica]) -> Vec<u8> {
    let c_id = rs[C].id();
    let beat = rs[B].heartbeat(c_id).unwrap();
    let bytes = rs[B].encode(&Message::Frame(beat));
    let reply = rs[C].receive(&bytes).unwrap().reply.unwrap();
    let Ok(Message::Ack(mut ack)) = Message::decode(&reply, &Limits::default()) else {
        panic!("an ack");
    };
    let before = ack.gaps.len();
    ack.gaps.retain(|g: &Gap| g.to != MAX_SEQ);
    assert!(
        ack.gaps.len() < before,
        "c's ack had a last run: {:?}",
        ack.gaps
    );
    Message::Ack(ack).encode()
}

#[test]
fn a_member_that_does_not_tell_its_last_run_is_not_taken_to_hold_the_same() {
    let time = ManualTime::new(1_000);
    let (mut rs, a) = partly_replicated(&time, false);
    // b hears of c's removal report and holdings only from acks without the last run.
    for _ in 0..4 {
        time.advance(10);
        let ack = ack_without_last_runs(&mut rs);
        rs[B].receive(&ack).unwrap();
        rs[B].tick();
    }
    assert_eq!(given_up_at(&rs[B], a), None);
}

#[test]
fn a_gap_a_lost_member_held_in_order_is_not_given_up() {
    // d held a's 1..=3 in order and reported it; then d is lost. b and c hold 1 and 3, the
    // same: giving up at 3 would count 2 as seen, and d's backup, restored later, would
    // have it dropped.
    let time = ManualTime::new(1_000);
    let d = 3;
    let mut rs = mesh(&["a", "b", "c", "d"], &time, ReplicaConfig::default());
    rs[A].put("s", "k", "1").unwrap();
    for r in [B, C, d] {
        send(&mut rs, A, r);
    }
    rs[A].put("u", "k", "2").unwrap();
    rs[A].put("t", "k", "3").unwrap();
    send(&mut rs, A, d);
    let t: SessionId = "t".into();
    repair(&mut rs, A, B, std::slice::from_ref(&t));
    repair(&mut rs, A, C, std::slice::from_ref(&t));
    // b and c hear what d holds.
    for r in [B, C] {
        heartbeats(&time, &mut rs, r, d);
    }
    let (a, d_id) = (rs[A].id(), rs[d].id());
    for r in [B, C] {
        rs[r].remove_member(a).unwrap();
        rs[r].remove_member(d_id).unwrap();
    }
    for _ in 0..4 {
        heartbeats(&time, &mut rs, B, C);
    }
    for r in [B, C] {
        assert_eq!(given_up_at(&rs[r], a), None, "{}", rs[r].name());
    }
}
