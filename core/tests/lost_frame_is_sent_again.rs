//! A frame lost in flight is sent again even when a later frame (a heartbeat, or ops of
//! another origin) arrives and is acknowledged: the acknowledgement of our latest frame
//! shows what the peer still lacks (found by the multi-region simulator, seed 653: a lost
//! ops frame was never sent again and a region stayed behind for good).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use session_ha::{FrameBody, ManualTime, Message, Replica, ReplicaConfig};

fn pair(config: ReplicaConfig) -> (ManualTime, Replica, Replica) {
    let time = ManualTime::new(1_000);
    let mut a = Replica::new("a", 0, config.clone(), Arc::new(time.clone()));
    let mut b = Replica::new("b", 0, config, Arc::new(time.clone()));
    a.add_peer(b.id(), "b").unwrap();
    b.add_peer(a.id(), "a").unwrap();
    (time, a, b)
}

fn deliver(from: &mut Replica, to: &mut Replica, frame: session_ha::Frame) {
    let reply = to.receive(&Message::Frame(frame).encode()).unwrap();
    from.receive(&reply.reply.unwrap()).unwrap();
}

/// Idles the pair for a while: ticks, and heartbeats both ways.
fn idle(time: &ManualTime, a: &mut Replica, b: &mut Replica) {
    for _ in 0..5 {
        time.advance(5_000);
        a.tick();
        b.tick();
        let (a_id, b_id) = (a.id(), b.id());
        while let Some(f) = a.frame_for(b_id).unwrap() {
            deliver(a, b, f);
        }
        let hb = a.heartbeat(b_id).unwrap();
        deliver(a, b, hb);
        let hb = b.heartbeat(a_id).unwrap();
        deliver(b, a, hb);
    }
}

#[test]
fn a_lost_ops_frame_is_sent_again_after_a_later_frame_is_acknowledged() {
    let (time, mut a, mut b) = pair(ReplicaConfig::default());
    a.put("s", "k", "v").unwrap();
    let lost = a.frame_for(b.id()).unwrap().unwrap();
    assert!(matches!(lost.body, FrameBody::Ops(ref ops) if ops.len() == 1));
    let hb = a.heartbeat(b.id()).unwrap();
    deliver(&mut a, &mut b, hb);
    idle(&time, &mut a, &mut b);
    assert_eq!(b.get_field(b"s", b"k").unwrap(), "v");
    assert_eq!(a.status().peers[0].pending_ops, 0);
}

#[test]
fn a_lost_last_transfer_chunk_starts_the_transfer_again() {
    let config = ReplicaConfig {
        log_max_ops: 2,
        ..ReplicaConfig::default()
    };
    let (time, mut a, mut b) = pair(config);
    for i in 0..5 {
        a.put(format!("s{i}").as_str(), "k", "v").unwrap();
    }
    let lost = a.frame_for(b.id()).unwrap().unwrap();
    assert!(matches!(lost.body, FrameBody::State { last: true, .. }));
    let hb = a.heartbeat(b.id()).unwrap();
    deliver(&mut a, &mut b, hb);
    idle(&time, &mut a, &mut b);
    assert_eq!(b.session_ids().len(), 5);
    assert_eq!(a.version_vector(), b.version_vector());
}
