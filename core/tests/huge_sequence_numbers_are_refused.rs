//! A well-formed message whose sequence numbers no replica could ever reach is refused as
//! malformed, and the replica stays usable (found by the malformed-frames tests: a frame
//! claiming seq u64::MAX in its vector was accepted, and the next frame for its sender
//! panicked on overflow). A given-up mark (`causal::GIVEN_UP`) is taken only for an origin
//! that is retired.

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

fn ack(from: &Replica, vv: VersionVector) -> Vec<u8> {
    Message::Ack(Ack {
        from: from.id(),
        from_name: from.name().into(),
        boot: 1,
        to: ReplicaId(0),
        to_boot: 0,
        vv,
        frame_no: 1,
        gaps: Vec::new(),
        removed: Vec::new(),
        flags: 0,
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
    let vv = [(ReplicaId(42), u64::MAX)].into_iter().collect();
    refused(&mut a, &ack(&b, vv));
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

#[test]
fn a_given_up_mark_on_an_origin_that_is_not_retired_is_refused() {
    use session_ha::causal::GIVEN_UP;
    let (mut a, b) = pair();
    // A mark on a live member, or on the receiver itself, would count every later write of
    // it as seen: refused as malformed, in a frame's vector, a transfer's and an ack's.
    for target in [b.id(), a.id()] {
        let vv: VersionVector = [(target, GIVEN_UP + 1)].into_iter().collect();
        refused_from(
            &mut a,
            b.id(),
            &frame(&b, vv.clone(), FrameBody::Ops(Vec::new())),
        );
        let body = FrameBody::State {
            transfer: 1,
            index: 0,
            last: true,
            covers: vv.clone(),
            sessions: Vec::new(),
        };
        refused_from(&mut a, b.id(), &frame(&b, VersionVector::new(), body));
        refused_from(&mut a, b.id(), &ack(&b, vv));
    }
    // On an origin the sender retired, it is taken (the frame's list retires it here too).
    let gone = ReplicaId(42);
    let vv: VersionVector = [(gone, GIVEN_UP + 3)].into_iter().collect();
    let bytes = Message::Frame(Frame {
        sender: b.id(),
        sender_name: "b".into(),
        boot: 1,
        to: a.id(),
        to_boot: 0,
        frame_no: 1,
        vv,
        removed: vec![gone],
        body: FrameBody::Ops(Vec::new()),
    })
    .encode();
    a.receive(&bytes).unwrap();
    assert!(a.status().removed.contains(&gone));
}

/// Like `refused`, for a message that decodes: counted against the member that sent it.
fn refused_from(r: &mut Replica, sender: ReplicaId, bytes: &[u8]) {
    let malformed = |r: &Replica| {
        r.status()
            .refused
            .iter()
            .find(|(id, _)| *id == sender)
            .map_or(0, |(_, c)| c.malformed)
    };
    let before = (r.version_vector().clone(), status(r), malformed(r));
    assert!(matches!(r.receive(bytes), Err(Error::Frame(_))));
    assert_eq!(
        (r.version_vector().clone(), status(r)),
        (before.0, before.1)
    );
    assert_eq!(malformed(r), before.2 + 1);
    r.put("s", "k2", "v").unwrap();
}
