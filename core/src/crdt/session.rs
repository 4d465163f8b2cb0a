//! The session CRDT: fields (last-writer-wins registers with per-field delete), PN counters,
//! add-wins sets, an expiry deadline (the longest wins) and a sticky end marker. Once ended,
//! a session holds nothing else and no op or merge can bring it back.
//!
//! The canonical encoding (on which converged replicas agree byte for byte) covers only the
//! *live* state: tombstones are left out so that a replica that already collected a
//! tombstone and one that has not yet done so still agree. Layout, all integers little endian, lengths u32:
//! `'F' n (klen key ts replica seq vlen value)*  'C' n (klen key np (replica v)* nn (replica v)*)*
//!  'S' n (klen key ne (elen elem nd (replica seq)*)*)*  'E' (0 | 1 deadline)`.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::view::{Entries, SessionRef, SessionView};
use super::{AwSet, LwwRegister, Merge, Op, OpKind, PnCounter, Stamp};
use crate::causal::Dot;

/// A session's replicated state.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SessionState {
    /// Fields by key (tombstones included until collected).
    pub fields: BTreeMap<Bytes, LwwRegister>,
    /// Counters by key.
    pub counters: BTreeMap<Bytes, PnCounter>,
    /// Sets by key.
    pub sets: BTreeMap<Bytes, AwSet>,
    /// The longest deadline any touch gave, Unix ms; `None` when never touched.
    pub expires_at: Option<u64>,
    /// The touch that gave `expires_at` (the highest dot among equal deadlines); `None` when
    /// never touched or not known (states read from format-1 files).
    pub touched_by: Option<Dot>,
    /// Set once the session ended; the highest end stamp seen.
    pub ended: Option<Stamp>,
}

/// Appends to canonical bytes.
trait Sink {
    fn put(&mut self, bytes: &[u8]);

    fn put_u32(&mut self, v: usize) {
        self.put(&(v as u32).to_le_bytes());
    }

    fn put_u64(&mut self, v: u64) {
        self.put(&v.to_le_bytes());
    }

    fn put_bytes(&mut self, b: &[u8]) {
        self.put_u32(b.len());
        self.put(b);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl SessionState {
    /// Applies one change. Never fails: ops are validated before they are made or accepted.
    pub fn apply(&mut self, op: &Op) {
        let stamp = op.stamp();
        if let OpKind::End = op.kind {
            self.end(stamp);
            return;
        }
        if self.ended.is_some() {
            return;
        }
        match &op.kind {
            OpKind::Put(writes) => {
                for w in writes {
                    let reg = LwwRegister::new(stamp, w.value.clone());
                    match self.fields.get_mut(&w.key) {
                        Some(cur) => cur.merge(&reg),
                        None => {
                            self.fields.insert(w.key.clone(), reg);
                        }
                    }
                }
            }
            OpKind::Counter { key, p, n } => {
                if *p > 0 || *n > 0 {
                    self.counters
                        .entry(key.clone())
                        .or_default()
                        .apply_op(op.dot, *p, *n);
                }
            }
            OpKind::SetAdd { key, elem } => {
                self.sets
                    .entry(key.clone())
                    .or_default()
                    .add(elem.clone(), op.dot);
            }
            // A remove that observed no add removes nothing and leaves no tombstone; an empty
            // set entry would only make this state differ from the same state merged in.
            OpKind::SetRemove { dots, .. } if dots.is_empty() => {}
            OpKind::SetRemove { key, elem, dots } => {
                self.sets
                    .entry(key.clone())
                    .or_default()
                    .remove(elem, dots, op.dot);
            }
            OpKind::Touch { deadline_ms } => self.raise_expiry(*deadline_ms, Some(op.dot)),
            OpKind::End => {}
        }
    }

    /// The longest deadline wins; among equal ones, the highest dot names it.
    fn raise_expiry(&mut self, deadline_ms: u64, by: Option<Dot>) {
        match self.expires_at {
            Some(d) if d > deadline_ms => {}
            Some(d) if d == deadline_ms => self.touched_by = self.touched_by.max(by),
            _ => {
                self.expires_at = Some(deadline_ms);
                self.touched_by = by;
            }
        }
    }

    fn end(&mut self, stamp: Stamp) {
        self.fields.clear();
        self.counters.clear();
        self.sets.clear();
        self.expires_at = None;
        self.touched_by = None;
        self.ended = self.ended.max(Some(stamp));
    }

    /// Every dot the state holds: the ops behind its fields, counters, set adds and
    /// removals, the winning touch and the end (dots not known, from format-1 files, left
    /// out). A replica holding this state has seen each of those ops' effects on it.
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        let fields = self.fields.values().map(|r| r.stamp.dot);
        let counters = self.counters.values().flat_map(|c| c.dots());
        let sets = self.sets.values().flat_map(|s| {
            let adds = s.entries.values().flatten().copied();
            adds.chain(s.removed.iter().flat_map(|(&add, &by)| [add, by]))
        });
        let ended = self.ended.map(|s| s.dot);
        fields
            .chain(counters)
            .chain(sets)
            .chain(self.touched_by)
            .chain(ended)
            .filter(|d| d.seq > 0)
    }

    /// Whether the session has ended.
    pub fn is_ended(&self) -> bool {
        self.ended.is_some()
    }

    /// Whether the session holds live content: a field value, a counter, a set element or a
    /// deadline. A session without any reads, and hashes, as absent (so a replica that never
    /// held it and one that holds it emptied agree).
    pub fn has_content(&self) -> bool {
        !self.is_ended()
            && (self.expires_at.is_some()
                || !self.counters.is_empty()
                || self.fields.values().any(|r| r.value.is_some())
                || self.sets.values().any(|s| !s.entries.is_empty()))
    }

    /// Whether the state holds nothing at all, not even a tombstone: the same as no state.
    pub fn is_void(&self) -> bool {
        !self.is_ended()
            && self.expires_at.is_none()
            && self.fields.is_empty()
            && self.counters.is_empty()
            && self.sets.is_empty()
    }

    /// Whether the session's deadline has passed at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|d| now_ms >= d)
    }

