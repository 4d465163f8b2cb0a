//! What must hold. After every step, on every running replica: its version vector never
//! shrinks; a session it has seen ended or expired never reads as present again; a session
//! whose end op it holds reads as absent. At quiescence, on the survivors: the dead replica
//! is removed everywhere; equal vectors, equal digest roots (and each root is the sum of the
//! session digests); byte-identical canonical state per session; no gaps, nothing pending
//! for any peer; every tombstone collected and no ended session kept; and every session is
//! exactly what the oracle recomputes from the acknowledged ops.

use std::collections::BTreeSet;

use session_ha::crdt::SessionState;
use session_ha::digest::session_digest;
use session_ha::SessionId;

use super::model::Expected;
use super::world::World;

/// The per-step invariants.
///
/// # Errors
/// The first invariant broken, with the seed.
pub fn step_invariants(world: &mut World) -> Result<(), String> {
    let now = world.now();
    for i in world.live() {
        let r = &world.replicas[i];
        let vv = r.version_vector().clone();
        if !vv.dominates(&world.last_vv[i]) {
            return Err(world.fail(format!(
                "r{i}'s version vector went back from {:?} to {vv:?}",
                world.last_vv[i]
            )));
        }
        for sid in &world.gone_seen[i] {
            if r.contains(sid.as_bytes()) {
                return Err(world.fail(format!(
                    "r{i} resurrected {sid:?}, which it had seen end: {:?}",
                    r.session_state(sid.as_bytes())
                )));
            }
        }
        for (dot, sid) in world.model.ends() {
            if vv.contains(*dot)
                && r.session_state(sid.as_bytes())
                    .is_some_and(|s| !s.is_ended())
            {
                return Err(world.fail(format!(
                    "r{i} holds the end {dot:?} of {sid:?} but the session is not ended: {:?}",
                    r.session_state(sid.as_bytes())
                )));
            }
        }
        let gone: Vec<SessionId> = r
            .sessions()
            .filter(|(_, s)| s.is_ended() || s.is_expired(now))
            .map(|(id, _)| id.clone())
            .collect();
        world.gone_seen[i].extend(gone);
        world.last_vv[i] = vv;
    }
    Ok(())
}

/// Whether the survivors look settled (the loop condition of the settling phase; the
/// assertions are [`quiescent`]).
pub fn settled(world: &World) -> bool {
    let live = world.live();
    let first = &world.replicas[live[0]];
    let dead_id = world.dead().map(|d| world.replicas[d].id());
    world.net.in_flight() == 0
        && live.iter().all(|&i| {
            let r = &world.replicas[i];
            let st = r.status();
            r.version_vector() == first.version_vector()
                && st.digest_root == first.digests().root()
                && st.tombstones_pending == 0
                && st.gaps.is_empty()
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
pub fn quiescent(world: &World) -> Result<(), String> {
    for i in world.live() {
        world.log(|| format!("r{i} status {:#?}", world.replicas[i].status()));
    }
    let mut errors = Vec::new();
    let live = world.live();
    let first = &world.replicas[live[0]];
    let dead_id = world.dead().map(|d| world.replicas[d].id());
    let mut ids: BTreeSet<SessionId> = world.model.sessions();
    for &i in &live {
        ids.extend(world.replicas[i].sessions().map(|(id, _)| id.clone()));
    }
    for &i in &live {
        let r = &world.replicas[i];
        let st = r.status();
        if let Some(d) = dead_id {
            if !st.removed.contains(&d) {
                errors.push(format!("r{i} never removed the dead replica"));
            }
        }
        if r.version_vector() != first.version_vector() {
            errors.push(format!(
                "r{i} vv {:?} != r{} vv {:?}",
                r.version_vector(),
                live[0],
                first.version_vector()
            ));
        }
        if r.digests().root() != first.digests().root() {
            errors.push(format!("r{i} digest root differs from r{}'s", live[0]));
        }
        let sum = r.sessions().fold(0u128, |acc, (id, s)| {
            acc.wrapping_add(session_digest(id, s).0)
        });
        if sum != r.digests().root().0 {
            errors.push(format!(
                "r{i}'s digest root is not the sum of its session digests"
            ));
        }
        for sid in &ids {
            let a = r
                .session_state(sid.as_bytes())
                .map(SessionState::canonical_bytes);
            let b = first
                .session_state(sid.as_bytes())
                .map(SessionState::canonical_bytes);
            if a.unwrap_or_default() != b.unwrap_or_default() {
                errors.push(format!("{sid:?} differs between r{i} and r{}", live[0]));
            }
        }
        if !st.gaps.is_empty() {
            errors.push(format!("r{i} still has gaps {:?}", st.gaps));
        }
        if !st.unknown_origins.is_empty() {
            errors.push(format!("r{i} has unknown origins {:?}", st.unknown_origins));
        }
        if st.tombstones_pending != 0 {
            errors.push(format!(
                "r{i} has {} tombstones pending",
                st.tombstones_pending
            ));
        }
        for p in &st.peers {
            if p.pending_ops != 0 {
                errors.push(format!(
                    "r{i} has {} ops pending for {}",
                    p.pending_ops, p.name
                ));
            }
        }
        for (sid, s) in r.sessions() {
            if s.is_ended() {
                errors.push(format!(
                    "r{i} still keeps the ended session {sid:?} (end dot {})",
                    s.ended.map_or("?".into(), |e| world.dot_status(i, e.dot))
                ));
            } else if s.is_expired(world.now()) {
                errors.push(format!("r{i} keeps {sid:?} expired but not ended"));
            }
            for (k, reg) in &s.fields {
                if reg.is_tombstone() {
                    errors.push(format!(
                        "r{i} {sid:?} keeps the field tombstone {k:?} (dot {})",
                        world.dot_status(i, reg.stamp.dot)
                    ));
                }
            }
            for (k, set) in &s.sets {
                if !set.removed.is_empty() {
                    let by: Vec<String> = set
                        .removed
                        .values()
                        .map(|d| world.dot_status(i, *d))
                        .collect();
                    errors.push(format!(
                        "r{i} {sid:?} set {k:?} keeps removal tombstones by {by:?}"
                    ));
                }
            }
        }
        errors.extend(oracle(world, i));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        errors.truncate(12);
        Err(world.fail(format!("not converged:\n  {}", errors.join("\n  "))))
    }
}

/// Compares replica `i` with what the acknowledged ops say every session must be.
fn oracle(world: &World, i: usize) -> Vec<String> {
    let r = &world.replicas[i];
    let mut errors = Vec::new();
    let expected = world.model.expected(r.version_vector());
    for (sid, exp) in &expected {
        let actual = r.session_state(sid.as_bytes());
        match (exp, actual) {
            (None, None) => {}
            (None, Some(_)) => errors.push(format!("r{i}: {sid:?} ended (acked end) but is held")),
            // A session left without content reads, and hashes, as absent.
            (Some(exp), None) if *exp == Expected::default() => {}
            (Some(_), None) => errors.push(format!("r{i}: {sid:?} has acked writes but is gone")),
            (Some(exp), Some(actual)) => {
                let got = observed(actual);
                if &got != exp {
                    errors.push(format!(
                        "r{i}: {sid:?}\n    expected {exp:?}\n    got      {got:?}"
                    ));
                }
            }
        }
    }
    for (sid, _) in r.sessions() {
        if !expected.contains_key(sid) {
            errors.push(format!(
                "r{i} holds {sid:?}, which no acknowledged op touched"
            ));
        }
    }
    errors
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
