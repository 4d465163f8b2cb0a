//! The model: every op any replica made (local writes and the ends the engine made for
//! expired sessions), and the oracle that recomputes, from the ops a vector covers, what
//! each session must hold. The oracle is written from the documented semantics, not from
//! the engine's code: last writer wins by `(ts, dot)`, counters sum each origin's latest
//! totals, a set element stays while one of its adds was not removed by an observed
//! remove, the longest touch wins, and an end is final.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use session_ha::crdt::Stamp;
use session_ha::{Dot, Op, OpKind, ReplicaId, SessionId, VersionVector};

/// A PN counter as per-origin totals: `(increments, decrements)`, zero entries left out.
pub type Totals = (BTreeMap<ReplicaId, u64>, BTreeMap<ReplicaId, u64>);

/// What a live session must hold at quiescence (tombstones already collected).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Winning value writes per field (fields whose winner is a delete are absent).
    pub fields: BTreeMap<Bytes, (Stamp, Bytes)>,
    /// Per counter, each origin's latest `(p, n)` totals, zero sides left out.
    pub counters: BTreeMap<Bytes, Totals>,
    /// Per set, each element with the add dots no observed remove took away.
    pub sets: BTreeMap<Bytes, BTreeMap<Bytes, BTreeSet<Dot>>>,
    /// The longest deadline of any touch.
    pub expires_at: Option<u64>,
}

/// Every op made during a run.
#[derive(Debug, Default)]
pub struct Model {
    ops: BTreeMap<Dot, Op>,
    ended: BTreeSet<SessionId>,
    ends: Vec<(Dot, SessionId)>,
    counters: BTreeMap<(ReplicaId, SessionId, Bytes), (u64, u64)>,
}

impl Model {
    /// Records an op made by a replica; an op recorded twice must be identical.
    ///
    /// # Errors
    /// A description when the dot was already used for a different op.
    pub fn record(&mut self, op: &Op) -> Result<(), String> {
        match self.ops.get(&op.dot) {
            Some(old) if old != op => Err(format!("dot {:?} reused: {old:?} then {op:?}", op.dot)),
            Some(_) => Ok(()),
            None => {
                if matches!(op.kind, OpKind::End) {
                    self.ended.insert(op.session.clone());
                    self.ends.push((op.dot, op.session.clone()));
                }
                self.ops.insert(op.dot, op.clone());
                Ok(())
            }
        }
    }

    /// The running totals a counter op of `origin` must carry after adding `delta`.
    pub fn counter_totals(
        &mut self,
        origin: ReplicaId,
        session: &SessionId,
        key: &Bytes,
        delta: i64,
    ) -> (u64, u64) {
        let e = self
            .counters
            .entry((origin, session.clone(), key.clone()))
            .or_default();
        if delta >= 0 {
            e.0 += delta.unsigned_abs();
        } else {
            e.1 += delta.unsigned_abs();
        }
        *e
    }

