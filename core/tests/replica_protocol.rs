//! The replication protocol between in-process replicas: convergence, forwarding, state
//! transfer when a peer fell behind the op log, sticky ends and expiry, tombstone collection.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use common::mesh::mesh;
use session_ha::{ManualTime, Message, Replica, ReplicaConfig};

/// Sends everything `from` has for `to` (frames and acks) until there is nothing left, then
/// a heartbeat.
fn sync(rs: &mut [Replica], from: usize, to: usize) {
    let to_id = rs[to].id();
    let mut idle = false;
    for _ in 0..1000 {
        let frame = match rs[from].frame_for(to_id).unwrap() {
            Some(f) => f,
            None if idle => return,
            None => {
                idle = true;
                rs[from].heartbeat(to_id).unwrap()
            }
        };
        let bytes = Message::Frame(frame).encode();
        let reply = rs[to].receive(&bytes).unwrap().reply.unwrap();
        rs[from].receive(&reply).unwrap();
    }
    panic!("sync did not finish");
}

fn sync_all(rs: &mut [Replica]) {
    for _ in 0..3 {
        for a in 0..rs.len() {
            for b in 0..rs.len() {
                if a != b {
                    sync(rs, a, b);
                }
            }
        }
    }
}

#[test]
fn concurrent_writes_converge_to_equal_digests() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&["a", "b", "c"], &time, ReplicaConfig::default());
    rs[0].put("s", "k", "from-a").unwrap();
    time.advance(1);
    rs[1].put("s", "k", "from-b").unwrap();
    rs[2].counter_add("s", "n", 5).unwrap();
    rs[0].counter_add("s", "n", -2).unwrap();
    rs[1].set_add("s", "tags", "x").unwrap();
    sync_all(&mut rs);
    let root = rs[0].digests().root();
    for r in &rs {
        assert_eq!(r.digests().root(), root);
        let v = r.get(b"s").unwrap();
        assert_eq!(v.counters[&b"n"[..]], 3);
        assert_eq!(v.fields[&b"k"[..]], "from-b", "later HLC stamp wins");
        for p in r.status().peers {
            assert_eq!(p.pending_ops, 0);
            assert_eq!(p.lag_ms, 0);
        }
    }
}

#[test]
fn ops_are_forwarded_so_what_reached_one_survivor_reaches_all() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&["origin", "relay", "far"], &time, ReplicaConfig::default());
    rs[0].put("s", "k", "v").unwrap();
    sync(&mut rs, 0, 1);
    // origin dies; only relay can tell far
    sync(&mut rs, 1, 2);
    assert_eq!(rs[2].get_field(b"s", b"k").unwrap(), "v");
}

#[test]
fn a_peer_behind_the_op_log_gets_a_state_transfer() {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig {
        log_max_ops: 10,
        frame_budget: 2_000,
        ..ReplicaConfig::default()
    };
    let mut rs = mesh(&["a", "b"], &time, config);
    for i in 0..500 {
        rs[0]
            .put(format!("s{i}").as_str(), "k", vec![b'x'; 50])
            .unwrap();
    }
    assert!(rs[0].status().peers[0].state_transfer);
    sync(&mut rs, 0, 1);
    assert_eq!(rs[1].session_ids().len(), 500);
    assert_eq!(rs[0].digests().root(), rs[1].digests().root());
    assert_eq!(rs[1].version_vector(), rs[0].version_vector());
    assert!(!rs[0].status().peers[0].state_transfer);
    rs[0].put("after", "k", "v").unwrap();
    sync(&mut rs, 0, 1);
    assert_eq!(rs[1].get_field(b"after", b"k").unwrap(), "v");
}

#[test]
fn an_ended_session_never_comes_back() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&["a", "b"], &time, ReplicaConfig::default());
    rs[0].put("s", "k", "v").unwrap();
    rs[1].end("s").unwrap(); // concurrent end
    time.advance(5);
    rs[0].put("s", "k2", "later").unwrap(); // a later write at a, not yet aware
    sync_all(&mut rs);
    assert!(rs[0].get(b"s").is_none());
    assert!(rs[1].get(b"s").is_none());
    assert!(matches!(
        rs[0].put("s", "k", "again"),
        Err(session_ha::Error::SessionEnded)
    ));
}

