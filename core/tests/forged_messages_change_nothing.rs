//! The trust boundary (`replicate/trust.rs`): every kind of forged, replayed or misconfigured
//! message is refused with a typed error, counted against the sender it claims, and changes
//! nothing; the real members keep replicating throughout.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use session_ha::codec;
use session_ha::{
    AuthFailure, Error, Frame, FrameBody, FrameKey, FrameKeys, ManualTime, Message, Op, OpKind,
    Replica, ReplicaConfig, ReplicaId, ReplicaStatus, SessionId, Timestamp, VersionVector,
};

const T0: u64 = 1_700_000_000_000;

fn keys(secret: &str) -> FrameKeys {
    FrameKeys::new(FrameKey::from_secret(secret.as_bytes()))
}

fn config(secret: &str) -> ReplicaConfig {
    ReplicaConfig {
        frame_keys: Some(keys(secret)),
        ..ReplicaConfig::default()
    }
}

/// What must not change when a message is refused (the refusal counts do).
fn state(r: &Replica) -> (VersionVector, u128, ReplicaStatus) {
    let mut st = r.status();
    st.refused.clear();
    st.refused_other = Default::default();
    for p in &mut st.peers {
        p.clock_ahead_ms = 0;
    }
    (r.version_vector().clone(), r.digests().root().0, st)
}

fn refusals(r: &Replica) -> u64 {
    let st = r.status();
    st.refused_other.total() + st.refused.iter().map(|(_, c)| c.total()).sum::<u64>()
}

/// Delivers `bytes` to `r` and checks it was refused as `expect` says, counted once, and
/// changed nothing.
fn refused(r: &mut Replica, bytes: &[u8], expect: impl Fn(&Error) -> bool) {
    let (before, count) = (state(r), refusals(r));
    match r.receive(bytes) {
        Err(e) => assert!(expect(&e), "refused for the wrong reason: {e}"),
        Ok(_) => panic!("accepted"),
    }
    assert_eq!(state(r), before, "a refused message changed the replica");
    assert_eq!(refusals(r), count + 1, "the refusal was not counted");
}

/// A frame from `sender` to `to`, as anyone holding the key could make one.
fn frame(sender: ReplicaId, to: ReplicaId, frame_no: u64, body: FrameBody) -> Frame {
    Frame {
        sender,
        sender_name: "mallory".into(),
        boot: 1,
        to,
        to_boot: 0,
        frame_no,
        vv: VersionVector::new(),
        removed: Vec::new(),
        body,
    }
}

fn put_op(origin: ReplicaId, seq: u64, ts: Timestamp) -> Op {
    Op {
        dot: session_ha::Dot {
            replica: origin,
            seq,
        },
        ts,
        session: SessionId::from("victim"),
        kind: OpKind::End,
    }
}

fn converged(rs: &mut [Replica]) {
    for _ in 0..3 {
        common::mesh::send(rs, 0, 1);
        common::mesh::send(rs, 1, 0);
    }
    assert_eq!(rs[0].digests().root(), rs[1].digests().root());
    assert_eq!(rs[0].version_vector(), rs[1].version_vector());
}