    /// Whether a reader at `now_ms` sees the session (it holds content, is not ended and
    /// has not expired).
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.has_content() && !self.is_expired(now_ms)
    }

    /// [`SessionState::is_live`], reading the clock only for a session that has a deadline.
    pub fn is_live_at(&self, now_ms: impl FnOnce() -> u64) -> bool {
        self.has_content() && self.expires_at.is_none_or(|d| now_ms() < d)
    }

    /// The live content, borrowed in place (see [`SessionRef`]).
    pub fn live(&self) -> SessionRef<'_> {
        SessionRef(self)
    }

    /// The live content.
    pub fn view(&self) -> SessionView {
        let fields = self
            .fields
            .iter()
            .filter_map(|(k, r)| r.value.as_ref().map(|v| (k.clone(), v.clone())));
        let counters = self.counters.iter().map(|(k, c)| (k.clone(), c.value()));
        let sets = self
            .sets
            .iter()
            .filter(|(_, s)| !s.entries.is_empty())
            .map(|(k, s)| (k.clone(), s.elements().cloned().collect()));
        SessionView {
            fields: Entries::from_sorted(fields.collect()),
            counters: Entries::from_sorted(counters.collect()),
            sets: Entries::from_sorted(sets.collect()),
            expires_at_ms: self.expires_at,
        }
    }

    /// Live entries (fields + counters + set elements) and live bytes (keys, values, elements).
    pub fn live_size(&self) -> (usize, usize) {
        let mut entries = 0;
        let mut bytes = 0;
        for (k, r) in &self.fields {
            if let Some(v) = &r.value {
                entries += 1;
                bytes += k.len() + v.len();
            }
        }
        for k in self.counters.keys() {
            entries += 1;
            bytes += k.len() + 8;
        }
        for (k, s) in &self.sets {
            if !s.entries.is_empty() {
                bytes += k.len();
            }
            for e in s.elements() {
                entries += 1;
                bytes += e.len();
            }
        }
        (entries, bytes)
    }

    /// Rough encoded size in bytes, for frame budgets.
    pub fn approx_size(&self) -> usize {
        let fields: usize = self
            .fields
            .iter()
            .map(|(k, r)| k.len() + r.value.as_ref().map_or(0, Bytes::len) + 32)
            .sum();
        let counters: usize = self
            .counters
            .iter()
            .map(|(k, c)| k.len() + 20 * (c.p.len() + c.n.len()))
            .sum();
        let sets: usize = self
            .sets
            .iter()
            .map(|(k, s)| {
                k.len()
                    + s.entries
                        .iter()
                        .map(|(e, d)| e.len() + 20 * d.len())
                        .sum::<usize>()
                    + 40 * s.removed.len()
            })
            .sum();
        24 + fields + counters + sets
    }

    /// Forgets a field tombstone written at `stamp`, if it is still the field's state.
    pub fn collect_field(&mut self, key: &[u8], stamp: Stamp) {
        if self
            .fields
            .get(key)
            .is_some_and(|r| r.is_tombstone() && r.stamp == stamp)
        {
            self.fields.remove(key);
        }
    }

    /// Forgets set removal tombstones.
    pub fn collect_set_removal(&mut self, key: &[u8], dots: &[crate::causal::Dot]) {
        if let Some(set) = self.sets.get_mut(key) {
            set.collect(dots);
            if set.entries.is_empty() && set.removed.is_empty() {
                self.sets.remove(key);
            }
        }
    }

    /// Writes the canonical encoding of the live state (see the module doc). Ended sessions
    /// and sessions without content write nothing: they read, and hash, as absent.
    fn write_canonical(&self, out: &mut Vec<u8>) {
        if !self.has_content() {
            return;
        }
        out.put(b"F");
        out.put_u32(self.fields.values().filter(|r| !r.is_tombstone()).count());
        for (k, r) in &self.fields {
            if let Some(v) = &r.value {
                out.put_bytes(k);
                out.put_u64(r.stamp.ts.0);
                out.put_u64(r.stamp.dot.replica.0);
                out.put_u64(r.stamp.dot.seq);
                out.put_bytes(v);
            }
        }
        out.put(b"C");
        out.put_u32(self.counters.len());
        for (k, c) in &self.counters {
            out.put_bytes(k);
            for side in [&c.p, &c.n] {
                out.put_u32(side.len());
                for (r, v) in side {
                    out.put_u64(r.0);
                    out.put_u64(*v);
                }
            }
        }
        out.put(b"S");
        out.put_u32(self.sets.values().filter(|s| !s.entries.is_empty()).count());
        for (k, s) in self.sets.iter().filter(|(_, s)| !s.entries.is_empty()) {
            out.put_bytes(k);
            out.put_u32(s.entries.len());
            for (e, dots) in &s.entries {
                out.put_bytes(e);
                out.put_u32(dots.len());
                for d in dots {
                    out.put_u64(d.replica.0);
                    out.put_u64(d.seq);
                }
            }
        }
        out.put(b"E");
        match self.expires_at {
            None => out.put(&[0]),
            Some(d) => {
                out.put(&[1]);
                out.put_u64(d);
            }
        }
    }

    /// The canonical encoding of the live state as bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_canonical(&mut out);
        out
    }
}

