//! A session copy merged by a repair may hold effects of ops that never reached the
//! receiver. The receiver must count their dots as seen: otherwise, once it ends and
//! collects the session, an old copy of it is taken for news and the session is live again
//! (I4). Found by the multi-region simulator, seed 88505: a region received a set add only
//! inside a repair, its origin lost the op in a power cut, the session was ended and
//! collected, and the origin's older state brought it back at both survivors.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use session_ha::{Limits, ManualTime, Message, Replica, ReplicaConfig, SessionId};

/// `bytes` (a frame of `rs[from]` to `rs[to]`) under its sender's next frame number: an old
/// copy that is not a replay, as a peer whose state went back in time sends it.
fn renumbered(bytes: &[u8], rs: &mut [Replica], from: usize, to: usize) -> Vec<u8> {
    let Ok(Message::Frame(mut f)) = Message::decode(bytes, &Limits::default()) else {
        panic!("a frame");
    };
    let to_id = rs[to].id();
    f.frame_no = rs[from].heartbeat(to_id).unwrap().frame_no;
    Message::Frame(f).encode()
}

#[test]
fn a_session_ended_after_a_repair_brought_it_stays_ended_against_an_older_copy() {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig {
        end_retention_ms: 0,
        ..ReplicaConfig::default()
    };
    let (a, b, c) = (0, 1, 2);
    let mut rs = common::mesh::mesh(&["a", "b", "c"], &time, config);
    let s: SessionId = "s".into();

    // a adds an element; its op never leaves a, only the repaired copies do.
    rs[a].set_add("s", "tags", "e1").unwrap();
    common::mesh::repair(&mut rs, a, b, std::slice::from_ref(&s));
    common::mesh::repair(&mut rs, a, c, std::slice::from_ref(&s));
    assert!(rs[b].contains(b"s") && rs[c].contains(b"s"));
    let a_dot = rs[a].status().vv.get(rs[a].id());
    assert_eq!(
        rs[b].status().vv.get(rs[a].id()),
        a_dot,
        "b holds a's add, so its context covers the add's dot"
    );
    // c's copy of the session, as it stands before the end: it comes back late.
    let b_id = rs[b].id();
    let old = rs[c].repair_frames(b_id, std::slice::from_ref(&s)).unwrap();
    let old = rs[c].encode(&Message::Frame(old.into_iter().next().unwrap()));

    // a is gone for good; the survivors retire it, end the session and collect it.
    let a_id = rs[a].id();
    rs[b].remove_member(a_id).unwrap();
    common::mesh::rounds(&time, &mut rs, &[b, c], 4);
    rs[b].end("s").unwrap();
    common::mesh::rounds(&time, &mut rs, &[b, c], 6);
    for r in &rs[b..=c] {
        let st = r.status();
        assert_eq!(st.tombstones_pending, 0, "{} still waits: {st:?}", r.name());
        assert!(
            r.session_state(b"s").is_none(),
            "{} collected the end",
            r.name()
        );
    }

    // The old copy arrives: it holds only what b has seen and removed.
    let old = renumbered(&old, &mut rs, c, b);
    rs[b].receive(&old).unwrap();
    assert!(
        !rs[b].contains(b"s"),
        "the old copy brought the session back"
    );
    assert!(rs[b].session_state(b"s").is_none());
    common::mesh::rounds(&time, &mut rs, &[b, c], 4);
    assert!(!rs[c].contains(b"s"));
    assert_eq!(rs[b].digests().root(), rs[c].digests().root());
}
