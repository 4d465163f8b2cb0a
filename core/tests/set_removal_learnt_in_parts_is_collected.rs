//! A set removal learnt from full states in parts (first with some of its removed adds, then
//! with all of them) is collected whole once stable (found by the multi-region simulator,
//! seed 3892: a removal tombstone stayed in a session forever while the status reported
//! nothing pending).
//!
//! The partial state arises naturally: two removes overlap (one removes `{a}`, a later one
//! `{a, b}`); a replica that collects the first drops `a`'s tombstone, though it is credited
//! to the second, and its next state transfer carries the second remove with `{b}` only.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use session_ha::crdt::AwSet;
use session_ha::{
    Dot, Frame, FrameBody, ManualTime, Message, Replica, ReplicaConfig, SessionId, SessionState,
    VersionVector,
};

fn state(removed: &[(Dot, Dot)]) -> SessionState {
    let set = AwSet {
        entries: BTreeMap::new(),
        removed: removed.iter().copied().collect(),
    };
    SessionState {
        sets: [(Bytes::from_static(b"tags"), set)].into_iter().collect(),
        ..SessionState::default()
    }
}

#[test]
fn a_removal_learnt_in_parts_is_collected_whole() {
    let time = ManualTime::new(1_000);
    let mut r = Replica::new("r", 0, ReplicaConfig::default(), Arc::new(time.clone()));
    let peer = Replica::new("p", 0, ReplicaConfig::default(), Arc::new(time.clone()));
    r.add_peer(peer.id(), "p").unwrap();
    let dot = |seq| Dot {
        replica: peer.id(),
        seq,
    };
    // p:1 and p:2 added the element; p:3 removed both.
    let (a, b, remove) = (dot(1), dot(2), dot(3));
    let covers: VersionVector = [(peer.id(), 3)].into_iter().collect();
    let partial = state(&[(b, remove)]);
    let whole = state(&[(a, remove), (b, remove)]);
    for (transfer, st) in [(1, partial), (2, whole)] {
        let frame = Frame {
            sender: peer.id(),
            sender_name: "p".into(),
            boot: 1,
            to: r.id(),
            to_boot: 0,
            frame_no: transfer,
            vv: covers.clone(),
            removed: Vec::new(),
            body: FrameBody::State {
                transfer,
                index: 0,
                last: true,
                covers: covers.clone(),
                sessions: vec![(SessionId::from("s"), st)],
            },
        };
        r.receive(&Message::Frame(frame).encode()).unwrap();
    }
    for _ in 0..3 {
        time.advance(10);
        r.tick();
    }
    let st = r.status();
    assert_eq!(st.tombstones_pending, 0);
    let set = r.session_state(b"s").and_then(|s| s.sets.get(&b"tags"[..]));
    assert!(
        set.is_none_or(|s| s.removed.is_empty()),
        "left behind: {set:?}"
    );
}
