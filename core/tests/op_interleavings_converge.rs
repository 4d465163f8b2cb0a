//! Any interleaving of the same ops, duplicates included, delivered through real replicas as
//! encoded frames in shuffled order and arbitrary batches, converges: equal version vectors,
//! equal digest roots and byte-identical canonical state for every session, the same as the
//! writers reach by syncing with each other.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;
use session_ha::{
    Frame, FrameBody, ManualTime, Message, Op, Replica, ReplicaConfig, ReplicaId, SessionId,
    VersionVector,
};

use common::mesh::{mesh, send};

/// One step of the writers' script.
#[derive(Debug, Clone)]
struct Step {
    writer: usize,
    session: u8,
    action: u8,
    arg: u8,
    /// After the write, the writer syncs with the next writer.
    sync: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0..3usize,
        0..3u8,
        0..9u8,
        0..4u8,
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(writer, session, action, arg, sync)| Step {
            writer,
            session,
            action,
            arg,
            sync,
        })
}

/// Runs the script on three writers; returns them and every op they made.
fn write(script: &[Step], time: &ManualTime) -> (Vec<Replica>, Vec<Op>) {
    let mut rs = mesh(&["w0", "w1", "w2"], time, ReplicaConfig::default());
    let mut ops = Vec::new();
    for s in script {
        let r = &mut rs[s.writer];
        let sid = format!("s{}", s.session);
        let sid = sid.as_str();
        let key = format!("k{}", s.arg % 3);
        let elem = format!("e{}", s.arg % 2);
        let result = match s.action {
            0 | 1 => r.put(sid, key, format!("{}-{}", r.name(), s.arg)),
            2 => r.delete_field(sid, key),
            3 => r.counter_add(sid, "c", i64::from(s.arg) - 2),
            4 | 5 => r.set_add(sid, "t", elem),
            6 => r.set_remove(sid, "t", elem),
            7 => r.touch(sid, 60_000 + u64::from(s.arg)),
            _ => r.end(sid),
        };
        match result {
            Ok(op) => ops.push(op),
            Err(session_ha::Error::SessionEnded) => {}
            Err(e) => panic!("{e}"),
        }
        if s.sync {
            send(&mut rs, s.writer, (s.writer + 1) % 3);
        }
    }
    (rs, ops)
}

/// A deterministic shuffle (xorshift64*), so proptest can shrink the seed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    seed |= 1;
    for i in (1..items.len()).rev() {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let j = (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Delivers `ops` to a fresh replica from a relay, every round the whole lot (each op once
/// or twice) in a new shuffled order and in batches, until it holds them all.
fn receive_all(
    name: &str,
    ops: &[Op],
    all: &VersionVector,
    seed: u64,
    time: &ManualTime,
) -> Replica {
    let mut r = Replica::new(name, 0, ReplicaConfig::default(), Arc::new(time.clone()));
    let relay = ReplicaId::from_region("relay", 0);
    r.add_peer(relay, "relay").unwrap();
    let mut frame_no = 0;
    for round in 0..=ops.len() as u64 {
        if r.version_vector() == all {
            break;
        }
        let mut batch: Vec<Op> = ops.to_vec();
        batch.extend(
            ops.iter()
                .filter(|o| (o.dot.seq ^ seed).is_multiple_of(3))
                .cloned(),
        );
        shuffle(&mut batch, seed.wrapping_add(round));
        let size = 1 + (seed % 7) as usize;
        for chunk in batch.chunks(size) {
            frame_no += 1;
            let frame = Frame {
                sender: relay,
                sender_name: "relay".into(),
                boot: 1,
                to: r.id(),
                to_boot: 0,
                frame_no,
                vv: VersionVector::new(),
                removed: Vec::new(),
                body: FrameBody::Ops(chunk.to_vec()),
            };
            r.receive(&Message::Frame(frame).encode()).unwrap();
        }
    }
    r
}

fn canonical(r: &Replica, ids: &BTreeSet<SessionId>) -> Vec<Vec<u8>> {
    ids.iter()
        .map(|id| {
            r.session_state(id.as_bytes())
                .map(|s| s.canonical_bytes())
                .unwrap_or_default()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_interleaving_converges(script in vec(step(), 1..40), seeds in vec(any::<u64>(), 3)) {
        let time = ManualTime::new(1_000);
        let (mut writers, ops) = write(&script, &time);
        for _ in 0..2 {
            for a in 0..3 {
                for b in 0..3 {
                    if a != b {
                        send(&mut writers, a, b);
                    }
                }
            }
        }
        let all = writers[0].version_vector().clone();
        let ids: BTreeSet<SessionId> = ops.iter().map(|o| o.session.clone()).collect();
        let expect = canonical(&writers[0], &ids);
        for (i, seed) in seeds.iter().enumerate() {
            let r = receive_all(&format!("x{i}"), &ops, &all, *seed, &time);
            prop_assert_eq!(r.version_vector(), &all);
            prop_assert_eq!(r.digests().root(), writers[0].digests().root());
            prop_assert_eq!(canonical(&r, &ids), expect.clone());
        }
        for w in &writers[1..] {
            prop_assert_eq!(w.digests().root(), writers[0].digests().root());
            prop_assert_eq!(canonical(w, &ids), expect.clone());
        }
    }
}
