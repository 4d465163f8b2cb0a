//! The causal merge of two session states: a join that also knows what each side has *seen*.
//!
//! A plain join keeps everything either side holds, so a state older than a removal that the
//! other side has already collected brings the removed entries back. Every part of a session
//! carries the dot of the op that made it (a field's register, a set add, a replica's counter
//! totals, the winning touch, the end), and each side comes with its causal context, so:
//!
//! ```text
//!  entry in both                      join (last writer wins, max totals, union of adds)
//!  entry only here,  dot seen there   removed there: dropped here
//!  entry only there, dot seen here    removed here: not taken back
//!  entry on one side, dot unseen      kept: the other side never heard of it
//!  session absent on a side           every entry of the other side is "only there"
//! ```
//!
//! An end is sticky: an ended state on either side ends the result, except that an end this
//! side has seen but no longer holds (collected) is not taken back. An ended session held here
//! is kept as it is: local collection forgets it in its own time. Entries whose dot is not
//! known (counters and touches read from format-1 files) are never dropped.
//!
//! Changes of an origin whose history was given up, above the seq it is held up to
//! (`causal::GIVEN_UP`, on either side's vector), are gone from both sides before the
//! merge: a write that never left a retired region loses to what the cluster holds, even
//! where it would win a join (a later stamp, higher counter totals, a longer touch, an
//! end). What such a change had replaced here is taken from the other side again.

use std::borrow::Cow;
use std::collections::BTreeSet;

use bytes::Bytes;

use super::{LwwRegister, Merge, SessionState};
use crate::causal::{Dot, VersionVector};
use crate::clock::ReplicaId;

/// Merges `there` (a peer's state of one session, `None` when the peer does not hold it) into
/// `here` (ours, `None` when absent); `seen_here` tells the dots this replica has seen,
/// `seen_there` is the peer's context. Returns the state this replica should hold (`None`:
/// absent). Never fails.
pub fn causal_merge(
    here: Option<&SessionState>,
    there: Option<&SessionState>,
    seen_here: impl Fn(Dot) -> bool,
    seen_there: &VersionVector,
    given_up: impl Fn(Dot) -> bool,
) -> Option<SessionState> {
    let (here, reopened_here) = strip(here, &given_up);
    let (there, reopened_there) = strip(there, &given_up);
    // A side whose end was given up gives nothing: what the end cleared there is the other
    // side's to give.
    if reopened_here.all {
        return there.map(Cow::into_owned);
    }
    if reopened_there.all {
        return here.map(Cow::into_owned);
    }
    let gone_there = |d: Dot| seen_there.contains(d);
    let reopened = (&reopened_here, &reopened_there);
    merge_stripped(
        here.as_deref(),
        there.as_deref(),
        &seen_here,
        &gone_there,
        reopened,
    )
}

/// `s` without its given-up changes; a state without any is used as it is (no copy, and an
/// empty one is kept, as the merge keeps a session both sides hold).
fn strip<'a>(
    s: Option<&'a SessionState>,
    given_up: &impl Fn(Dot) -> bool,
) -> (Option<Cow<'a, SessionState>>, Reopened) {
    match s.map(|st| (st, without_given_up(st, given_up))) {
        Some((_, Some((stripped, reopened)))) => (nonempty(stripped).map(Cow::Owned), reopened),
        Some((st, None)) => (Some(Cow::Borrowed(st)), Reopened::default()),
        None => (None, Reopened::default()),
    }
}

/// Slots of a state whose given-up change was taken out: the other side's entry for each
/// is kept even if this side has seen it (the given-up change had replaced it here).
#[derive(Default)]
struct Reopened {
    /// The end was given up.
    all: bool,
    fields: BTreeSet<Bytes>,
    counters: BTreeSet<(Bytes, ReplicaId)>,
    touch: bool,
}

