//! Every wire format decodes to exactly what was encoded, and encodes again to the same
//! bytes: `Message::Frame` with each `FrameBody` (ops, a state-transfer chunk, a repair),
//! `Message::Ack`, the bincode layer, and the `codec::seal` / `codec::open` envelope on both
//! its raw and its lz4 path.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod support;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use session_ha::codec;
use session_ha::replicate::MAX_SEQ;
use session_ha::{
    Ack, Frame, FrameBody, Gap, Limits, Message, ReplicaId, SessionId, SessionState, VersionVector,
};

fn replica() -> impl Strategy<Value = ReplicaId> {
    any::<u64>().prop_map(ReplicaId)
}

fn name() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,40}"
}

fn vv() -> impl Strategy<Value = VersionVector> {
    btree_map(any::<u64>(), 1..=MAX_SEQ, 0..5)
        .prop_map(|m| m.into_iter().map(|(r, s)| (ReplicaId(r), s)).collect())
}

fn sessions() -> impl Strategy<Value = Vec<(SessionId, SessionState)>> {
    (support::states(3), vec("[a-zA-Z0-9:_-]{1,64}", 3)).prop_map(|(states, ids)| {
        ids.into_iter()
            .map(|id| SessionId::from(id.as_str()))
            .zip(states)
            .collect()
    })
}

fn body() -> impl Strategy<Value = FrameBody> {
    prop_oneof![
        support::history_of(SessionId::from("a-session"), 40).prop_map(FrameBody::Ops),
        Just(FrameBody::Ops(Vec::new())),
        (any::<u64>(), any::<u32>(), any::<bool>(), vv(), sessions()).prop_map(
            |(transfer, index, last, covers, sessions)| FrameBody::State {
                transfer,
                index,
                last,
                covers,
                sessions,
            }
        ),
        sessions().prop_map(|s| FrameBody::Repair(
            s.into_iter()
                .enumerate()
                .map(|(i, (id, st))| (id, (i % 3 != 2).then_some(st)))
                .collect()
        )),
    ]
}

fn frame() -> impl Strategy<Value = Message> {
    (
        (replica(), name(), any::<u64>(), replica(), any::<u64>()),
        1..u64::MAX,
        vv(),
        vec(replica(), 0..3),
        body(),
    )
        .prop_map(
            |((sender, sender_name, boot, to, to_boot), frame_no, vv, removed, body)| {
                Message::Frame(Frame {
                    sender,
                    sender_name,
                    boot,
                    to,
                    to_boot,
                    frame_no,
                    vv,
                    removed,
                    body,
                })
            },
        )
}

fn ack() -> impl Strategy<Value = Message> {
    let gap = (replica(), 1..MAX_SEQ - 1_000, 0..1_000u64).prop_map(|(origin, from, len)| Gap {
        origin,
        from,
        to: from + len,
    });
    (
        (replica(), name(), any::<u64>(), replica(), any::<u64>()),
        vv(),
        any::<u64>(),
        vec(gap, 0..4),
        vec(replica(), 0..3),
        0u8..4,
    )
        .prop_map(
            |((from, from_name, boot, to, to_boot), vv, frame_no, gaps, removed, flags)| {
                Message::Ack(Ack {
                    from,
                    from_name,
                    boot,
                    to,
                    to_boot,
                    vv,
                    frame_no,
                    gaps,
                    removed,
                    flags,
                })
            },
        )
}

fn round_trip(msg: &Message) {
    let bytes = msg.encode();
    let back = Message::decode(&bytes, &Limits::default()).unwrap();
    assert_eq!(&back, msg);
    assert_eq!(back.encode(), bytes, "encoding is deterministic");
    let raw = codec::to_bytes(msg);
    assert_eq!(&codec::from_bytes::<Message>(&raw).unwrap(), msg);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn frames_of_every_body_round_trip(msg in frame()) {
        round_trip(&msg);
    }

    #[test]
    fn acks_round_trip(msg in ack()) {
        round_trip(&msg);
    }

    #[test]
    fn any_bytes_round_trip_through_the_envelope(raw in vec(any::<u8>(), 0..4_096)) {
        let sealed = codec::seal(&raw);
        prop_assert_eq!(&sealed[..4], &codec::MAGIC[..]);
        prop_assert_eq!(codec::open(&sealed, 1 << 20).unwrap(), raw);
    }

    #[test]
    fn compressible_bodies_take_the_lz4_path_and_round_trip(
        unit in vec(any::<u8>(), 1..16),
        times in 64..2_000usize,
    ) {
        let raw: Vec<u8> = unit.iter().copied().cycle().take(unit.len() * times).collect();
        prop_assume!(raw.len() >= 512);
        let sealed = codec::seal(&raw);
        prop_assert_eq!(sealed[6] & 1, 1, "compressed");
        prop_assert!(sealed.len() < raw.len());
        prop_assert_eq!(codec::open(&sealed, 1 << 20).unwrap(), raw);
    }
}

#[test]
fn a_large_frame_is_compressed_on_the_wire_and_decodes() {
    let op = session_ha::Op {
        dot: session_ha::Dot {
            replica: ReplicaId(7),
            seq: 1,
        },
        ts: session_ha::Timestamp(1),
        session: SessionId::from("s"),
        kind: session_ha::OpKind::Touch { deadline_ms: 5 },
    };
    let ops = (1..=500)
        .map(|seq| session_ha::Op {
            dot: session_ha::Dot { seq, ..op.dot },
            ..op.clone()
        })
        .collect();
    let msg = Message::Frame(Frame {
        sender: ReplicaId(1),
        sender_name: "r".into(),
        boot: 1,
        to: ReplicaId(0),
        to_boot: 0,
        frame_no: 1,
        vv: VersionVector::new(),
        removed: Vec::new(),
        body: FrameBody::Ops(ops),
    });
    let bytes = msg.encode();
    assert_eq!(bytes[6] & 1, 1, "lz4 flag");
    round_trip(&msg);
}
