//! Tombstone collection by causal stability.
//!
//! A tombstone (an ended session, a deleted field, a set removal) made by op `d` may be
//! forgotten once no op that could contradict it can still arrive. Two conditions, checked
//! per *epoch* so that continuous writes never starve collection:
//! 1. every member has acknowledged `d` (`d` is covered by `S`, the pointwise minimum of the
//!    members' acknowledged vectors and our own);
//! 2. we hold every op any member had when it acknowledged: our vector dominates `M`, the
//!    pointwise maximum of those acknowledged vectors. An op concurrent with `d` was made by a
//!    member before it saw `d`, so it is below that member's acknowledgement of `d`.
//!
//! Each epoch records `(S, M)`; when our vector dominates an epoch's `M`, its `S` becomes
//! the *stable frontier* and tombstones at or below it are collected. A replica removed from
//! membership keeps blocking (with its last acknowledgement) until every member has confirmed
//! the removal, because until then a member may still accept its frames. Once it is
//! confirmed, the epochs recorded so far are dropped: their `M` may include ops only the
//! removed replica held, which would block collection for good.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;

use crate::causal::{Dot, VersionVector};
use crate::clock::ReplicaId;
use crate::crdt::{Op, OpKind, SessionId, SessionState, Stamp};

/// What a tombstone-making op left behind.
#[derive(Debug, Clone)]
pub(crate) enum Tomb {
    /// The session ended.
    End,
    /// A field was deleted by the write with this stamp.
    Field { key: Bytes, stamp: Stamp },
    /// These add dots of a set were removed.
    SetRemove { key: Bytes, adds: Vec<Dot> },
}

/// Tombstones by the dot of the op that made them.
#[derive(Debug, Default)]
pub(crate) struct TombstoneIndex {
    by_dot: BTreeMap<Dot, (SessionId, Vec<Tomb>)>,
}

impl TombstoneIndex {
    /// Indexes the tombstones `op` makes, if any.
    pub(crate) fn record(&mut self, op: &Op) {
        let tombs: Vec<Tomb> = match &op.kind {
            OpKind::End => vec![Tomb::End],
            OpKind::Put(writes) => writes
                .iter()
                .filter(|w| w.value.is_none())
                .map(|w| Tomb::Field {
                    key: w.key.clone(),
                    stamp: op.stamp(),
                })
                .collect(),
            OpKind::SetRemove { key, dots, .. } if !dots.is_empty() => {
                vec![Tomb::SetRemove {
                    key: key.clone(),
                    adds: dots.clone(),
                }]
            }
            _ => Vec::new(),
        };
        if !tombs.is_empty() {
            self.by_dot.insert(op.dot, (op.session.clone(), tombs));
        }
    }

    /// Indexes the tombstones in a full state learnt without its ops (a transfer or repair),
    /// each under the dot of the op that made it, merged with what that dot already indexes:
    /// a state may carry only part of what one op left (another replica collected the rest
    /// under an overlapping remove), and a later state the rest.
    pub(crate) fn record_state(&mut self, session: &SessionId, state: &SessionState) {
        let mut add = |dot: Dot, tomb: Tomb| {
            let entry = self
                .by_dot
                .entry(dot)
                .or_insert_with(|| (session.clone(), Vec::new()));
            merge_tomb(&mut entry.1, tomb);
        };
        if let Some(stamp) = state.ended {
            add(stamp.dot, Tomb::End);
        }
        for (key, reg) in &state.fields {
            if reg.is_tombstone() {
                add(
                    reg.stamp.dot,
                    Tomb::Field {
                        key: key.clone(),
                        stamp: reg.stamp,
                    },
                );
            }
        }
        for (key, set) in &state.sets {
            let mut by_remove: BTreeMap<Dot, Vec<Dot>> = BTreeMap::new();
            for (&added, &removed_by) in &set.removed {
                by_remove.entry(removed_by).or_default().push(added);
            }
            for (removed_by, adds) in by_remove {
                add(
                    removed_by,
                    Tomb::SetRemove {
                        key: key.clone(),
                        adds,
                    },
                );
            }
        }
    }

    /// Puts back a tombstone that could not be collected yet.
    pub(crate) fn restore(&mut self, dot: Dot, session: SessionId, tomb: Tomb) {
        self.by_dot
            .entry(dot)
            .or_insert_with(|| (session, Vec::new()))
            .1
            .push(tomb);
    }

    /// The oldest pending tombstone-making dot of each origin.
    pub(crate) fn oldest_per_origin(&self) -> Vec<Dot> {
        let mut out = Vec::new();
        let mut next = self.by_dot.keys().next().copied();
        while let Some(d) = next {
            out.push(d);
            let past = Dot {
                replica: d.replica,
                seq: u64::MAX,
            };
            next = self
                .by_dot
                .range((std::ops::Bound::Excluded(past), std::ops::Bound::Unbounded))
                .next()
                .map(|(d, _)| *d);
        }
        out
    }

