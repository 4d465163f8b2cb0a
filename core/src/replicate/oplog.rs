//! The bounded in-memory op log: recent ops by origin and seq, kept so that what a peer
//! lacks can be sent to it (forwarded, whatever the origin). When the log is full the oldest
//! ops are evicted; below an origin's *floor* the log holds nothing, and a peer that needs
//! ops from there gets a state transfer instead.

use std::collections::{BTreeMap, VecDeque};

/// One origin's ops, sorted by seq. Ops almost always arrive in seq order, so this is a
/// deque appended at the back and evicted at the front; an op that arrives out of order is
/// inserted in place.
type Slot = VecDeque<(u64, Entry)>;

use crate::causal::{Dot, VersionVector};
use crate::clock::{ReplicaId, Timestamp};
use crate::crdt::Op;

#[derive(Debug)]
struct Entry {
    op: Op,
    size: usize,
}

/// Recent ops, bounded by count and bytes.
#[derive(Debug)]
pub(crate) struct OpLog {
    by_origin: BTreeMap<ReplicaId, Slot>,
    /// Insertion order; may hold dots already evicted with an older one (skipped on pop).
    order: VecDeque<Dot>,
    count: usize,
    floor: BTreeMap<ReplicaId, (u64, Timestamp)>,
    bytes: usize,
    max_ops: usize,
    max_bytes: usize,
}

impl OpLog {
    pub(crate) fn new(max_ops: usize, max_bytes: usize) -> OpLog {
        OpLog {
            by_origin: BTreeMap::new(),
            order: VecDeque::new(),
            count: 0,
            floor: BTreeMap::new(),
            bytes: 0,
            max_ops: max_ops.max(1),
            max_bytes,
        }
    }

    /// Number of ops held.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Bytes held (approximate encoded size).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Adds an op (ignored when at or below its origin's floor).
    pub(crate) fn push(&mut self, op: &Op) {
        let origin = op.dot.replica;
        if op.dot.seq <= self.floor(origin) {
            return;
        }
        let size = op.approx_size();
        let slot = self.by_origin.entry(origin).or_default();
        let seq = op.dot.seq;
        let entry = Entry {
            op: op.clone(),
            size,
        };
        match slot.back() {
            Some((last, _)) if *last >= seq => match find_index(slot, seq) {
                Ok(_) => return,
                Err(i) => slot.insert(i, (seq, entry)),
            },
            _ => slot.push_back((seq, entry)),
        }
        self.order.push_back(op.dot);
        self.count += 1;
        self.bytes += size;
        while self.count > self.max_ops || (self.bytes > self.max_bytes && self.count > 1) {
            let Some(dot) = self.order.pop_front() else {
                break;
            };
            // Each origin holds a suffix of its ops: `dot` is still held exactly when the
            // origin's oldest op is at or below it (a front check, no search).
            let held = self
                .by_origin
                .get(&dot.replica)
                .and_then(|s| s.front())
                .is_some_and(|(seq, _)| *seq <= dot.seq);
            if held {
                self.evict_through(dot);
            }
        }
        // Dots evicted along with an older one stay in `order`; compact now and then so that
        // `order` stays within a constant factor of the ops held (amortised O(1) per push).
        if self.order.len() > 2 * self.count + 64 {
            let by_origin = &self.by_origin;
            self.order.retain(|d| {
                by_origin
                    .get(&d.replica)
                    .is_some_and(|s| find_index(s, d.seq).is_ok())
            });
        }
    }

    /// Evicts every op of `dot.replica` up to `dot.seq`: the log keeps, per origin, only a
    /// suffix, so "holds everything above the floor" stays true.
    fn evict_through(&mut self, dot: Dot) {
        let Some(slot) = self.by_origin.get_mut(&dot.replica) else {
            return;
        };
        let mut ts = None;
        while slot.front().is_some_and(|(s, _)| *s <= dot.seq) {
            let Some((_, e)) = slot.pop_front() else {
                break;
            };
            self.bytes -= e.size;
            self.count -= 1;
            ts = Some(e.op.ts);
        }
        if slot.is_empty() {
            self.by_origin.remove(&dot.replica);
        }
        if let Some(ts) = ts {
            let f = self.floor.entry(dot.replica).or_insert((0, ts));
            if dot.seq >= f.0 {
                *f = (dot.seq, ts);
            }
        }
    }

