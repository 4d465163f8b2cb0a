//! When a retired origin's history is given up (`causal::GIVEN_UP`): only once every member
//! reported the retirement and this replica holds everything of that origin any member
//! acknowledged. Given up any earlier, the mark would count a member's copy of a write as
//! seen and removed, and the write would be dropped everywhere.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::mesh::{mesh, rounds, send};
use session_ha::replicate::Message;
use session_ha::{ManualTime, ReplicaConfig};

#[test]
fn a_member_holding_more_of_a_retired_origin_is_waited_for_and_nothing_is_dropped() {
    let time = ManualTime::new(1_000);
    let (a, b, gone) = (0, 1, 2);
    let mut rs = mesh(&["a", "b", "gone"], &time, ReplicaConfig::default());
    let gone_id = rs[gone].id();
    rs[gone].put("s", "k1", "v").unwrap();
    send(&mut rs, gone, a);
    send(&mut rs, gone, b);
    // The second write reaches b only, then `gone` dies.
    rs[gone].put("s", "k2", "v").unwrap();
    send(&mut rs, gone, b);
    // Both retire it. b's ack tells a of the retirement and of b's holdings; a has not
    // got k2 yet, so it must not give `gone` up.
    rs[a].remove_member(gone_id).unwrap();
    rs[b].remove_member(gone_id).unwrap();
    let b_id = rs[b].id();
    let heartbeat = rs[a].heartbeat(b_id).unwrap();
    let bytes = rs[a].encode(&Message::Frame(heartbeat));
    let ack = rs[b].receive(&bytes).unwrap().reply.unwrap();
    rs[a].receive(&ack).unwrap();
    rs[a].tick();
    let st = rs[a].status();
    assert!(st.retired[0].unconfirmed_by.is_empty(), "confirmed: {st:?}");
    assert_eq!(st.retired[0].given_up_at, None, "b holds more: {st:?}");
    rounds(&time, &mut rs, &[a, b], 6);
    for r in &rs[a..=b] {
        let st = r.status();
        assert_eq!(st.retired[0].given_up_at, Some(2), "{}: {st:?}", r.name());
        assert!(
            r.get_field(b"s", b"k2").is_some(),
            "{}: k2 dropped",
            r.name()
        );
        assert_eq!(st.vv.get(gone_id), 2, "the status shows what is held");
        assert!(st.peers.iter().all(|p| p.pending_ops == 0), "{st:?}");
    }
}
