//! A state transfer is taken whole or not at all, and only the transfer addressed to this
//! replica as it is now: a sender numbers its transfers per peer, so the first transfer to
//! a replica's new incarnation has the same number as the first one to its old id. The
//! failure this guards against (simulator seed 2389, every write fsynced): the first chunk
//! of a transfer to the old id arrived after the crash, was staged as the first chunk of
//! the transfer to the new id, and when that transfer's last chunk came the sessions of
//! its real first chunk counted as sessions the sender no longer held: an acknowledged
//! session was dropped everywhere it was merged.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{Frame, FrameBody, ManualTime, Message, Replica, ReplicaConfig};

fn apply(to: &mut Replica, frame: Frame) {
    to.receive(&Message::Frame(frame).encode()).unwrap();
}

/// Applies `frame` at `to` and takes its ack back to `from`.
fn deliver(from: &mut Replica, to: &mut Replica, frame: Frame) {
    let reply = to.receive(&Message::Frame(frame).encode()).unwrap().reply;
    if let Some(ack) = reply {
        from.receive(&ack).unwrap();
    }
}

fn chunk_index(f: &Frame) -> Option<(u64, u32, bool)> {
    match &f.body {
        FrameBody::State {
            transfer,
            index,
            last,
            ..
        } => Some((*transfer, *index, *last)),
        _ => None,
    }
}

#[test]
fn a_chunk_addressed_to_an_old_id_is_not_staged_into_the_transfer_to_the_new_one() {
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
    for s in ["s5", "s6", "s7"] {
        a.put(s, "k", "a").unwrap();
    }
    // More than a's op log holds: b gets a transfer. Its first chunk (s5) is held up.
    let to_old = a.frame_for(b.id()).unwrap().unwrap();
    assert_eq!(chunk_index(&to_old), Some((1, 0, false)));

    // b writes "s0", then continues as a new incarnation; a learns "s0" and the new id.
    b.put("s0", "k", "b").unwrap();
    b.reincarnate(1);
    a.add_peer(b.id(), "b").unwrap();
    while let Some(f) = b.frame_for(a.id()).unwrap() {
        apply(&mut a, f);
    }
    assert_eq!(a.get_field(b"s0", b"k").unwrap(), "b");

    // The transfer to the new id is numbered 1 too; its first chunk (s0) is lost.
    let mut to_new = Vec::new();
    while let Some(f) = a.frame_for(b.id()).unwrap() {
        let last = chunk_index(&f).is_some_and(|(_, _, last)| last);
        to_new.push(f);
        if last {
            break;
        }
    }
    assert_eq!(chunk_index(&to_new[0]), Some((1, 0, false)));
    assert!(to_new.len() >= 3, "one session per chunk");

    // The old chunk arrives in the place of the lost one, then the rest.
    deliver(&mut a, &mut b, to_old);
    for f in to_new.into_iter().skip(1) {
        deliver(&mut a, &mut b, f);
    }
    assert_eq!(
        b.get_field(b"s0", b"k").unwrap(),
        "b",
        "b's own acknowledged session was dropped by a transfer it never received whole"
    );
    // The transfer to the new id did not complete: a sends it again, whole this time.
    let mut rounds = 0;
    while let Some(f) = a.frame_for(b.id()).unwrap() {
        deliver(&mut a, &mut b, f);
        rounds += 1;
        assert!(rounds < 50);
    }
    assert_eq!(b.get_field(b"s0", b"k").unwrap(), "b");
    assert_eq!(a.digests().root(), b.digests().root());
}
