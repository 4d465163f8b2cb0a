//! A repair adopts no vector, so it must not hand a replica the effect of an op it has not
//! received: that effect would be held under a dot its vector never covers, for good if the
//! op's origin lost it in a crash, and a later removal of it could never be collected. The
//! failure this guards against (simulator seed 263, fsync `Never`): a region repaired a peer
//! with set adds it had just made, lost them in a power cut, and every region kept the
//! removal tombstones of those adds for good.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{ManualTime, Message, Replica, ReplicaConfig, SessionId};

fn pair() -> (Replica, Replica) {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig::default();
    let mut a = Replica::new("a", 0, config.clone(), Arc::new(time.clone()));
    let mut b = Replica::new("b", 0, config, Arc::new(time));
    a.add_peer(b.id(), "b").unwrap();
    b.add_peer(a.id(), "a").unwrap();
    (a, b)
}

fn sync(from: &mut Replica, to: &mut Replica) {
    while let Some(f) = from.frame_for(to.id()).unwrap() {
        let reply = to.receive(&Message::Frame(f).encode()).unwrap().reply;
        if let Some(ack) = reply {
            from.receive(&ack).unwrap();
        }
    }
}

/// Every dot whose effect `r` holds in `session` is covered by `r`'s vector.
fn effects_are_named(r: &Replica, session: &[u8]) -> bool {
    r.session_state(session)
        .is_none_or(|s| s.dots().all(|d| r.version_vector().contains(d)))
}

#[test]
fn a_repair_copy_with_an_op_the_receiver_lacks_waits_for_that_op() {
    let (mut a, mut b) = pair();
    a.put("s", "k", "v").unwrap();
    sync(&mut a, &mut b);
    // a's next op has not reached b when a repairs b's copy of "s".
    a.set_add("s", "tags", "e").unwrap();
    for f in a.repair_frames(b.id(), &[SessionId::from("s")]).unwrap() {
        b.receive(&Message::Frame(f).encode()).unwrap();
    }
    assert!(
        effects_are_named(&b, b"s"),
        "b holds an effect whose op it never received: {:?}",
        b.session_state(b"s")
    );
    assert!(b.session_state(b"s").unwrap().sets.is_empty());
    // The op itself brings it.
    sync(&mut a, &mut b);
    assert!(effects_are_named(&b, b"s"));
    assert_eq!(a.digests().root(), b.digests().root());
}
