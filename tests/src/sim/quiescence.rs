//! What must hold once the settling phase healed everything: every survivor is up and
//! serves reads; the dead region is removed everywhere; equal vectors and equal digest roots
//! (each root the sum of the session digests); byte-identical canonical state per session;
//! no gaps, unknown origins or ops pending for any peer; every tombstone collected and no
//! ended session kept; every survivor's claims on disk (I1); no acknowledged write lost
//! unless its region lost it to damage, a restore or a power cut under `Never`; no value
//! of a refused write anywhere (I5); and every session exactly what the oracle of
//! `model.rs` recomputes from the ops the vectors cover.

use std::collections::BTreeSet;

use session_ha::crdt::SessionState;
use session_ha::digest::session_digest;
use session_ha::{CausalContext, Dot, ReplicaStatus, SessionId, VersionVector};

use super::check;
use super::model::Expected;
use super::params::Invariant;
use super::world::World;

/// What the settling loop and the assertions read from one survivor.
struct Survivor {
    index: usize,
    status: ReplicaStatus,
    vv: VersionVector,
    ctx: CausalContext,
    root: u128,
    sum: u128,
    sessions: Vec<(SessionId, SessionState)>,
    /// The dots of the tombstones its index waits to collect.
    tombstones: BTreeSet<Dot>,
}

fn survivor(world: &World, index: usize, with_sessions: bool) -> Option<Survivor> {
    world.nodes[index].inspect(|r| {
        let sessions: Vec<(SessionId, SessionState)> = r
            .sessions()
            .filter(|_| with_sessions)
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        let sum = sessions.iter().fold(0u128, |acc, (id, s)| {
            acc.wrapping_add(session_digest(id, s).0)
        });
        Survivor {
            index,
            status: r.status(),
            vv: r.version_vector().held(),
            ctx: r.context().clone(),
            root: r.digests().root().0,
            sum,
            sessions,
            tombstones: r.tombstone_dots().collect(),
        }
    })
}

fn survivors(world: &World, with_sessions: bool) -> Vec<Survivor> {
    world
        .live()
        .into_iter()
        .filter_map(|i| survivor(world, i, with_sessions))
        .collect()
}

/// Whether the survivors look settled (the loop condition of the settling phase; the
/// assertions are [`quiescent`]).
pub fn settled(world: &World) -> bool {
    quiet(world, true)
}

/// Pairs of survivors whose digests differ although replication has done all it can
/// (nothing in flight or pending, equal vectors), where a session that differs holds an
/// effect whose dot the vectors do not cover: only a repaired copy can have brought it, its
/// op lost with its origin's disk, so no op will spread it; an operator repairs them, as
/// the README's incident table says. Any other difference is left for the checks to fail.
pub fn differing_digests(world: &World) -> Vec<(usize, usize)> {
    if !quiet(world, false) {
        return Vec::new();
    }
    let all = survivors(world, true);
    let Some(first) = all.first() else {
        return Vec::new();
    };
    let state = |x: &Survivor, sid: &SessionId| {
        x.sessions
            .iter()
            .find(|(id, _)| id == sid)
            .map(|(_, st)| st.clone())
    };
    let uncovered = |st: &Option<SessionState>| {
        st.as_ref()
            .is_some_and(|st| st.dots().any(|d| !first.vv.contains(d)))
    };
    all.iter()
        .filter(|s| s.root != first.root)
        .filter(|s| {
            let ids: BTreeSet<&SessionId> = s
                .sessions
                .iter()
                .chain(&first.sessions)
                .map(|(id, _)| id)
                .collect();
            ids.into_iter().any(|sid| {
                let (mine, theirs) = (state(s, sid), state(first, sid));
                mine != theirs && (uncovered(&mine) || uncovered(&theirs))
            })
        })
        .map(|s| (first.index, s.index))
        .collect()
}

fn quiet(world: &World, digests_too: bool) -> bool {
    let all = survivors(world, true);
    let Some(first) = all.first() else {
        return true;
    };
    let dead_id = world.dead().and_then(|d| world.nodes[d].id());
    world.net.in_flight() == 0
        && world.regions.iter().all(|r| r.held.is_empty())
        && all.iter().all(|s| {
            let st = &s.status;
            s.vv == first.vv
                && (!digests_too || s.root == first.root)
                && waits_only_for_lost_ops(s)
                && fillable_gaps(s, &all).is_empty()
                && dead_id.is_none_or(|d| st.removed.contains(&d))
                && st
                    .peers
                    .iter()
                    .all(|p| p.pending_ops == 0 && p.in_flight == 0)
        })
}

