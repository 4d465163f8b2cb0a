//! A state transfer hands over exactly what its final vector covers, all at once: the
//! receiver never holds an effect whose op it cannot name (found by the multi-region
//! simulator, seed 161: a sender's own newer write and end rode along in its chunks, the
//! sender died, and the survivors kept an end tombstone that could never become stable).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{Dot, FrameBody, ManualTime, Message, Replica, ReplicaConfig};

fn pair() -> (ManualTime, Replica, Replica) {
    let config = ReplicaConfig {
        log_max_ops: 2,
        frame_budget: 1,
        ..ReplicaConfig::default()
    };
    let time = ManualTime::new(1_000);
    let mut a = Replica::new("a", 0, config.clone(), Arc::new(time.clone()));
    let mut b = Replica::new("b", 0, config, Arc::new(time.clone()));
    a.add_peer(b.id(), "b").unwrap();
    b.add_peer(a.id(), "a").unwrap();
    (time, a, b)
}

fn apply(to: &mut Replica, frame: session_ha::Frame) {
    to.receive(&Message::Frame(frame).encode()).unwrap();
}

fn dot(r: &Replica, seq: u64) -> Dot {
    Dot {
        replica: r.id(),
        seq,
    }
}

#[test]
fn ops_made_during_a_transfer_do_not_ride_along_without_their_dots() {
    let (_time, mut a, mut b) = pair();
    for i in 0..4 {
        a.put(format!("s{i}").as_str(), "k", "v").unwrap();
    }
    // One session per chunk. After the first chunk, a writes to a session already sent and
    // to one not sent yet.
    let first = a.frame_for(b.id()).unwrap().unwrap();
    apply(&mut b, first);
    a.put("s0", "k", "changed").unwrap();
    a.end("s3").unwrap();
    let mut chunks = Vec::new();
    loop {
        let f = a.frame_for(b.id()).unwrap().unwrap();
        let last = matches!(f.body, FrameBody::State { last: true, .. });
        assert!(matches!(f.body, FrameBody::State { .. }));
        chunks.push(f);
        if last {
            break;
        }
    }
    let last = chunks.pop().unwrap();
    for f in chunks {
        apply(&mut b, f);
    }
    assert!(
        b.session_ids().is_empty(),
        "nothing is merged before the last chunk"
    );
    // a dies before its last chunk arrives: b must hold nothing it cannot name.
    assert_eq!(b.version_vector().get(a.id()), 0);
    assert!(b.sessions().next().is_none());

    apply(&mut b, last);
    assert!(b.version_vector().contains(dot(&a, 6)));
    assert_eq!(b.get_field(b"s0", b"k").unwrap(), "changed");
    assert!(!b.contains(b"s3"));
    assert_eq!(a.digests().root(), b.digests().root());
}

#[test]
fn a_complete_transfer_covers_every_effect_it_carries() {
    let (_time, mut a, mut b) = pair();
    for i in 0..3 {
        a.put(format!("s{i}").as_str(), "k", "v").unwrap();
    }
    let mut n = 0;
    while let Some(f) = a.frame_for(b.id()).unwrap() {
        apply(&mut b, f);
        n += 1;
        if n == 2 {
            // A write behind the cursor and one ahead of it, mid-transfer.
            a.put("s0", "k2", "late").unwrap();
            a.end("s2").unwrap();
        }
    }
    assert_eq!(b.version_vector(), a.version_vector());
    assert_eq!(b.get_field(b"s0", b"k2").unwrap(), "late");
    assert!(!b.contains(b"s2"));
    assert_eq!(a.digests().root(), b.digests().root());
}