/// `s` without the changes `given_up` names, and the slots that frees; `None` when it has
/// none.
fn without_given_up(
    s: &SessionState,
    given_up: &impl Fn(Dot) -> bool,
) -> Option<(SessionState, Reopened)> {
    if !s.dots().any(given_up) {
        return None;
    }
    let mut out = s.clone();
    let mut reopened = Reopened::default();
    if out.ended.is_some_and(|e| given_up(e.dot)) {
        reopened.all = true;
        out.ended = None;
    }
    out.fields.retain(|k, r| {
        let keep = !given_up(r.stamp.dot);
        if !keep {
            reopened.fields.insert(k.clone());
        }
        keep
    });
    for (k, c) in out.counters.iter_mut() {
        let dropped: Vec<_> = c
            .dots()
            .filter(|d| given_up(*d))
            .map(|d| d.replica)
            .collect();
        for r in dropped {
            c.drop_replica(r);
            reopened.counters.insert((k.clone(), r));
        }
    }
    out.counters.retain(|_, c| !c.is_empty());
    for set in out.sets.values_mut() {
        set.entries.retain(|_, adds| {
            adds.retain(|d| !given_up(*d));
            !adds.is_empty()
        });
        set.removed
            .retain(|add, by| !given_up(*add) && !given_up(*by));
    }
    out.sets
        .retain(|_, set| !(set.entries.is_empty() && set.removed.is_empty()));
    if out.touched_by.is_some_and(given_up) {
        out.expires_at = None;
        out.touched_by = None;
        reopened.touch = true;
    }
    Some((out, reopened))
}

/// The merge proper, of states without given-up changes; `reopened` is (here's, there's).
fn merge_stripped(
    here: Option<&SessionState>,
    there: Option<&SessionState>,
    seen_here: &impl Fn(Dot) -> bool,
    gone_there: &impl Fn(Dot) -> bool,
    reopened: (&Reopened, &Reopened),
) -> Option<SessionState> {
    let (reopened_here, reopened_there) = reopened;
    match (here, there) {
        (None, None) => None,
        (Some(h), _) if h.is_ended() => {
            let mut out = h.clone();
            if let Some(t) = there {
                out.merge(t);
            }
            Some(out)
        }
        (None, Some(t)) if t.is_ended() => {
            let end = t.ended.map(|s| s.dot);
            if end.is_some_and(&seen_here) {
                None
            } else {
                Some(t.clone())
            }
        }
        (Some(h), Some(t)) if t.is_ended() => {
            let mut out = h.clone();
            out.merge(t);
            Some(out)
        }
        (Some(h), None) => nonempty(only_unseen(h, gone_there, reopened_there)),
        (None, Some(t)) => nonempty(only_unseen(t, seen_here, reopened_here)),
        // Both hold the session: it stays, even emptied (an empty session still exists).
        (Some(h), Some(t)) => Some(join_live(h, t, seen_here, gone_there, reopened)),
    }
}

/// `s` without every entry whose dot `seen` says the other side has seen (and dropped),
/// but for the slots `reopened` names.
fn only_unseen(s: &SessionState, seen: &impl Fn(Dot) -> bool, reopened: &Reopened) -> SessionState {
    let mut out = s.clone();
    out.fields
        .retain(|k, r| !seen(r.stamp.dot) || reopened.fields.contains(k));
    for (k, c) in out.counters.iter_mut() {
        let dropped: Vec<_> = c
            .dots()
            .filter(|d| seen(*d) && !reopened.counters.contains(&(k.clone(), d.replica)))
            .map(|d| d.replica)
            .collect();
        for r in dropped {
            c.drop_replica(r);
        }
    }
    out.counters.retain(|_, c| !c.is_empty());
    for set in out.sets.values_mut() {
        set.entries.retain(|_, adds| {
            adds.retain(|d| !seen(*d));
            !adds.is_empty()
        });
        set.removed.retain(|add, by| !(seen(*add) && seen(*by)));
    }
    out.sets
        .retain(|_, set| !(set.entries.is_empty() && set.removed.is_empty()));
    if out.touched_by.is_some_and(seen) && !reopened.touch {
        out.expires_at = None;
        out.touched_by = None;
    }
    out
}