impl Merge for SessionState {
    fn merge(&mut self, other: &Self) {
        if let Some(stamp) = other.ended {
            self.end(stamp);
            return;
        }
        if self.ended.is_some() {
            return;
        }
        for (k, r) in &other.fields {
            match self.fields.get_mut(k) {
                Some(cur) => cur.merge(r),
                None => {
                    self.fields.insert(k.clone(), r.clone());
                }
            }
        }
        for (k, c) in &other.counters {
            self.counters.entry(k.clone()).or_default().merge(c);
        }
        for (k, s) in &other.sets {
            self.sets.entry(k.clone()).or_default().merge(s);
        }
        // An empty counter or set is the same as none: keep one representation of it.
        self.counters
            .retain(|_, c| !(c.p.is_empty() && c.n.is_empty()));
        self.sets
            .retain(|_, s| !(s.entries.is_empty() && s.removed.is_empty()));
        if let Some(d) = other.expires_at {
            self.raise_expiry(d, other.touched_by);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ReplicaId, Timestamp};
    use crate::crdt::SessionId;

    #[test]
    fn a_remove_that_observed_no_add_leaves_no_trace() {
        let op = Op {
            dot: Dot {
                replica: ReplicaId(1),
                seq: 1,
            },
            ts: Timestamp(1),
            session: SessionId::from("s"),
            kind: OpKind::SetRemove {
                key: Bytes::from_static(b"t"),
                elem: Bytes::from_static(b"e"),
                dots: Vec::new(),
            },
        };
        let mut state = SessionState::default();
        state.apply(&op);
        assert_eq!(state, SessionState::default());
        let mut merged = state.clone();
        merged.merge(&state);
        assert_eq!(merged, state, "merge is idempotent on it");
    }
}