#[test]
fn forged_and_misconfigured_messages_of_every_kind_change_nothing_and_are_counted() {
    let time = ManualTime::new(T0);
    let mut rs = common::mesh::mesh(&["east", "west"], &time, config("the cluster secret"));
    rs[0].put("s1", "user", "alice").unwrap();
    converged(&mut rs);
    let (east, west) = (rs[0].id(), rs[1].id());
    let good = rs[0].frame_for(west).unwrap();
    assert!(good.is_none(), "converged");
    rs[0].put("s2", "user", "bob").unwrap();
    let genuine = rs[0].frame_for(west).unwrap().unwrap();
    let genuine_bytes = rs[0].encode(&Message::Frame(genuine.clone()));

    let stranger = ReplicaId::from_region("mallory", 0);
    let from_stranger = frame(stranger, west, 1, FrameBody::Ops(Vec::new()));
    let unauth = |want: AuthFailure| move |e: &Error| matches!(e, Error::Unauthenticated { why, .. } if *why == want);

    // Wrong key: a stranger's frame, and a member's frame signed with another cluster's key.
    let other = keys("another cluster");
    let other_id = other.current().id();
    let w = &mut rs[1];
    refused(
        w,
        &Message::Frame(from_stranger.clone()).encode_with(Some(&other)),
        unauth(AuthFailure::UnknownKey(other_id)),
    );
    refused(
        w,
        &Message::Frame(genuine.clone()).encode_with(Some(&other)),
        unauth(AuthFailure::UnknownKey(other_id)),
    );
    // No MAC at all.
    refused(
        w,
        &Message::Frame(genuine.clone()).encode(),
        unauth(AuthFailure::Missing),
    );
    // A forged tag under the right key id (the checksum fixed, as a forger would).
    let mut forged = genuine_bytes.clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    fix_crc(&mut forged);
    let id = keys("the cluster secret").current().id();
    refused(w, &forged, unauth(AuthFailure::BadTag(id)));
    // The content altered under the genuine tag.
    let mut altered = genuine_bytes.clone();
    altered[codec::HEADER_LEN + 3] ^= 0x40;
    fix_crc(&mut altered);
    refused(w, &altered, |e| matches!(e, Error::Unauthenticated { .. }));
    // A truncated MAC: refused as damage before anything is parsed.
    refused(w, &genuine_bytes[..n - 7], |e| matches!(e, Error::Frame(_)));
    // A stranger holding the key (a misconfigured node): not a member, never becomes one.
    let signed =
        |f: &Frame| Message::Frame(f.clone()).encode_with(Some(&keys("the cluster secret")));
    refused(
        w,
        &signed(&from_stranger),
        |e| matches!(e, Error::NotAMember(id) if *id == stranger),
    );
    assert!(
        w.peers().iter().all(|(id, _)| *id != stranger),
        "a stranger joined"
    );
    // ... and its removal list naming a member removes nothing.
    let mut evict = from_stranger.clone();
    evict.removed = vec![east];
    refused(w, &signed(&evict), |e| matches!(e, Error::NotAMember(_)));
    // A member's id claimed in the MAC trailer and another in the content.
    let mut claim = signed(&Frame {
        sender: stranger,
        ..genuine.clone()
    });
    let at = claim.len() - codec::TRAILER_LEN;
    claim[at..at + 8].copy_from_slice(&east.0.to_le_bytes());
    fix_crc(&mut claim);
    refused(w, &claim, |e| {
        matches!(e, Error::Unauthenticated { .. } | Error::Frame(_))
    });
    // Far-future stamps from a member: held back, and the clock does not follow.
    let future = Timestamp::new(u64::MAX >> 17, 0);
    let far = frame(
        east,
        west,
        genuine.frame_no + 1,
        FrameBody::Ops(vec![put_op(east, 1_000, future)]),
    );
    let far = Frame {
        sender_name: "east".into(),
        boot: genuine.boot,
        ..far
    };
    refused(
        w,
        &signed(&far),
        |e| matches!(e, Error::ClockAhead { sender, .. } if *sender == east),
    );
    assert!(
        w.clock_last().millis() < T0 + 60_000,
        "the clock followed a forged stamp"
    );
    let skew = w
        .status()
        .peers
        .iter()
        .find(|p| p.id == east)
        .unwrap()
        .clock_ahead_ms;
    assert!(skew > 60_000, "the skew is reported: {skew}");

    // The genuine frame still applies; then a replay of it is refused.
    let applied = w.receive(&genuine_bytes).unwrap();
    assert!(!applied.changes.is_empty());
    refused(w, &genuine_bytes, |e| {
        matches!(e, Error::ReplayedFrame { .. })
    });

    let st = rs[1].status();
    let by_stranger = st.refused.iter().find(|(id, _)| *id == stranger).unwrap().1;
    assert_eq!(
        (by_stranger.not_member, by_stranger.unauthenticated),
        (2, 1),
        "{st:?}"
    );
    let by_east = st.refused.iter().find(|(id, _)| *id == east).unwrap().1;
    assert_eq!(by_east.replayed, 1, "{by_east:?}");
    assert_eq!(by_east.clock_ahead, 1, "{by_east:?}");
    assert!(st.authenticated && st.removed.is_empty());

    // The real members keep replicating, both ways.
    rs[1].put("s3", "user", "carol").unwrap();
    converged(&mut rs);
    assert!(rs[0].get(b"s3").is_some() && rs[1].get(b"s2").is_some());
}