/// The assertions at quiescence.
///
/// # Errors
/// Every broken assertion, with the seed.
pub fn quiescent(world: &mut World) -> Result<(), String> {
    let mut errors = world.errors.clone();
    for i in 0..world.nodes.len() {
        if world.dead() != Some(i) && !world.regions[i].is_up() {
            errors.push(format!("r{i} is not up after settling"));
        }
    }
    for i in world.live() {
        if let Err(e) = world.nodes[i].client_view() {
            errors.push(format!("r{i} still refuses reads after settling: {e}"));
        }
        if let Err(e) = check::durable_claims(world, i, true) {
            errors.push(e);
        }
    }
    let all = survivors(world, true);
    let Some(first) = all.first() else {
        return Err(world.fail("no survivor"));
    };
    let dead_id = world.dead().and_then(|d| world.nodes[d].id());
    let mut ids: BTreeSet<SessionId> = world.model.sessions();
    for s in &all {
        ids.extend(s.sessions.iter().map(|(id, _)| id.clone()));
    }
    for s in &all {
        world.log(|| format!("r{} status {:#?}", s.index, s.status));
        errors.extend(compare(world, s, first, dead_id, &ids));
        errors.extend(fillable_gaps(s, &all));
        errors.extend(collected_and_clean(world, s));
        errors.extend(oracle(world, s));
    }
    errors.extend(lost_acknowledged(world, &first.vv));
    // Histories of retired origins the survivors gave up (`causal::GIVEN_UP`); the checks
    // above see such an entry at the seq it is held up to.
    let given_up = world.nodes[first.index]
        .inspect(|r| {
            let vv = r.version_vector();
            vv.iter().filter(|(o, _)| vv.given_up(*o).is_some()).count()
        })
        .unwrap_or(0);
    for _ in 0..given_up {
        world.count("retired origins given up");
    }
    for _ in 0..kept_for_lost_ops(first).len() {
        world.count("tombstones kept for lost ops");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.truncate(12);
        Err(world.fail(format!("not converged:\n  {}", errors.join("\n  "))))
    }
}

/// Gaps of `s` that another survivor could fill (it holds the ops). A gap no survivor can
/// fill names ops lost everywhere (a region's disk took them) whose effects travelled only
/// in repaired copies: it stays, shown in the status, and is not a failure to converge.
fn fillable_gaps(s: &Survivor, all: &[Survivor]) -> Vec<String> {
    let mut errors = Vec::new();
    for g in &s.status.gaps {
        if let Some(o) = all.iter().find(|o| o.vv.get(g.origin) >= g.from) {
            errors.push(format!(
                "r{} still has the gap {g:?}, which r{} holds",
                s.index, o.index
            ));
        }
    }
    errors
}

fn compare(
    world: &World,
    s: &Survivor,
    first: &Survivor,
    dead_id: Option<session_ha::ReplicaId>,
    ids: &BTreeSet<SessionId>,
) -> Vec<String> {
    let (i, f) = (s.index, first.index);
    let mut errors = Vec::new();
    let st = &s.status;
    if let Some(d) = dead_id {
        if !st.removed.contains(&d) {
            errors.push(format!("r{i} never removed the dead region"));
        }
    }
    if s.vv != first.vv {
        errors.push(format!("r{i} vv {:?} != r{f} vv {:?}", s.vv, first.vv));
    }
    if s.root != first.root {
        errors.push(format!("r{i} digest root differs from r{f}'s"));
    }
    if s.sum != s.root {
        errors.push(format!(
            "r{i}'s digest root is not the sum of its session digests"
        ));
    }
    let state = |x: &Survivor, sid: &SessionId| {
        x.sessions
            .iter()
            .find(|(id, _)| id == sid)
            .map(|(_, st)| st.canonical_bytes())
            .unwrap_or_default()
    };
    for sid in ids {
        if state(s, sid) != state(first, sid) {
            errors.push(format!("{sid:?} differs between r{i} and r{f}"));
        }
    }
    if !st.unknown_origins.is_empty() {
        errors.push(format!("r{i} has unknown origins {:?}", st.unknown_origins));
    }
    if !waits_only_for_lost_ops(s) {
        let kept = kept_for_lost_ops(s);
        errors.push(format!(
            "r{i} has {} tombstones pending, waiting for {:?}, of which only {kept:?} are kept for lost ops; collection blocked by {:?}, removed {:?}, vv {:?}, acked {:?}",
            st.tombstones_pending, s.tombstones, st.collection_blocked_by, st.removed, st.vv,
            st.peers.iter().map(|p| (p.id, p.acked.clone())).collect::<Vec<_>>()
        ));
    }
    for p in &st.peers {
        if p.pending_ops != 0 {
            errors.push(format!(
                "r{i} has {} ops pending for {} ({})",
                p.pending_ops, p.name, p.id
            ));
        }
    }
    let _ = world;
    errors
}