#[test]
fn an_expired_session_stays_gone_when_a_longer_touch_arrives_late() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(&["a", "b"], &time, ReplicaConfig::default());
    rs[0].put("s", "k", "v").unwrap();
    rs[0].touch("s", 100).unwrap();
    sync_all(&mut rs);
    rs[1].touch("s", 10_000).unwrap(); // b extends, but the frame is late
    time.advance(200);
    assert!(rs[0].get(b"s").is_none(), "expired at a");
    sync(&mut rs, 1, 0);
    assert!(
        rs[0].get(b"s").is_none(),
        "the late touch does not revive it"
    );
    sync_all(&mut rs);
    assert!(rs[1].get(b"s").is_none(), "and the end reaches b");
}

#[test]
fn tombstones_are_collected_once_every_member_acknowledged_them() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(
        &["a", "b", "c"],
        &time,
        ReplicaConfig {
            end_retention_ms: 0,
            ..ReplicaConfig::default()
        },
    );
    for i in 0..50 {
        let id = format!("s{i}");
        rs[0].put(id.as_str(), "k", "v").unwrap();
        rs[0].put(id.as_str(), "gone", "v").unwrap();
        rs[0].delete_field(id.as_str(), "gone").unwrap();
        rs[0].end(id.as_str()).unwrap();
    }
    sync_all(&mut rs);
    for _ in 0..3 {
        for r in rs.iter_mut() {
            r.tick();
        }
        sync_all(&mut rs);
    }
    for r in &rs {
        let st = r.status();
        assert_eq!(st.tombstones_pending, 0, "{}", r.name());
        assert_eq!(st.sessions, 0, "{}", r.name());
    }
}

#[test]
fn a_dead_member_blocks_collection_until_it_is_removed() {
    let time = ManualTime::new(1_000);
    let mut rs = mesh(
        &["a", "b", "dead"],
        &time,
        ReplicaConfig {
            end_retention_ms: 0,
            ..ReplicaConfig::default()
        },
    );
    rs[0].put("s", "k", "v").unwrap();
    rs[0].end("s").unwrap();
    sync(&mut rs, 0, 1);
    sync(&mut rs, 1, 0);
    for _ in 0..3 {
        rs[0].tick();
        rs[1].tick();
        sync(&mut rs, 0, 1);
        sync(&mut rs, 1, 0);
    }
    assert_eq!(rs[0].status().tombstones_pending, 1);
    let dead = rs[2].id();
    rs[0].remove_member(dead).unwrap();
    for _ in 0..3 {
        rs[0].tick();
        rs[1].tick();
        sync(&mut rs, 0, 1);
        sync(&mut rs, 1, 0);
    }
    assert_eq!(rs[1].status().removed, vec![dead], "removal spreads");
    assert_eq!(rs[0].status().tombstones_pending, 0);
    assert_eq!(rs[1].status().tombstones_pending, 0);
    rs[2].put("late", "k", "v").unwrap();
    let a = rs[0].id();
    let frame = rs[2].frame_for(a).unwrap().unwrap();
    let before = rs[0].digests().root();
    assert!(matches!(
        rs[0].apply_frame(frame),
        Err(session_ha::Error::RemovedReplica(_))
    ));
    assert_eq!(rs[0].digests().root(), before);
}

#[test]
fn a_stable_end_is_retained_before_its_id_is_forgotten() {
    let time = ManualTime::new(1_000);
    let config = ReplicaConfig {
        end_retention_ms: 5_000,
        ..ReplicaConfig::default()
    };
    let mut rs = mesh(&["a", "b"], &time, config);
    rs[0].put("s", "k", "v").unwrap();
    rs[0].end("s").unwrap();
    for _ in 0..3 {
        rs.iter_mut().for_each(|r| {
            r.tick();
        });
        sync_all(&mut rs);
    }
    assert_eq!(rs[0].status().tombstones_pending, 1, "stable, but retained");
    assert!(matches!(
        rs[0].put("s", "k", "again"),
        Err(session_ha::Error::SessionEnded)
    ));
    time.advance(5_001);
    rs[0].tick();
    assert_eq!(rs[0].status().tombstones_pending, 0);
    assert_eq!(rs[0].status().sessions, 0);
}