    /// Every op recorded.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.ops.values()
    }

    /// The ends recorded, as `(dot, session)`, in the order they were made.
    pub fn ends(&self) -> &[(Dot, SessionId)] {
        &self.ends
    }

    /// Whether any replica ended `session`.
    pub fn has_end(&self, session: &SessionId) -> bool {
        self.ended.contains(session)
    }

    /// Sessions any op touched.
    pub fn sessions(&self) -> BTreeSet<SessionId> {
        self.ops.values().map(|op| op.session.clone()).collect()
    }

    /// What every session touched by an op `vv` covers must be at quiescence: `None` for a
    /// session that ended, `Some` for one that must be live.
    pub fn expected(&self, vv: &VersionVector) -> BTreeMap<SessionId, Option<Expected>> {
        let mut out: BTreeMap<SessionId, Option<Expected>> = BTreeMap::new();
        let acked: Vec<&Op> = self.ops.values().filter(|op| vv.contains(op.dot)).collect();
        let ended: BTreeSet<&SessionId> = acked
            .iter()
            .filter(|op| matches!(op.kind, OpKind::End))
            .map(|op| &op.session)
            .collect();
        let mut field_winners: BTreeMap<(SessionId, Bytes), (Stamp, Option<Bytes>)> =
            BTreeMap::new();
        let mut latest_totals: BTreeMap<(SessionId, Bytes, ReplicaId), (u64, u64, u64)> =
            BTreeMap::new();
        let mut removed_adds: BTreeSet<Dot> = BTreeSet::new();
        for op in &acked {
            if let OpKind::SetRemove { dots, .. } = &op.kind {
                removed_adds.extend(dots.iter().copied());
            }
        }
        for op in &acked {
            let slot = out
                .entry(op.session.clone())
                .or_insert_with(|| (!ended.contains(&op.session)).then(Expected::default));
            let Some(exp) = slot else { continue };
            match &op.kind {
                OpKind::Put(writes) => {
                    for w in writes {
                        let key = (op.session.clone(), w.key.clone());
                        let cand = (op.stamp(), w.value.clone());
                        if field_winners.get(&key).is_none_or(|cur| cur.0 < cand.0) {
                            field_winners.insert(key, cand);
                        }
                    }
                }
                OpKind::Counter { key, p, n } => {
                    let k = (op.session.clone(), key.clone(), op.dot.replica);
                    let e = latest_totals.entry(k).or_insert((0, 0, 0));
                    if op.dot.seq > e.0 {
                        *e = (op.dot.seq, *p, *n);
                    }
                }
                OpKind::SetAdd { key, elem } => {
                    if !removed_adds.contains(&op.dot) {
                        exp.sets
                            .entry(key.clone())
                            .or_default()
                            .entry(elem.clone())
                            .or_default()
                            .insert(op.dot);
                    }
                }
                OpKind::SetRemove { .. } | OpKind::End => {}
                OpKind::Touch { deadline_ms } => {
                    exp.expires_at = exp.expires_at.max(Some(*deadline_ms));
                }
            }
        }
        for ((session, key), (stamp, value)) in field_winners {
            if let (Some(Some(exp)), Some(v)) = (out.get_mut(&session), value) {
                exp.fields.insert(key, (stamp, v));
            }
        }
        for ((session, key, origin), (_, p, n)) in latest_totals {
            if let Some(Some(exp)) = out.get_mut(&session) {
                if p > 0 || n > 0 {
                    let c = exp.counters.entry(key).or_default();
                    if p > 0 {
                        c.0.insert(origin, p);
                    }
                    if n > 0 {
                        c.1.insert(origin, n);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_ha::crdt::FieldWrite;
    use session_ha::Timestamp;

    const A: ReplicaId = ReplicaId(1);
    const B: ReplicaId = ReplicaId(2);

    fn op(replica: ReplicaId, seq: u64, ts: u64, kind: OpKind) -> Op {
        Op {
            dot: Dot { replica, seq },
            ts: Timestamp(ts),
            session: SessionId::from("s"),
            kind,
        }
    }

    fn put(key: &str, value: Option<&str>) -> OpKind {
        OpKind::Put(vec![FieldWrite {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        }])
    }

    fn model(ops: &[Op]) -> Model {
        let mut m = Model::default();
        for o in ops {
            m.record(o).unwrap();
        }
        m
    }

    fn vv(a: u64, b: u64) -> VersionVector {
        [(A, a), (B, b)].into_iter().collect()
    }

    fn live(m: &Model, v: &VersionVector) -> Expected {
        m.expected(v)
            .remove(&SessionId::from("s"))
            .unwrap()
            .unwrap()
    }

    #[test]
    fn the_highest_stamp_wins_and_a_winning_delete_leaves_nothing() {
        let m = model(&[
            op(A, 1, 10, put("k", Some("a"))),
            op(B, 1, 20, put("k", Some("b"))),
            op(A, 2, 30, put("gone", Some("x"))),
            op(B, 2, 40, put("gone", None)),
        ]);
        let e = live(&m, &vv(2, 2));
        assert_eq!(e.fields.len(), 1);
        assert_eq!(e.fields[&Bytes::from_static(b"k")].1, "b");
        // Without b's ops, a's values stand.
        let e = live(&m, &vv(2, 0));
        assert_eq!(e.fields[&Bytes::from_static(b"k")].1, "a");
        assert_eq!(e.fields[&Bytes::from_static(b"gone")].1, "x");
    }

    #[test]
    fn counters_sum_each_origins_latest_acknowledged_totals() {
        let key = Bytes::from_static(b"c");
        let c = |p, n| OpKind::Counter {
            key: key.clone(),
            p,
            n,
        };
        let m = model(&[
            op(A, 1, 1, c(3, 0)),
            op(A, 2, 2, c(3, 5)),
            op(B, 1, 3, c(7, 0)),
        ]);
        let e = live(&m, &vv(1, 1));
        assert_eq!(e.counters[&key], ([(A, 3), (B, 7)].into(), BTreeMap::new()));
        let e = live(&m, &vv(2, 1));
        assert_eq!(e.counters[&key].1, [(A, 5)].into());
    }

    #[test]
    fn an_add_survives_unless_an_acknowledged_remove_observed_it() {
        let (key, elem) = (Bytes::from_static(b"t"), Bytes::from_static(b"e"));
        let add = OpKind::SetAdd {
            key: key.clone(),
            elem: elem.clone(),
        };
        let a1 = Dot { replica: A, seq: 1 };
        let remove = OpKind::SetRemove {
            key: key.clone(),
            elem: elem.clone(),
            dots: vec![a1],
        };
        let m = model(&[
            op(A, 1, 1, add.clone()),
            op(B, 1, 2, remove),
            op(A, 2, 3, add),
        ]);
        let e = live(&m, &vv(2, 1));
        let a2 = Dot { replica: A, seq: 2 };
        assert_eq!(e.sets[&key][&elem], [a2].into(), "the concurrent add wins");
        let e = live(&m, &vv(2, 0));
        assert_eq!(e.sets[&key][&elem], [a1, a2].into());
    }

    #[test]
    fn an_acknowledged_end_is_final_and_the_longest_touch_wins() {
        let m = model(&[
            op(A, 1, 1, OpKind::Touch { deadline_ms: 50 }),
            op(B, 1, 2, OpKind::Touch { deadline_ms: 90 }),
            op(A, 2, 3, OpKind::End),
            op(B, 2, 4, put("k", Some("late"))),
        ]);
        assert_eq!(live(&m, &vv(1, 1)).expires_at, Some(90));
        assert_eq!(m.expected(&vv(2, 2))[&SessionId::from("s")], None);
    }
}
