//! A member that never comes back blocks tombstone collection everywhere until an operator
//! retires it; the retirement replicates, is confirmed by every remaining member, and then
//! collection resumes. The status names who blocks and who has yet to confirm.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use session_ha::{Error, ManualTime, Message, ReplicaConfig};

#[test]
fn an_operator_retirement_replicates_is_confirmed_and_unblocks_collection() {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig {
        end_retention_ms: 0,
        ..ReplicaConfig::default()
    };
    let mut rs = common::mesh::mesh(&["a", "b", "dead"], &time, config);
    let dead = rs[2].id();
    let a = rs[0].id();
    rs[0].put("s", "k", "v").unwrap();
    common::mesh::send(&mut rs, 0, 1);
    // "dead" stops here: an old heartbeat of it is all that is left in flight.
    let last_words = rs[2].heartbeat(a).unwrap();
    rs[0].end("s").unwrap();
    for _ in 0..3 {
        time.advance(10);
        rs[0].tick();
        rs[1].tick();
        common::mesh::send(&mut rs, 0, 1);
        common::mesh::send(&mut rs, 1, 0);
    }
    let st = rs[0].status();
    assert_eq!(st.tombstones_pending, 1);
    assert_eq!(st.collection_blocked_by, vec![dead], "{st:?}");

    // The operator retires it on a only; b learns it from a, and confirms.
    rs[0].remove_member(dead).unwrap();
    let st = rs[0].status();
    assert_eq!(st.retired.len(), 1);
    assert_eq!(st.retired[0].unconfirmed_by, vec![rs[1].id()]);
    for _ in 0..4 {
        time.advance(10);
        rs[0].tick();
        rs[1].tick();
        common::mesh::send(&mut rs, 0, 1);
        common::mesh::send(&mut rs, 1, 0);
    }
    for r in &rs[..2] {
        let st = r.status();
        assert_eq!(st.removed, vec![dead], "{}", r.name());
        assert!(st.retired[0].unconfirmed_by.is_empty(), "{st:?}");
        assert_eq!(st.tombstones_pending, 0, "{} still waits: {st:?}", r.name());
        assert!(st.collection_blocked_by.is_empty());
    }
    // Its frames are refused from now on, everywhere.
    let late = rs[2].encode(&Message::Frame(last_words));
    assert!(matches!(rs[0].receive(&late), Err(Error::RemovedReplica(id)) if id == dead));
}
