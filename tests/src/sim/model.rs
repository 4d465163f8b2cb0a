//! The model: every op any replica made (local writes and the ends the engine made for
//! expired sessions) with what the run knows about each (seen beyond its origin,
//! acknowledged to the client, legitimately lost), the values of refused writes that no one
//! may ever see (I5), and the oracle that recomputes, from the ops a vector covers, what
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

/// What the run knows about one op.
#[derive(Debug, Clone)]
pub struct OpRecord {
    /// The op.
    pub op: Op,
    /// Someone other than its origin's memory may have it: a client was told it is durable,
    /// or a frame carried it (or the state it changed). Its loss at the origin then matters.
    pub seen: bool,
    /// A frame carried it (or the state of its session after it): a peer may hold it.
    pub shipped: bool,
    /// The client was told it is durable.
    pub acked: bool,
    /// Its origin lost it through something that may lose acknowledged data (damage at
    /// rest, a power cut under `Never`, a restore): it may be missing at the end.
    pub lost_ok: bool,
}

/// Every op made during a run, and the values no one may ever see.
#[derive(Debug, Default)]
pub struct Model {
    ops: BTreeMap<Dot, OpRecord>,
    by_session: BTreeMap<SessionId, BTreeSet<Dot>>,
    ends: BTreeMap<Dot, SessionId>,
    invisible: BTreeMap<Bytes, String>,
}

impl Model {
    /// Records an op made by a replica; an op recorded twice must be identical.
    ///
    /// # Errors
    /// A description when the dot was already used for a different op (I2).
    pub fn record(&mut self, op: &Op) -> Result<(), String> {
        match self.ops.get(&op.dot) {
            Some(old) if old.op != *op => Err(format!(
                "dot {:?} names two ops: {:?} then {op:?}",
                op.dot, old.op
            )),
            Some(_) => Ok(()),
            None => {
                if matches!(op.kind, OpKind::End) {
                    self.ends.insert(op.dot, op.session.clone());
                }
                self.by_session
                    .entry(op.session.clone())
                    .or_default()
                    .insert(op.dot);
                let record = OpRecord {
                    op: op.clone(),
                    seen: false,
                    shipped: false,
                    acked: false,
                    lost_ok: false,
                };
                self.ops.insert(op.dot, record);
                Ok(())
            }
        }
    }

    /// Forgets an op a crash took before anyone saw it (its dot may be used again).
    pub fn forget(&mut self, dot: Dot) {
        if let Some(r) = self.ops.remove(&dot) {
            self.ends.remove(&dot);
            if let Some(dots) = self.by_session.get_mut(&r.op.session) {
                dots.remove(&dot);
            }
        }
    }

    /// The record of `dot`, if any.
    pub fn get(&self, dot: Dot) -> Option<&OpRecord> {
        self.ops.get(&dot)
    }

    /// The record of `dot`, to update.
    pub fn get_mut(&mut self, dot: Dot) -> Option<&mut OpRecord> {
        self.ops.get_mut(&dot)
    }

    /// Marks `dot` as seen beyond its origin.
    pub fn mark_seen(&mut self, dot: Dot) {
        if let Some(r) = self.ops.get_mut(&dot) {
            r.seen = true;
        }
    }

    /// Marks `dot` as carried by a frame.
    pub fn mark_shipped(&mut self, dot: Dot) {
        if let Some(r) = self.ops.get_mut(&dot) {
            r.seen = true;
            r.shipped = true;
        }
    }

    /// Marks every op on `session` that `vv` covers as seen (a frame carried its state).
    pub fn mark_session_seen(&mut self, session: &SessionId, vv: &VersionVector) {
        let Some(dots) = self.by_session.get(session) else {
            return;
        };
        for dot in dots {
            if vv.contains(*dot) {
                if let Some(r) = self.ops.get_mut(dot) {
                    r.seen = true;
                    r.shipped = true;
                }
            }
        }
    }

    /// Every op recorded.
    pub fn ops(&self) -> impl Iterator<Item = &Op> {
        self.ops.values().map(|r| &r.op)
    }

    /// Every op recorded, with what the run knows about it.
    pub fn records(&self) -> impl Iterator<Item = &OpRecord> {
        self.ops.values()
    }

    /// The ops of `origin` with a sequence number above `seq`.
    pub fn ops_of_after(&self, origin: ReplicaId, seq: u64) -> Vec<Dot> {
        let from = Dot {
            replica: origin,
            seq: seq.saturating_add(1),
        };
        self.ops
            .range(from..)
            .take_while(|(d, _)| d.replica == origin)
            .map(|(d, _)| *d)
            .collect()
    }

    /// Records that the op `dot` ended `session`, without the op (the self-tests tamper
    /// with the model this way).
    pub fn note_end(&mut self, dot: Dot, session: SessionId) {
        self.ends.insert(dot, session);
    }

    /// The ends recorded, by dot.
    pub fn ends(&self) -> impl Iterator<Item = (&Dot, &SessionId)> {
        self.ends.iter()
    }

    /// Whether any replica ended `session`.
    pub fn has_end(&self, session: &SessionId) -> bool {
        self.ends.values().any(|s| s == session)
    }

    /// Sessions any op touched.
    pub fn sessions(&self) -> BTreeSet<SessionId> {
        self.by_session
            .iter()
            .filter(|(_, d)| !d.is_empty())
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// Declares that `value` must never be seen (I5), and why.
    pub fn make_invisible(&mut self, value: Bytes, why: String) {
        self.invisible.insert(value, why);
    }

    /// `value` may be seen again (its write turned out to have reached the log).
    pub fn make_visible(&mut self, value: &Bytes) {
        self.invisible.remove(value);
    }

    /// Why `value` must not be seen, if it must not.
    pub fn why_invisible(&self, value: &[u8]) -> Option<&str> {
        self.invisible.get(value).map(String::as_str)
    }

    /// Whether any value must stay invisible.
    pub fn has_invisible(&self) -> bool {
        !self.invisible.is_empty()
    }

    /// What every session touched by an op `vv` covers must be at quiescence: `None` for a
    /// session that ended, `Some` for one that must be live.
    pub fn expected(&self, vv: &VersionVector) -> BTreeMap<SessionId, Option<Expected>> {
        self.expected_with(vv, &BTreeSet::new(), &BTreeSet::new())
    }

    /// [`Model::expected`] for a replica that also holds the effects of the ops `extra`
    /// names, which its vector does not cover (state a repair brought from a region that
    /// was then lost), and whose vector covers the ops `unheld` names without holding them
    /// (a retired origin given up over a gap).
    pub fn expected_with(
        &self,
        vv: &VersionVector,
        extra: &BTreeSet<Dot>,
        unheld: &BTreeSet<Dot>,
    ) -> BTreeMap<SessionId, Option<Expected>> {
        let mut out: BTreeMap<SessionId, Option<Expected>> = BTreeMap::new();
        let covered = |d: &Dot| vv.contains(*d) && !unheld.contains(d);
        let acked: Vec<&Op> = self
            .ops()
            .filter(|op| covered(&op.dot) || extra.contains(&op.dot))
            .collect();
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