/// Two live states: common entries join; an entry on one side only survives unless the
/// other side has seen its dot.
fn join_live(
    h: &SessionState,
    t: &SessionState,
    seen_here: &impl Fn(Dot) -> bool,
    seen_there: &impl Fn(Dot) -> bool,
    reopened: (&Reopened, &Reopened),
) -> SessionState {
    let (reopened, reopened_there) = reopened;
    let mut out = h.clone();
    out.fields.retain(|k, r| {
        t.fields.contains_key(k) || !seen_there(r.stamp.dot) || reopened_there.fields.contains(k)
    });
    for (k, r) in &t.fields {
        match out.fields.get_mut(k) {
            Some(cur) => cur.merge(r),
            None if !seen_here(r.stamp.dot) || reopened.fields.contains(k) => {
                out.fields.insert(k.clone(), LwwRegister::clone(r));
            }
            None => {}
        }
    }
    for (k, c) in out.counters.iter_mut() {
        let theirs = t.counters.get(k);
        let dropped: Vec<_> = c
            .dots()
            .filter(|d| {
                seen_there(*d)
                    && !reopened_there.counters.contains(&(k.clone(), d.replica))
                    && theirs.is_none_or(|tc| {
                        !tc.p.contains_key(&d.replica) && !tc.n.contains_key(&d.replica)
                    })
            })
            .map(|d| d.replica)
            .collect();
        for r in dropped {
            c.drop_replica(r);
        }
    }
    for (k, c) in &t.counters {
        let mut c = c.clone();
        let mine = h.counters.get(k);
        let dropped: Vec<_> = c
            .dots()
            .filter(|d| {
                seen_here(*d)
                    && !reopened.counters.contains(&(k.clone(), d.replica))
                    && mine.is_none_or(|mc| {
                        !mc.p.contains_key(&d.replica) && !mc.n.contains_key(&d.replica)
                    })
            })
            .map(|d| d.replica)
            .collect();
        for r in dropped {
            c.drop_replica(r);
        }
        out.counters.entry(k.clone()).or_default().merge(&c);
    }
    out.counters.retain(|_, c| !c.is_empty());
    for (k, set) in out.sets.iter_mut() {
        let theirs = t.sets.get(k);
        set.entries.retain(|e, adds| {
            adds.retain(|d| {
                theirs.is_some_and(|ts| ts.entries.get(e).is_some_and(|a| a.contains(d)))
                    || !seen_there(*d)
            });
            !adds.is_empty()
        });
    }
    for (k, set) in &t.sets {
        let mut set = set.clone();
        let mine = h.sets.get(k);
        set.entries.retain(|e, adds| {
            adds.retain(|d| {
                mine.is_some_and(|ms| ms.entries.get(e).is_some_and(|a| a.contains(d)))
                    || !seen_here(*d)
            });
            !adds.is_empty()
        });
        out.sets.entry(k.clone()).or_default().merge(&set);
    }
    out.sets
        .retain(|_, set| !(set.entries.is_empty() && set.removed.is_empty()));
    // Expiry: one (deadline, touch) pair per side, the larger wins; a side's pair is dropped
    // when only it has a deadline and the other side has seen its touch.
    let mine = (h.expires_at.is_some()
        && (t.expires_at.is_some()
            || reopened_there.touch
            || h.touched_by.is_none_or(|d| !seen_there(d))))
    .then_some((h.expires_at, h.touched_by));
    let theirs = (t.expires_at.is_some()
        && (h.expires_at.is_some()
            || reopened.touch
            || t.touched_by.is_none_or(|d| !seen_here(d))))
    .then_some((t.expires_at, t.touched_by));
    (out.expires_at, out.touched_by) = mine.max(theirs).unwrap_or((None, None));
    out
}