/// Whether the tombstones `s` waits to collect are exactly those kept for lost ops (the
/// same dots, not only as many), and no end waits for its retention.
fn waits_only_for_lost_ops(s: &Survivor) -> bool {
    let kept = kept_for_lost_ops(s);
    s.tombstones == kept && s.status.tombstones_pending == kept.len()
}

/// The tombstone-making dots `s` holds tombstones of that no replica may collect: the
/// removing op is not covered by the final vector (equal everywhere), so no survivor holds
/// it, nor every op of its origin before it; or a set removal's removed add was never seen
/// here. Those ops were lost with a region's disk and only effects of them
/// travelled, in repaired copies. Collecting such a tombstone would let a lost op that
/// comes back (from a backup restored later) bring back what it removed; keeping it costs
/// memory, never data (`docs/DECISIONS.md`).
fn kept_for_lost_ops(s: &Survivor) -> BTreeSet<Dot> {
    let lost = |d: Dot| !s.vv.contains(d);
    // A set removal waits for its removed add to be seen here, out of order included.
    let unseen = |d: Dot| !s.ctx.contains(d);
    let mut kept = BTreeSet::new();
    for (_, st) in &s.sessions {
        if let Some(end) = st.ended {
            if lost(end.dot) {
                kept.insert(end.dot);
            }
        }
        for reg in st.fields.values() {
            if reg.is_tombstone() && lost(reg.stamp.dot) {
                kept.insert(reg.stamp.dot);
            }
        }
        for set in st.sets.values() {
            for (&add, &by) in &set.removed {
                if lost(by) || unseen(add) {
                    kept.insert(by);
                }
            }
        }
    }
    kept
}

/// A session that reads as absent and holds nothing but tombstones kept for lost ops: what
/// is left of an ended session at a replica whose copy lost the end, once a transfer from
/// one that collected it took away everything that one had seen (seed 39983 of 100,000).
fn is_husk_of_lost_ops(st: &SessionState, kept: &BTreeSet<Dot>) -> bool {
    st.ended.is_none()
        && !st.has_content()
        && st.fields.values().all(|r| kept.contains(&r.stamp.dot))
        && st
            .sets
            .values()
            .all(|set| set.removed.values().all(|by| kept.contains(by)))
}

fn collected_and_clean(world: &World, s: &Survivor) -> Vec<String> {
    let i = s.index;
    let mut errors = Vec::new();
    let kept = kept_for_lost_ops(s);
    for (sid, st) in &s.sessions {
        if st.ended.is_some_and(|e| kept.contains(&e.dot)) {
            // An end kept for lost ops (see `kept_for_lost_ops`).
        } else if st.is_ended() {
            errors.push(format!(
                "r{i} still keeps the ended session {sid:?} (end dot {})",
                st.ended.map_or("?".into(), |e| world.dot_status(i, e.dot))
            ));
        } else if st.is_expired(world.now()) {
            errors.push(format!("r{i} keeps {sid:?} expired but not ended"));
        }
        for (k, reg) in &st.fields {
            if reg.is_tombstone() && !kept.contains(&reg.stamp.dot) {
                errors.push(format!(
                    "r{i} {sid:?} keeps the field tombstone {k:?} (dot {})",
                    world.dot_status(i, reg.stamp.dot)
                ));
            }
        }
        for (k, set) in &st.sets {
            if set.removed.values().any(|by| !kept.contains(by)) {
                let by: Vec<String> = set
                    .removed
                    .iter()
                    .filter(|(_, by)| !kept.contains(by))
                    .map(|(add, d)| {
                        format!(
                            "{} (of the add {})",
                            world.dot_status(i, *d),
                            world.dot_status(i, *add)
                        )
                    })
                    .collect();
                errors.push(format!(
                    "r{i} {sid:?} set {k:?} keeps removal tombstones by {by:?}"
                ));
            }
        }
        let leak = world
            .params
            .checks(Invariant::I5)
            .then(|| check::leaked_by_state(&world.model, st))
            .flatten();
        if let Some(why) = leak {
            errors.push(format!(
                "I5 violated: r{i} holds in {sid:?} a value that must stay invisible ({why})"
            ));
        }
    }
    errors
}

