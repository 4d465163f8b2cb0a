//! I4 when a retired origin is held with a gap. Region a writes `s.k2` (it never leaves a)
//! and then `t`, whose copy reaches b only inside a repair: b holds a's third change out of
//! order, with a gap at the second, which no member can fill. b retires a, ends `s` and
//! collects the end. The backup of a, restored later, holds `s.k2`: taken as news, it would
//! make the session live again at b and at the restored node. b gives a's history up at the
//! highest seq it holds (3), the gap counting as seen, once every member holds exactly the
//! same of a (`give_up.rs`); with no member but b, at once. Without giving up over a gap,
//! this fails with "s is live again".

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::pair::{
    backed_up_then_lost, pair, repair_to, retire_end_and_collect, settle, sync_all, Node,
};
use session_ha::FsyncPolicy;

/// a's writes: `s.k` (replicated), `s.k2` (only at a), `t.k` (reaches b in a repair of `t`
/// only), leaving b with a gap at a's second change.
fn writes_leaving_a_gap_at_b(a: &Node, b: &Node) {
    a.s().put("s", "k", "v").unwrap();
    sync_all(&[a, b]);
    a.s().put("s", "k2", "unreplicated").unwrap();
    a.s().put("t", "k", "t").unwrap();
    a.sync();
    repair_to(a, b, &["t".into()]);
    let gaps = b.s().status().replica.gaps;
    assert!(
        gaps.iter()
            .any(|g| g.origin == a.id() && g.from == 2 && g.to == 2),
        "b holds a's third change with a gap at the second: {gaps:?}"
    );
}

#[test]
fn a_backup_of_a_retired_origin_with_a_gap_does_not_revive_a_session_ended_since() {
    let (time, mut a, b) = pair(FsyncPolicy::Always);
    writes_leaving_a_gap_at_b(&a, &b);
    let a_id = a.id();
    let mut r = backed_up_then_lost(&mut a);
    retire_end_and_collect(&time, &b, a_id);
    let st = b.s().status().replica;
    assert_eq!(st.retired[0].given_up_at, Some(3), "{st:?}");
    assert!(st.gaps.is_empty(), "{st:?}");

    r.open().unwrap();
    b.s().add_peer(r.id(), "us-east-1").unwrap();
    settle(&time, &[&r, &b], 4, 31_000);
    assert!(r.s().status().replica.fence.is_none(), "caught up with b");
    for n in [&r, &b] {
        assert!(n.s().get(b"s").unwrap().is_none(), "s is live again");
        let t = n.s().get(b"t").unwrap();
        assert_eq!(
            t.map(|t| t.fields.len()),
            Some(1),
            "what a's repaired copy gave stays"
        );
    }
}