/// `None` for a state with nothing left in it: on one side only, a session whose every entry
/// the other side has seen and dropped is gone.
fn nonempty(s: SessionState) -> Option<SessionState> {
    let empty = !s.is_ended()
        && s.fields.is_empty()
        && s.counters.is_empty()
        && s.sets.is_empty()
        && s.expires_at.is_none();
    (!empty).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::crdt::{FieldWrite, Op, OpKind};

    const GONE: ReplicaId = ReplicaId(1);
    const LIVE: ReplicaId = ReplicaId(2);

    fn op(replica: ReplicaId, seq: u64, ms: u64, kind: OpKind) -> Op {
        Op {
            dot: Dot { replica, seq },
            ts: Timestamp::new(ms, 0),
            session: "s".into(),
            kind,
        }
    }

    fn put(replica: ReplicaId, seq: u64, ms: u64, value: &'static str) -> Op {
        let w = FieldWrite {
            key: Bytes::from_static(b"k"),
            value: Some(Bytes::from_static(value.as_bytes())),
        };
        op(replica, seq, ms, OpKind::Put(vec![w]))
    }

    fn state(ops: &[Op]) -> SessionState {
        let mut s = SessionState::default();
        for o in ops {
            s.apply(o);
        }
        s
    }

    /// `GONE` given up above seq 1 (the retired region's second write never left it).
    fn given_up(d: Dot) -> bool {
        d.replica == GONE && d.seq > 1
    }

    #[test]
    fn a_given_up_write_loses_to_what_the_cluster_holds_on_either_side() {
        let held = put(GONE, 1, 10, "held");
        let later = put(GONE, 2, 30, "given up");
        let cluster = put(LIVE, 1, 20, "cluster");
        let returning = state(&[held.clone(), later]);
        let member = state(&[held, cluster]);
        let seen: VersionVector = [(GONE, 2), (LIVE, 1)].into_iter().collect();
        let value = |s: &SessionState| s.fields[&b"k"[..]].value.clone();
        // At the returning node, the member's write replaces the given-up one though its
        // stamp is older; at the member, the given-up copy changes nothing.
        let here = causal_merge(
            Some(&returning),
            Some(&member),
            |d| d.seq <= 2 && d.replica == GONE,
            &seen,
            given_up,
        );
        assert_eq!(
            here.as_ref().map(value),
            Some(Some(Bytes::from_static(b"cluster")))
        );
        let there = causal_merge(
            Some(&member),
            Some(&returning),
            |d| seen.contains(d),
            &seen,
            given_up,
        );
        assert_eq!(there.as_ref(), Some(&member));
    }

    #[test]
    fn a_given_up_end_or_counter_takes_nothing_from_the_cluster() {
        let add = op(
            GONE,
            1,
            10,
            OpKind::Counter {
                key: Bytes::from_static(b"c"),
                p: 1,
                n: 0,
            },
        );
        let more = op(
            GONE,
            2,
            20,
            OpKind::Counter {
                key: Bytes::from_static(b"c"),
                p: 5,
                n: 0,
            },
        );
        let end = op(GONE, 3, 30, OpKind::End);
        let member = state(std::slice::from_ref(&add));
        let seen: VersionVector = [(GONE, 1)].into_iter().collect();
        let all = |_: Dot| true;
        // Higher totals of the given-up write would win a join: they go, and the member's
        // totals (seen here, replaced by the given-up ones) come back.
        let counted = state(&[add.clone(), more.clone()]);
        let merged = causal_merge(Some(&counted), Some(&member), all, &seen, given_up);
        assert_eq!(merged.as_ref(), Some(&member));
        // A given-up end would end the session for good: it goes, and what it cleared is
        // the member's to give.
        let ended = state(&[add, more, end]);
        let merged = causal_merge(Some(&ended), Some(&member), all, &seen, given_up);
        assert_eq!(merged.as_ref(), Some(&member));
        let merged = causal_merge(
            Some(&member),
            Some(&ended),
            |d| seen.contains(d),
            &seen,
            given_up,
        );
        assert_eq!(merged.as_ref(), Some(&member));
    }
}