/// Recomputes an envelope's checksum over bytes 0..16 and everything after the header.
fn fix_crc(b: &mut [u8]) {
    let mut h = crc32fast::Hasher::new();
    h.update(&b[..16]);
    h.update(&b[codec::HEADER_LEN..]);
    let crc = h.finalize();
    b[16..20].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn every_altered_byte_of_a_signed_frame_is_refused_and_changes_nothing() {
    let time = ManualTime::new(T0);
    let mut rs = common::mesh::mesh(&["east", "west"], &time, config("the cluster secret"));
    for i in 0..20 {
        rs[0].put(format!("s{i}"), "k", "v").unwrap();
    }
    let west = rs[1].id();
    let f = rs[0].frame_for(west).unwrap().unwrap();
    let bytes = rs[0].encode(&Message::Frame(f));
    let before = state(&rs[1]);
    for at in 0..bytes.len() {
        for fix in [false, true] {
            let mut b = bytes.clone();
            b[at] ^= 0x01;
            if fix {
                fix_crc(&mut b);
            }
            if b == bytes {
                continue;
            }
            assert!(
                rs[1].receive(&b).is_err(),
                "byte {at} (crc fixed: {fix}) accepted"
            );
        }
    }
    assert_eq!(state(&rs[1]), before);
    rs[1].receive(&bytes).unwrap();
    assert!(rs[1].get(b"s19").is_some());
}

#[test]
fn a_hello_is_authenticated_and_names_its_node() {
    let time = ManualTime::new(T0);
    let mut east = Replica::new(
        "east",
        0,
        config("secret"),
        std::sync::Arc::new(time.clone()),
    );
    let mut west = Replica::new(
        "west",
        0,
        config("secret"),
        std::sync::Arc::new(time.clone()),
    );
    let hello = east.hello("east@host");
    let h = west.open_hello(&hello).unwrap();
    assert_eq!(
        (h.sender, h.sender_name.as_str(), h.node.as_str()),
        (east.id(), "east", "east@host")
    );
    assert!(
        west.peers().is_empty(),
        "opening a hello makes nobody a member"
    );
    let mut other = Replica::new(
        "east",
        0,
        config("other"),
        std::sync::Arc::new(time.clone()),
    );
    assert!(matches!(
        west.open_hello(&other.hello("east@host")),
        Err(Error::Unauthenticated { .. })
    ));
    // Its own hello, reflected back, and a frame passed off as a hello.
    assert!(matches!(
        west.open_hello(&west.hello("west@host")),
        Err(Error::OwnFrame)
    ));
    west.add_peer(east.id(), "east").unwrap();
    east.add_peer(west.id(), "west").unwrap();
    let hb = east.heartbeat(west.id()).unwrap();
    assert!(matches!(
        west.open_hello(&east.encode(&Message::Frame(hb))),
        Err(Error::Frame(_))
    ));
    // A hello of a removed replica.
    west.remove_member(east.id()).unwrap();
    assert!(matches!(
        west.open_hello(&hello),
        Err(Error::RemovedReplica(_))
    ));
    let _ = other.tick();
}

#[test]
fn a_key_rotation_in_three_steps_never_stops_replication() {
    let time = ManualTime::new(T0);
    let (old, new) = (
        FrameKey::from_secret(b"old key"),
        FrameKey::from_secret(b"new key"),
    );
    let mut rs = common::mesh::mesh(&["east", "west"], &time, config("old key"));
    let both = |k: &FrameKeys| [k.clone(), k.clone()];
    let steps = [
        // Everyone accepts the new key beside the old, still signing with the old.
        [
            FrameKeys::new(old.clone()).with_previous(new.clone()),
            FrameKeys::new(old.clone()),
        ],
        both(&FrameKeys::new(old.clone()).with_previous(new.clone())),
        // Then signs with the new one, one node at a time.
        [
            FrameKeys::new(new.clone()).with_previous(old.clone()),
            FrameKeys::new(old.clone()).with_previous(new.clone()),
        ],
        both(&FrameKeys::new(new.clone()).with_previous(old.clone())),
        // Then drops the old one.
        [
            FrameKeys::new(new.clone()),
            FrameKeys::new(new.clone()).with_previous(old.clone()),
        ],
        [FrameKeys::new(new.clone()), FrameKeys::new(new.clone())],
    ];
    for (i, [a, b]) in steps.into_iter().enumerate() {
        rs[0].set_frame_keys(Some(a));
        rs[1].set_frame_keys(Some(b));
        rs[i % 2].put(format!("s{i}"), "k", "v").unwrap();
        converged(&mut rs);
        assert_eq!(refusals(&rs[0]) + refusals(&rs[1]), 0, "step {i}");
    }
    // A node left on the old key alone is now refused.
    rs[1].set_frame_keys(Some(FrameKeys::new(old)));
    rs[0].put("late", "k", "v").unwrap();
    let west = rs[1].id();
    let f = rs[0].frame_for(west).unwrap().unwrap();
    let bytes = rs[0].encode(&Message::Frame(f));
    assert!(matches!(
        rs[1].receive(&bytes),
        Err(Error::Unauthenticated { .. })
    ));
}

#[test]
fn a_wall_clock_set_far_ahead_is_noticed_and_its_stamps_stay_acceptable() {
    let time = ManualTime::new(T0);
    let east_time = ManualTime::new(T0);
    let cfg = config("secret");
    let mut rs = vec![
        Replica::new(
            "east",
            0,
            cfg.clone(),
            std::sync::Arc::new(east_time.clone()),
        ),
        Replica::new("west", 0, cfg, std::sync::Arc::new(time.clone())),
    ];
    let (e, w) = (rs[0].id(), rs[1].id());
    rs[0].add_peer(w, "west").unwrap();
    rs[1].add_peer(e, "east").unwrap();
    rs[0].put("s", "k", "before").unwrap();
    converged(&mut rs);
    // East's wall clock is set a day ahead: east notices, and does not follow it.
    east_time.jump(86_400_000);
    rs[0].put("s", "k", "during").unwrap();
    assert!(rs[0].status().clock_jump_ms > 86_000_000);
    assert!(rs[0].clock_last().millis() <= T0 + 60_000);
    // West takes east's writes: they are within the bound.
    converged(&mut rs);
    assert_eq!(rs[1].get(b"s").unwrap().fields[&b"k"[..]], "during");
    // A write on west a moment later still wins: last-writer-wins follows time.
    time.advance(61_000);
    east_time.advance(61_000);
    rs[1].put("s", "k", "after").unwrap();
    converged(&mut rs);
    assert_eq!(rs[0].get(b"s").unwrap().fields[&b"k"[..]], "after");
    // Put right, east's clock follows the wall again.
    east_time.jump(0);
    assert_eq!(rs[0].status().clock_jump_ms, 0);
}

#[test]
fn a_frame_held_back_for_its_clock_is_taken_once_the_clocks_agree() {
    let east_time = ManualTime::new(T0 + 120_000);
    let west_time = ManualTime::new(T0);
    let cfg = ReplicaConfig {
        resend_after_ms: 100,
        ..config("secret")
    };
    let mut east = Replica::new(
        "east",
        0,
        cfg.clone(),
        std::sync::Arc::new(east_time.clone()),
    );
    let mut west = Replica::new("west", 0, cfg, std::sync::Arc::new(west_time.clone()));
    east.add_peer(west.id(), "west").unwrap();
    west.add_peer(east.id(), "east").unwrap();
    east.put("s", "k", "v").unwrap();
    let f = east.frame_for(west.id()).unwrap().unwrap();
    let r = west.receive(&east.encode(&Message::Frame(f)));
    assert!(
        matches!(
            r,
            Err(Error::ClockAhead {
                ahead_ms: 120_000,
                max_ms: 60_000,
                ..
            })
        ),
        "{r:?}"
    );
    assert!(west.get(b"s").is_none(), "not applied");
    // West's clock catches up to within the bound; east sends again after its timeout.
    west_time.advance(61_000);
    east_time.advance(1_000);
    east.tick();
    let f = east.frame_for(west.id()).unwrap().unwrap();
    let reply = west.receive(&east.encode(&Message::Frame(f))).unwrap();
    east.receive(&reply.reply.unwrap()).unwrap();
    assert!(west.get(b"s").is_some());
    assert_eq!(east.status().peers[0].pending_ops, 0);
}
