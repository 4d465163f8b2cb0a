//! A dot a replica holds past a gap came with an effect (a repaired copy), not an op: its op
//! log never holds that op, so the log's floor is past it, and a peer that lacks it gets a
//! state transfer. The floor lives in memory; a restart from a snapshot must raise it again,
//! or once the ops below the dot arrive the vector covers an op the log has a hole at, and
//! a peer behind it waits for that op for good (found by the multi-region simulator, seed
//! 55111: a fenced region never caught up).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::sync::Arc;

use session_ha::snapshot::SnapshotMeta;
use session_ha::{Dot, ManualTime, Replica, ReplicaConfig, SessionId, VersionVector};

#[test]
fn a_peer_behind_a_restarted_replica_gets_the_op_it_holds_only_as_an_effect() {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig::default();
    let (o, b, c) = (0, 1, 2);
    let mut rs = common::mesh::mesh(&["o", "b", "c"], &time, config.clone());
    rs[o].put("s1", "k", "v1").unwrap();
    rs[o].put("s2", "k", "v2").unwrap();
    let o_id = rs[o].id();

    // b gets o:2 only inside a repaired copy: held past the gap at o:1.
    common::mesh::repair(&mut rs, o, b, &[SessionId::from("s2")]);
    let second = Dot {
        replica: o_id,
        seq: 2,
    };
    assert!(rs[b].context().contains(second));
    assert_eq!(rs[b].status().gaps.len(), 1);

    // b restarts from a snapshot of what it holds (its sessions, then its meta).
    let meta = SnapshotMeta {
        region: "b".into(),
        incarnation: 0,
        context: rs[b].context().clone(),
        clock: rs[b].clock_last(),
        removed: Vec::new(),
        created_ms: rs[b].now_ms(),
        members: rs[b].peers(),
        fence: None,
        retired_held: VersionVector::new(),
        retired_runs: Vec::new(),
    };
    let mut restarted = Replica::new("b", 0, config, Arc::new(time.clone()));
    for (id, state) in rs[b].export_sessions(&rs[b].session_ids()) {
        restarted.restore_session(id, state);
    }
    restarted.restore_meta(&meta);
    restarted.finish_restore();
    rs[b] = restarted;

    // o's ops reach b, then o goes away; c, which has nothing, learns from b alone.
    common::mesh::send(&mut rs, o, b);
    assert!(rs[b].status().gaps.is_empty());
    for _ in 0..6 {
        common::mesh::send(&mut rs, b, c);
        common::mesh::send(&mut rs, c, b);
    }
    assert!(rs[c].context().contains(second), "c never got o:2 from b");
    assert_eq!(rs[c].get_field(b"s2", b"k").as_deref(), Some(&b"v2"[..]));
    assert_eq!(rs[c].get_field(b"s1", b"k").as_deref(), Some(&b"v1"[..]));
}