/// Acknowledged writes of surviving regions that the final vector does not cover, unless
/// their region lost them to something that may lose acknowledged data.
fn lost_acknowledged(world: &World, vv: &VersionVector) -> Vec<String> {
    let dead = world.dead();
    // Held at a give-up by a region that restarted since counts as held here: a loss of
    // it is the restart's, which this check does not judge.
    let unheld = world.give_ups.unheld(&world.running_ids(), false);
    world
        .model
        .records()
        .filter(|r| r.acked && !r.lost_ok)
        .filter(|r| dead.is_none_or(|d| !world.nodes[d].had_id(r.op.dot.replica)))
        .filter(|r| !vv.contains(r.op.dot) || unheld.contains(&r.op.dot))
        .take(3)
        .map(|r| {
            format!(
                "acknowledged write {}:{} ({:?} on {:?}) is lost",
                world.origin(r.op.dot),
                r.op.dot.seq,
                r.op.kind,
                r.op.session
            )
        })
        .collect()
}

/// Compares survivor `s` with what the ops its vector covers say every session must be.
fn oracle(world: &World, s: &Survivor) -> Vec<String> {
    let i = s.index;
    let mut errors = Vec::new();
    // Effects held without their dot covered can only be of regions (or incarnations) gone
    // for good, brought by a repair's state: the op itself will never come.
    let uncovered = uncovered_dots(s);
    for dot in &uncovered {
        let live = world
            .live()
            .into_iter()
            .any(|k| world.nodes[k].id() == Some(dot.replica));
        if live {
            errors.push(format!(
                "r{i} holds an effect of {} that its vector does not cover",
                world.dot_status(i, *dot)
            ));
        }
    }
    let expected = world
        .model
        .expected_with(&s.vv, &uncovered, &BTreeSet::new());
    // Changes a give-up mark covers that no region held in order (`GiveUps::out_of_order`)
    // are expected only as far as survivors hold their effects, as before the mark; a
    // removal among them may still show, as a copy that lacked what it removed. So a
    // session matches with all that the vector covers, or with those held.
    let unheld = world.give_ups.out_of_order(&world.running_ids());
    let mut held_effects = uncovered.clone();
    held_effects.extend(
        s.sessions
            .iter()
            .flat_map(|(_, st)| st.dots())
            .filter(|d| unheld.contains(d)),
    );
    let without = world.model.expected_with(&s.vv, &held_effects, &unheld);
    let kept = kept_for_lost_ops(s);
    let find = |sid: &SessionId| {
        s.sessions
            .iter()
            .find(|(id, _)| id == sid)
            .map(|(_, st)| st)
    };
    let mismatch = |sid: &SessionId, exp: Option<&Option<Expected>>| -> Option<String> {
        match (exp?, find(sid)) {
            (None, None) => None,
            (None, Some(st)) if st.ended.is_some_and(|e| !s.vv.contains(e.dot)) => None,
            (None, Some(st)) if is_husk_of_lost_ops(st, &kept) => None,
            (None, Some(_)) => Some(format!("r{i}: {sid:?} ended (acked end) but is held")),
            // A session left without content reads, and hashes, as absent.
            (Some(exp), None) if *exp == Expected::default() => None,
            (Some(_), None) => Some(format!("r{i}: {sid:?} has acked writes but is gone")),
            (Some(exp), Some(actual)) => {
                let got = observed(actual);
                (&got != exp)
                    .then(|| format!("r{i}: {sid:?}\n    expected {exp:?}\n    got      {got:?}"))
            }
        }
    };
    for sid in expected.keys() {
        let with_all = mismatch(sid, expected.get(sid));
        let without_unheld = match without.get(sid) {
            Some(_) => mismatch(sid, without.get(sid)),
            None => mismatch(sid, Some(&Some(Expected::default()))),
        };
        if let (Some(e), Some(_)) = (with_all, without_unheld) {
            errors.push(e);
        }
    }
    for (sid, _) in &s.sessions {
        if !expected.contains_key(sid) {
            errors.push(format!(
                "r{i} holds {sid:?}, which no recorded op its vector covers touched"
            ));
        }
    }
    errors
}

/// The dots behind the parts of a survivor's sessions that its vector does not cover.
fn uncovered_dots(s: &Survivor) -> BTreeSet<Dot> {
    s.sessions
        .iter()
        .flat_map(|(_, st)| st.dots())
        .filter(|d| !s.vv.contains(*d))
        .collect()
}

/// A session's state in the oracle's terms (tombstones left out: they must be collected).
fn observed(s: &SessionState) -> Expected {
    Expected {
        fields: s
            .fields
            .iter()
            .filter_map(|(k, r)| r.value.as_ref().map(|v| (k.clone(), (r.stamp, v.clone()))))
            .collect(),
        counters: s
            .counters
            .iter()
            .map(|(k, c)| (k.clone(), (c.p.clone(), c.n.clone())))
            .collect(),
        sets: s
            .sets
            .iter()
            .filter(|(_, set)| !set.entries.is_empty())
            .map(|(k, set)| (k.clone(), set.entries.clone()))
            .collect(),
        expires_at: s.expires_at,
    }
}
