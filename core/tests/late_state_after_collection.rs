//! A state snapshot that was in flight while a session's end became stable and was
//! collected must not bring the session back when it finally arrives (found by the
//! multi-region simulator, seed 45: a delayed state-transfer chunk re-created an expired,
//! collected session with its old counters and set).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{Error, FrameBody, Limits, ManualTime, Message, Replica, ReplicaConfig};

/// The same frame under the next number of its sender, `from`: a stale copy that is not a
/// replay (a peer restored from an old backup sends such copies).
fn renumbered(bytes: &[u8], from: &mut Replica, to: &Replica) -> Vec<u8> {
    let Ok(Message::Frame(mut f)) = Message::decode(bytes, &Limits::default()) else {
        panic!("a frame");
    };
    f.frame_no = from.heartbeat(to.id()).unwrap().frame_no;
    Message::Frame(f).encode()
}

fn pair(config: ReplicaConfig) -> (ManualTime, Replica, Replica) {
    let time = ManualTime::new(1_000);
    let mut a = Replica::new("a", 0, config.clone(), Arc::new(time.clone()));
    let mut b = Replica::new("b", 0, config, Arc::new(time.clone()));
    a.add_peer(b.id(), "b").unwrap();
    b.add_peer(a.id(), "a").unwrap();
    (time, a, b)
}

/// Everything `from` has for `to`, then a heartbeat; every ack goes back.
fn send(from: &mut Replica, to: &mut Replica) {
    let to_id = to.id();
    let mut frames = Vec::new();
    while let Some(f) = from.frame_for(to_id).unwrap() {
        frames.push(f);
    }
    frames.push(from.heartbeat(to_id).unwrap());
    for f in frames {
        let reply = to
            .receive(&Message::Frame(f).encode())
            .unwrap()
            .reply
            .unwrap();
        from.receive(&reply).unwrap();
    }
}

/// Both directions, until both are idle.
fn sync(a: &mut Replica, b: &mut Replica) {
    for _ in 0..4 {
        send(a, b);
        send(b, a);
    }
}

fn collect(time: &ManualTime, a: &mut Replica, b: &mut Replica) {
    for _ in 0..4 {
        time.advance(10);
        a.tick();
        b.tick();
        sync(a, b);
    }
}

#[test]
fn a_late_state_chunk_does_not_bring_back_a_collected_session() {
    let config = ReplicaConfig {
        log_max_ops: 2,
        end_retention_ms: 0,
        ..ReplicaConfig::default()
    };
    let (time, mut a, mut b) = pair(config);
    b.put("s", "k", "v").unwrap();
    b.counter_add("s", "n", 3).unwrap();
    b.set_add("s", "tags", "x").unwrap();
    b.put("other", "k", "v").unwrap();
    // a is behind b's op log: b sends a state transfer; a copy of the chunk stays in flight.
    let chunk = b.frame_for(a.id()).unwrap().unwrap();
    assert!(matches!(chunk.body, FrameBody::State { .. }));
    let late = Message::Frame(chunk).encode();
    let reply = a.receive(&late).unwrap().reply.unwrap();
    b.receive(&reply).unwrap();
    assert!(a.contains(b"s"));

    a.end("s").unwrap();
    sync(&mut a, &mut b);
    collect(&time, &mut a, &mut b);
    assert!(a.session_state(b"s").is_none(), "the end was collected");
    assert_eq!(a.status().tombstones_pending, 0);

    let root = a.digests().root();
    // Delivered as it is, the copy is a replay and refused; a stale chunk that is not one
    // (renumbered past everything sent) is merged causally and brings nothing back.
    assert!(matches!(a.receive(&late), Err(Error::ReplayedFrame { .. })));
    a.receive(&renumbered(&late, &mut b, &a)).unwrap();
    assert!(!a.contains(b"s"), "the late chunk brought the session back");
    assert!(a.session_state(b"s").is_none());
    assert_eq!(a.digests().root(), root);
    sync(&mut a, &mut b);
    assert!(!b.contains(b"s"));
    assert_eq!(a.digests().root(), b.digests().root());
}

#[test]
fn a_late_repair_does_not_bring_back_a_collected_field_or_set_element() {
    let (time, mut a, mut b) = pair(ReplicaConfig {
        end_retention_ms: 0,
        ..ReplicaConfig::default()
    });
    a.put("s", "gone", "old").unwrap();
    a.set_add("s", "tags", "x").unwrap();
    sync(&mut a, &mut b);
    let late = Message::Frame(b.repair_frames(a.id(), &["s".into()]).unwrap().remove(0)).encode();
    a.delete_field("s", "gone").unwrap();
    a.set_remove("s", "tags", "x").unwrap();
    sync(&mut a, &mut b);
    collect(&time, &mut a, &mut b);
    assert_eq!(a.status().tombstones_pending, 0);
    assert!(!a
        .session_state(b"s")
        .unwrap()
        .fields
        .contains_key(&b"gone"[..]));

    assert!(matches!(a.receive(&late), Err(Error::ReplayedFrame { .. })));
    a.receive(&renumbered(&late, &mut b, &a)).unwrap();
    // Emptied, the session reads as absent; whatever it reads as, nothing deleted is back.
    let view = a.get(b"s");
    assert!(
        view.as_ref()
            .is_none_or(|v| !v.fields.contains_key(&b"gone"[..])),
        "deleted field came back"
    );
    assert!(
        view.is_none_or(|v| !v.sets.contains_key(&b"tags"[..])),
        "removed element came back"
    );
    sync(&mut a, &mut b);
    assert_eq!(a.digests().root(), b.digests().root());
}
