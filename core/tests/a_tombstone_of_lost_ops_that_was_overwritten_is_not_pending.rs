//! A tombstone a repair brought from a region whose earlier ops were lost sits under a dot
//! no vector will ever cover (it lies past a gap). Once a newer write replaced it and the
//! region is retired, nothing is left to collect: it must not count as pending (and block
//! nothing) for good. Found by the multi-region simulator, seeds 206 and 906.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use session_ha::{ManualTime, ReplicaConfig, SessionId};

#[test]
fn an_overwritten_tombstone_past_a_lost_gap_is_dropped_once_its_origin_is_retired() {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig {
        end_retention_ms: 0,
        ..ReplicaConfig::default()
    };
    let (a, b, gone) = (0, 1, 2);
    let mut rs = common::mesh::mesh(&["a", "b", "gone"], &time, config);
    let s: SessionId = "s".into();
    let gone_id = rs[gone].id();

    // `gone` writes twice; only a repaired copy of the second write's session leaves it.
    rs[gone].put("other", "k", "v").unwrap();
    rs[gone].delete_field("s", "k").unwrap();
    common::mesh::repair(&mut rs, gone, a, std::slice::from_ref(&s));
    let st = rs[a].status();
    assert_eq!(st.tombstones_pending, 1);
    assert_eq!(st.gaps.len(), 1, "gone:1 never arrived: {st:?}");
    assert_eq!((st.gaps[0].origin, st.gaps[0].from), (gone_id, 1));

    // A newer write replaces the tombstone; `gone` is retired everywhere.
    rs[a].put("s", "k", "new").unwrap();
    rs[a].remove_member(gone_id).unwrap();
    common::mesh::rounds(&time, &mut rs, &[a, b], 6);
    for r in &rs[a..=b] {
        let st = r.status();
        assert_eq!(st.tombstones_pending, 0, "{}: {st:?}", r.name());
        assert!(st.collection_blocked_by.is_empty(), "{}: {st:?}", r.name());
    }
    // The lost op stays a gap: nobody holds it, and the status says so. While it does,
    // `gone`'s history is not given up (a member might hold what its vector hides).
    assert_eq!(rs[a].status().gaps.len(), 1);
    let retired = &rs[a].status().retired;
    assert_eq!(retired.len(), 1);
    assert_eq!(retired[0].given_up_at, None, "{retired:?}");
    assert_eq!(rs[a].get_field(b"s", b"k").as_deref(), Some(&b"new"[..]));
}