    /// Drops the entries of `origin` whose tombstone `sessions` no longer hold (a merge
    /// took a newer write, or a copy the tombstone had already left). Such an entry would
    /// go when its dot became stable; an origin retired with ops lost everywhere has dots
    /// that never will, and their entries would count as pending for good.
    pub(crate) fn prune_gone(&mut self, origin: ReplicaId, sessions: &super::sessions::SessionMap) {
        let lo = Dot {
            replica: origin,
            seq: 0,
        };
        let hi = Dot {
            replica: origin,
            seq: u64::MAX,
        };
        let gone: Vec<Dot> = self
            .by_dot
            .range(lo..=hi)
            .filter(|(dot, (sid, tombs))| {
                let state = sessions.get(sid);
                !tombs
                    .iter()
                    .any(|t| state.is_some_and(|s| holds(s, **dot, t)))
            })
            .map(|(d, _)| *d)
            .collect();
        for d in gone {
            self.by_dot.remove(&d);
        }
    }

    /// Number of tombstone-making ops not yet collected.
    pub(crate) fn len(&self) -> usize {
        self.by_dot.len()
    }

    /// The dots of the tombstone-making ops not yet collected, in order.
    pub(crate) fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.by_dot.keys().copied()
    }

    /// Removes and returns every entry at or below `frontier`.
    pub(crate) fn take_stable(&mut self, frontier: &VersionVector) -> Vec<(Dot, SessionId, Tomb)> {
        let mut out = Vec::new();
        for (origin, top) in frontier.iter() {
            let lo = Dot {
                replica: origin,
                seq: 0,
            };
            let hi = Dot {
                replica: origin,
                seq: top,
            };
            let dots: Vec<Dot> = self.by_dot.range(lo..=hi).map(|(d, _)| *d).collect();
            for d in dots {
                if let Some((sid, tombs)) = self.by_dot.remove(&d) {
                    out.extend(tombs.into_iter().map(|t| (d, sid.clone(), t)));
                }
            }
        }
        out
    }
}

/// Whether `state` still holds the tombstone `tomb` that op `dot` left.
fn holds(state: &SessionState, dot: Dot, tomb: &Tomb) -> bool {
    match tomb {
        Tomb::End => state.ended.is_some_and(|e| e.dot == dot),
        Tomb::Field { key, stamp } => state
            .fields
            .get(key)
            .is_some_and(|r| r.is_tombstone() && r.stamp == *stamp),
        Tomb::SetRemove { key, adds } => state
            .sets
            .get(key)
            .is_some_and(|set| adds.iter().any(|a| set.removed.get(a) == Some(&dot))),
    }
}

/// Adds `tomb` to the tombstones one op left, joining the removed adds of the same set.
fn merge_tomb(tombs: &mut Vec<Tomb>, tomb: Tomb) {
    match tomb {
        Tomb::SetRemove { key, adds } => {
            let same_set = tombs.iter_mut().find_map(|t| match t {
                Tomb::SetRemove { key: k, adds } if *k == key => Some(adds),
                _ => None,
            });
            match same_set {
                Some(have) => {
                    for d in adds {
                        if !have.contains(&d) {
                            have.push(d);
                        }
                    }
                }
                None => tombs.push(Tomb::SetRemove { key, adds }),
            }
        }
        Tomb::Field { key, stamp } => {
            if !tombs
                .iter()
                .any(|t| matches!(t, Tomb::Field { key: k, .. } if *k == key))
            {
                tombs.push(Tomb::Field { key, stamp });
            }
        }
        Tomb::End => {
            if !tombs.iter().any(|t| matches!(t, Tomb::End)) {
                tombs.push(Tomb::End);
            }
        }
    }
}

/// Epochs of `(S, M)` waiting for our vector to dominate `M`.
#[derive(Debug, Default)]
pub(crate) struct Stability {
    epochs: VecDeque<(VersionVector, VersionVector)>,
    frontier: VersionVector,
}

const MAX_EPOCHS: usize = 16;

impl Stability {
    /// The stable frontier: tombstones at or below it may be collected.
    pub(crate) fn frontier(&self) -> &VersionVector {
        &self.frontier
    }

    /// Drops the epochs waiting to become stable (the frontier stays). Called when
    /// membership shrinks: an epoch whose `M` came from a removed replica's acknowledgement
    /// may cover ops that only it held, which no survivor will ever receive, and epochs
    /// become stable in order. New epochs are recorded under the new membership.
    pub(crate) fn forget_epochs(&mut self) {
        self.epochs.clear();
    }

    /// Records this moment's `(s, m)` and advances the frontier as far as `own` allows.
    pub(crate) fn advance(&mut self, own: &VersionVector, s: VersionVector, m: VersionVector) {
        let new_epoch = self
            .epochs
            .back()
            .is_none_or(|(bs, bm)| *bs != s || *bm != m);
        // When the queue is full the new moment is skipped, not an old one dropped: an old
        // epoch's M is fixed, so our vector reaches it and collection keeps making progress
        // however fast writes arrive.
        if new_epoch && self.epochs.len() < MAX_EPOCHS && !self.frontier.dominates(&s) {
            self.epochs.push_back((s, m));
        }
        while let Some((s, m)) = self.epochs.front() {
            if !own.dominates(m) {
                break;
            }
            self.frontier = s.clone();
            self.epochs.pop_front();
        }
    }
}
