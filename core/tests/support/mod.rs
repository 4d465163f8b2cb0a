//! Proptest strategies shared by the property tests: histories of ops on one session made
//! by three replicas as real replicas make them (contiguous seqs, running counter totals,
//! removes that name the adds they observed, ends), and session states built from them the
//! way replicas come to hold them: any subset of a history, applied in any order, with or
//! without the tombstones collected.

#![allow(dead_code)] // each test file uses part of this

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use session_ha::crdt::FieldWrite;
use session_ha::{Dot, Op, OpKind, ReplicaId, SessionId, SessionState, Timestamp};

/// What one op of a history does, before dots and totals are filled in.
#[derive(Debug, Clone)]
enum Kind {
    Put { key: u8, value: Option<u8> },
    Counter { key: u8, delta: i8 },
    Add { key: u8, elem: u8 },
    Remove { key: u8, elem: u8, observed: u8 },
    Touch { deadline: u16 },
    End,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => (0..3u8, proptest::option::of(0..4u8)).prop_map(|(key, value)| Kind::Put { key, value }),
        2 => (0..2u8, -5..6i8).prop_map(|(key, delta)| Kind::Counter { key, delta }),
        3 => (0..2u8, 0..3u8).prop_map(|(key, elem)| Kind::Add { key, elem }),
        2 => (0..2u8, 0..3u8, any::<u8>())
            .prop_map(|(key, elem, observed)| Kind::Remove { key, elem, observed }),
        1 => (0..500u16).prop_map(|deadline| Kind::Touch { deadline }),
        1 => Just(Kind::End),
    ]
}

fn bytes(prefix: &str, i: u8) -> Bytes {
    Bytes::from(format!("{prefix}{i}"))
}

/// Fills in dots, timestamps, counter totals and observed adds.
fn build(session: &SessionId, items: Vec<(u64, u64, Kind)>) -> Vec<Op> {
    let mut seqs: BTreeMap<u64, u64> = BTreeMap::new();
    let mut totals: BTreeMap<(u64, u8), (u64, u64)> = BTreeMap::new();
    let mut adds: Vec<(u8, u8, Dot)> = Vec::new();
    let mut ts = 1;
    let mut out = Vec::new();
    for (r, bump, k) in items {
        let seq = seqs.entry(r).or_insert(0);
        *seq += 1;
        // Timestamps may tie across replicas; the dot breaks the tie.
        ts += bump;
        let dot = Dot {
            replica: ReplicaId(r),
            seq: *seq,
        };
        let kind = match k {
            Kind::Put { key, value } => OpKind::Put(vec![FieldWrite {
                key: bytes("k", key),
                value: value.map(|v| bytes("v", v)),
            }]),
            Kind::Counter { key, delta } => {
                let t = totals.entry((r, key)).or_default();
                if delta >= 0 {
                    t.0 += delta.unsigned_abs() as u64;
                } else {
                    t.1 += delta.unsigned_abs() as u64;
                }
                OpKind::Counter {
                    key: bytes("c", key),
                    p: t.0,
                    n: t.1,
                }
            }
            Kind::Add { key, elem } => {
                adds.push((key, elem, dot));
                OpKind::SetAdd {
                    key: bytes("t", key),
                    elem: bytes("e", elem),
                }
            }
            Kind::Remove {
                key,
                elem,
                observed,
            } => {
                // The remover observed some of the earlier adds of the element.
                let dots = adds
                    .iter()
                    .enumerate()
                    .filter(|(i, (k, e, _))| {
                        *k == key && *e == elem && observed >> (i % 8) & 1 == 1
                    })
                    .map(|(_, (_, _, d))| *d)
                    .collect();
                OpKind::SetRemove {
                    key: bytes("t", key),
                    elem: bytes("e", elem),
                    dots,
                }
            }
            Kind::Touch { deadline } => OpKind::Touch {
                deadline_ms: 10_000 + u64::from(deadline),
            },
            Kind::End => OpKind::End,
        };
        out.push(Op {
            dot,
            ts: Timestamp(ts),
            session: session.clone(),
            kind,
        });
    }
    out
}

/// A history of up to `max` ops on `session`, in the order they were made.
pub fn history_of(session: SessionId, max: usize) -> impl Strategy<Value = Vec<Op>> {
    vec((1u64..=3, 0u64..3, kind()), 1..max).prop_map(move |items| build(&session, items))
}

/// A history of up to `max` ops on session `s`.
pub fn history(max: usize) -> impl Strategy<Value = Vec<Op>> {
    history_of(SessionId::from("s"), max)
}

/// The state a replica holds after applying the ops of `history` picked by `mask`, in
/// `order`, then (if `collect`) forgetting its tombstones as stable collection would.
pub fn state_of(history: &[Op], mask: &[bool], order: &[usize], collect: bool) -> SessionState {
    let mut state = SessionState::default();
    for &i in order {
        if mask[i] {
            state.apply(&history[i]);
        }
    }
    if collect {
        let dead: Vec<_> = state
            .fields
            .iter()
            .filter(|(_, r)| r.is_tombstone())
            .map(|(k, r)| (k.clone(), r.stamp))
            .collect();
        for (k, stamp) in dead {
            state.collect_field(&k, stamp);
        }
        let removed: Vec<_> = state
            .sets
            .iter()
            .map(|(k, s)| (k.clone(), s.removed.keys().copied().collect::<Vec<_>>()))
            .collect();
        for (k, dots) in removed {
            state.collect_set_removal(&k, &dots);
        }
    }
    state
}

/// `n` states of one session, each what some replica may hold of one common history.
pub fn states(n: usize) -> impl Strategy<Value = Vec<SessionState>> {
    history(24).prop_flat_map(move |h| {
        let len = h.len();
        let one = (
            vec(any::<bool>(), len),
            Just((0..len).collect::<Vec<usize>>()).prop_shuffle(),
            proptest::bool::weighted(0.3),
        );
        vec(one, n).prop_map(move |specs| {
            specs
                .into_iter()
                .map(|(mask, order, collect)| state_of(&h, &mask, &order, collect))
                .collect()
        })
    })
}
