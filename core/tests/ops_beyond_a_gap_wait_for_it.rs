//! An op that arrives ahead of a gap in its origin's sequence is not applied until the gap
//! is filled: otherwise, when the origin dies before the gap is filled, one survivor holds
//! its effect for good while no survivor can ever pass the op on (found by the multi-region
//! simulator, seed 858: survivors kept different states and gaps after the removal).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::mesh::send;
use session_ha::{ManualTime, Message, Replica, ReplicaConfig};

fn mesh(time: &ManualTime) -> Vec<Replica> {
    // One op per frame, so that losing one frame leaves a gap.
    let config = ReplicaConfig {
        frame_budget: 1,
        ..ReplicaConfig::default()
    };
    common::mesh::mesh(&["a", "b", "origin"], time, config)
}

#[test]
fn survivors_agree_when_the_origin_dies_with_a_gap_open() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&time);
    rs[2].put("s", "k", "first").unwrap();
    rs[2].put("s", "k2", "second").unwrap();
    let a = rs[0].id();
    let _lost = rs[2].frame_for(a).unwrap().unwrap();
    let second = rs[2].frame_for(a).unwrap().unwrap();
    rs[0].receive(&Message::Frame(second).encode()).unwrap();
    assert!(rs[0].get(b"s").is_none(), "the op after the gap waits");
    assert!(!rs[0].version_vector().contains(session_ha::Dot {
        replica: rs[2].id(),
        seq: 2
    }));

    // The origin dies; the survivors remove it and catch up with each other.
    let dead = rs[2].id();
    rs[0].remove_member(dead).unwrap();
    rs[1].remove_member(dead).unwrap();
    for _ in 0..3 {
        time.advance(10);
        rs[0].tick();
        rs[1].tick();
        send(&mut rs, 0, 1);
        send(&mut rs, 1, 0);
    }
    assert_eq!(rs[0].digests().root(), rs[1].digests().root());
    assert_eq!(rs[0].version_vector(), rs[1].version_vector());
    assert!(rs[0].status().gaps.is_empty());
}

#[test]
fn an_op_held_back_by_a_gap_is_sent_again_with_the_gap() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&time);
    rs[2].put("s", "k", "first").unwrap();
    rs[2].put("s", "k2", "second").unwrap();
    let a = rs[0].id();
    let _lost = rs[2].frame_for(a).unwrap().unwrap();
    let second = rs[2].frame_for(a).unwrap().unwrap();
    let ack = rs[0].receive(&Message::Frame(second).encode()).unwrap();
    rs[2].receive(&ack.reply.unwrap()).unwrap();
    // The ack named the gap: the origin sends both again, with no timeout needed.
    send(&mut rs, 2, 0);
    let view = rs[0].get(b"s").unwrap();
    assert_eq!(view.fields[&b"k"[..]], "first");
    assert_eq!(view.fields[&b"k2"[..]], "second");
}
