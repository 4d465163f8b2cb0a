//! A well-formed message whose sequence numbers no replica could ever reach is refused as
//! malformed, and the replica stays usable (found by the malformed-frames tests: a frame
//! claiming seq u64::MAX in its vector was accepted, and the next frame for its sender
//! panicked on overflow).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{
    Ack, Error, Frame, FrameBody, ManualTime, Message, Replica, ReplicaConfig, ReplicaId,
    ReplicaStatus, VersionVector,
};

fn pair() -> (Replica, Replica) {
    let time = Arc::new(ManualTime::new(1_000));
    let mut a = Replica::new("a", 0, ReplicaConfig::default(), time.clone());
    let mut b = Replica::new("b", 0, ReplicaConfig::default(), time);
    a.add_peer(b.id(), "b").unwrap();
    b.add_peer(a.id(), "a").unwrap();
    a.put("s", "k", "v").unwrap();
    (a, b)
}

fn frame(from: &Replica, vv: VersionVector, body: FrameBody) -> Vec<u8> {
    Message::Frame(Frame {
        sender: from.id(),
        sender_name: from.name().into(),
        boot: 1,
        to: ReplicaId(0),
        to_boot: 0,
        frame_no: 1,
        vv,
        removed: Vec::new(),
        body,
    })
    .encode()
}

/// The status without the refusal counts (a refusal is counted, and changes nothing else).
fn status(r: &Replica) -> ReplicaStatus {
    let mut st = r.status();
    st.refused.clear();
    st.refused_other = Default::default();
    st
}

fn refused(r: &mut Replica, bytes: &[u8]) {
    let before = (r.version_vector().clone(), status(r));
    let counted = r.status().refused_other.malformed;
    assert!(matches!(r.receive(bytes), Err(Error::Frame(_))));
    assert_eq!((r.version_vector().clone(), status(r)), before);
    assert_eq!(r.status().refused_other.malformed, counted + 1);
    // Still usable.
    for (peer, _) in r.peers() {
        while r.frame_for(peer).unwrap().is_some() {}
    }
    r.put("s", "k2", "v").unwrap();
}

#[test]
fn a_vector_claiming_the_last_sequence_number_is_refused() {
    let (mut a, b) = pair();
    let vv: VersionVector = [(a.id(), u64::MAX)].into_iter().collect();
    refused(&mut a, &frame(&b, vv, FrameBody::Ops(Vec::new())));
}

#[test]
fn an_ack_claiming_the_last_sequence_number_is_refused() {
    let (mut a, b) = pair();
    let ack = Message::Ack(Ack {
        from: b.id(),
        from_name: "b".into(),
        boot: 1,
        to: ReplicaId(0),
        to_boot: 0,
        vv: [(ReplicaId(42), u64::MAX)].into_iter().collect(),
        frame_no: 1,
        gaps: Vec::new(),
        removed: Vec::new(),
        flags: 0,
    });
    refused(&mut a, &ack.encode());
}

#[test]
fn a_transfer_covering_the_last_sequence_number_is_refused() {
    let (mut a, b) = pair();
    let covers: VersionVector = [(a.id(), u64::MAX)].into_iter().collect();
    let body = FrameBody::State {
        transfer: 1,
        index: 0,
        last: true,
        covers,
        sessions: Vec::new(),
    };
    refused(&mut a, &frame(&b, VersionVector::new(), body));
}
