//! Tombstones are collected after a dead member is removed, even when that member's last
//! acknowledgement covered ops of its own that never reached anyone (found by the
//! multi-region simulator, seed 97: collection stopped for good on every survivor).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use session_ha::{ManualTime, Message, Replica, ReplicaConfig};

fn mesh(time: &ManualTime) -> Vec<Replica> {
    let config = ReplicaConfig {
        end_retention_ms: 0,
        ..ReplicaConfig::default()
    };
    common::mesh::mesh(&["a", "b", "dead"], time, config)
}

/// Delivers one frame from `from` to `to` and its ack back.
fn deliver(rs: &mut [Replica], from: usize, to: usize, frame: session_ha::Frame) {
    let reply = rs[to].receive(&Message::Frame(frame).encode()).unwrap();
    rs[from].receive(&reply.reply.unwrap()).unwrap();
}

/// Everything `from` has for `to`, then a heartbeat.
fn send(rs: &mut [Replica], from: usize, to: usize) {
    let to_id = rs[to].id();
    while let Some(f) = rs[from].frame_for(to_id).unwrap() {
        deliver(rs, from, to, f);
    }
    let hb = rs[from].heartbeat(to_id).unwrap();
    deliver(rs, from, to, hb);
}

#[test]
fn collection_resumes_once_a_dead_member_with_unshipped_ops_is_removed() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&time);
    rs[0].put("s", "k", "v").unwrap();
    rs[0].end("s").unwrap();
    for to in [1, 2] {
        send(&mut rs, 0, to);
    }
    // The dead member writes, but only its heartbeat reaches a: a learns that the dead
    // member holds an op that neither survivor will ever receive.
    rs[2].put("lost", "k", "v").unwrap();
    let a = rs[0].id();
    let hb = rs[2].heartbeat(a).unwrap();
    deliver(&mut rs, 2, 0, hb);
    time.advance(10);
    rs[0].tick();
    assert_eq!(
        rs[0].status().tombstones_pending,
        1,
        "the dead member blocks"
    );

    let dead = rs[2].id();
    rs[0].remove_member(dead).unwrap();
    rs[1].remove_member(dead).unwrap();
    for _ in 0..6 {
        time.advance(10);
        rs[0].tick();
        rs[1].tick();
        send(&mut rs, 0, 1);
        send(&mut rs, 1, 0);
    }
    for r in &rs[..2] {
        let st = r.status();
        assert_eq!(st.tombstones_pending, 0, "{} still waits: {st:?}", r.name());
        assert_eq!(st.sessions, 0, "{}", r.name());
    }
}
