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

use super::{LwwRegister, Merge, SessionState};
use crate::causal::{Dot, VersionVector};

/// Merges `there` (a peer's state of one session, `None` when the peer does not hold it) into
/// `here` (ours, `None` when absent); `seen_here` tells the dots this replica has seen,
/// `seen_there` is the peer's context. Returns the state this replica should hold (`None`:
/// absent). Never fails.
pub fn causal_merge(
    here: Option<&SessionState>,
    there: Option<&SessionState>,
    seen_here: impl Fn(Dot) -> bool,
    seen_there: &VersionVector,
) -> Option<SessionState> {
    let gone_there = |d: Dot| seen_there.contains(d);
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
        (Some(h), None) => nonempty(only_unseen(h, &gone_there)),
        (None, Some(t)) => nonempty(only_unseen(t, &seen_here)),
        // Both hold the session: it stays, even emptied (an empty session still exists).
        (Some(h), Some(t)) => Some(join_live(h, t, &seen_here, &gone_there)),
    }
}

/// `s` without every entry whose dot `seen` says the other side has seen (and dropped).
fn only_unseen(s: &SessionState, seen: &impl Fn(Dot) -> bool) -> SessionState {
    let mut out = s.clone();
    out.fields.retain(|_, r| !seen(r.stamp.dot));
    for c in out.counters.values_mut() {
        let dropped: Vec<_> = c.dots().filter(|d| seen(*d)).map(|d| d.replica).collect();
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
    if out.touched_by.is_some_and(seen) {
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
) -> SessionState {
    let mut out = h.clone();
    out.fields
        .retain(|k, r| t.fields.contains_key(k) || !seen_there(r.stamp.dot));
    for (k, r) in &t.fields {
        match out.fields.get_mut(k) {
            Some(cur) => cur.merge(r),
            None if !seen_here(r.stamp.dot) => {
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
        && (t.expires_at.is_some() || h.touched_by.is_none_or(|d| !seen_there(d))))
    .then_some((h.expires_at, h.touched_by));
    let theirs = (t.expires_at.is_some()
        && (h.expires_at.is_some() || t.touched_by.is_none_or(|d| !seen_here(d))))
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