    /// Highest seq of `origin` the log can no longer supply.
    pub(crate) fn floor(&self, origin: ReplicaId) -> u64 {
        self.floor.get(&origin).map_or(0, |f| f.0)
    }

    /// Timestamp of the newest op evicted from `origin` (a lower bound on the age of anything
    /// below the floor).
    pub(crate) fn floor_ts(&self, origin: ReplicaId) -> Option<Timestamp> {
        self.floor.get(&origin).map(|f| f.1)
    }

    /// Declares everything `vv` covers as not in the log (state arrived without its ops).
    pub(crate) fn raise_floor(&mut self, vv: &VersionVector, ts: Timestamp) {
        for (origin, seq) in vv.iter() {
            self.raise_floor_to(origin, seq, ts);
        }
    }

    /// Declares `origin`'s ops up to `seq` as not in the log (an effect arrived without its
    /// op); the log keeps a suffix per origin, so the ops held below go too.
    pub(crate) fn raise_floor_to(&mut self, origin: ReplicaId, seq: u64, ts: Timestamp) {
        if seq <= self.floor(origin) {
            return;
        }
        let held_below = self
            .by_origin
            .get(&origin)
            .and_then(|s| s.front())
            .map(|(k, _)| *k);
        if held_below.is_some_and(|k| k <= seq) {
            self.evict_through(Dot {
                replica: origin,
                seq,
            });
        }
        if seq > self.floor(origin) {
            self.floor.insert(origin, (seq, ts));
        }
    }

    /// Ops of `origin` with seq >= `from`, in seq order.
    pub(crate) fn from(&self, origin: ReplicaId, from: u64) -> impl Iterator<Item = (&Op, usize)> {
        self.by_origin.get(&origin).into_iter().flat_map(move |s| {
            let start = s.partition_point(|(seq, _)| *seq < from);
            s.range(start..).map(|(_, e)| (&e.op, e.size))
        })
    }

    /// The op `dot`, when held.
    pub(crate) fn get(&self, dot: Dot) -> Option<&Op> {
        let slot = self.by_origin.get(&dot.replica)?;
        find_index(slot, dot.seq).ok().map(|i| &slot[i].1.op)
    }
}

/// Index of `seq` in `slot`, or where it would go.
fn find_index(slot: &Slot, seq: u64) -> Result<usize, usize> {
    slot.binary_search_by_key(&seq, |(s, _)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crdt::{OpKind, SessionId};

    fn op(r: u64, seq: u64) -> Op {
        Op {
            dot: Dot {
                replica: ReplicaId(r),
                seq,
            },
            ts: Timestamp::new(seq, 0),
            session: SessionId::from("s"),
            kind: OpKind::End,
        }
    }

    #[test]
    fn eviction_keeps_a_suffix_per_origin_and_raises_the_floor() {
        let mut log = OpLog::new(3, usize::MAX);
        for seq in 1..=5 {
            log.push(&op(1, seq));
        }
        assert_eq!(log.len(), 3);
        assert_eq!(log.floor(ReplicaId(1)), 2);
        let held: Vec<u64> = log.from(ReplicaId(1), 0).map(|(o, _)| o.dot.seq).collect();
        assert_eq!(held, vec![3, 4, 5]);
        log.push(&op(1, 2));
        assert_eq!(log.len(), 3, "ops below the floor are not taken back");
    }

    #[test]
    fn out_of_order_eviction_never_leaves_a_hole() {
        let mut log = OpLog::new(2, usize::MAX);
        log.push(&op(1, 3));
        log.push(&op(1, 1));
        log.push(&op(1, 2));
        // evicting (1,3) first must take (1,1) and (1,2) with it
        assert_eq!(log.floor(ReplicaId(1)), 3);
        assert_eq!(log.len(), 0);
    }
}
