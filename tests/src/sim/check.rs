//! What must hold after every step (`docs/INVARIANTS.md`), on every region that is up:
//!
//! - **I1** acks are on disk: every vector a region put on the wire (frames, heartbeats,
//!   acks, the ops it forwarded) and every vector its peers' status says it acknowledged is
//!   covered by what its disk holds durably: the ground truth is a recovery of what a power
//!   cut now would leave (under `Never`, of what was written), read when the claims outgrew
//!   what the disk was last seen to hold, at a sampled rate, and always when a region stops.
//! - **I2** one dot, one op: checked wherever an op is learnt (the model refuses a dot
//!   naming two ops) and when a region reopens (`lifecycle.rs`).
//! - **I3** the log's end is known: checked when a region reopens (`lifecycle.rs`).
//! - **I4** no resurrection: a session whose end some region collected is never served
//!   again anywhere; a session a region saw end or expire is never served again by it in the
//!   same run of its store; a region holding a session's end holds the session ended.
//! - **I5** refused means invisible: no value of a refused write (or of a write whose log
//!   failed before it was durable, until its region reopens) is served by any read or
//!   carried by any frame (frames are read on their way out, `moves.rs`).
//!
//! Also: a region's version vector never shrinks while its store stays open. Reads a store
//! refuses (fenced, tainted) are not checked: refusing is what the contract asks.

use std::collections::BTreeSet;

use session_ha::crdt::SessionState;
use session_ha::{Dot, Op, OpKind, ReplicaId, SessionId, VersionVector};

use super::give_ups::RetiredHolding;
use super::model::Model;
use super::node::{classify, Refusal};
use super::params::Invariant;
use super::region::Phase;
use super::world::World;

/// Why `op` leaks a value that must stay invisible, if it does.
pub fn leaked_by_op(model: &Model, op: &Op) -> Option<String> {
    if !model.has_invisible() {
        return None;
    }
    match &op.kind {
        OpKind::Put(writes) => writes
            .iter()
            .filter_map(|w| w.value.as_ref())
            .find_map(|v| model.why_invisible(v).map(str::to_owned)),
        OpKind::SetAdd { elem, .. } => model.why_invisible(elem).map(str::to_owned),
        _ => None,
    }
}

/// Why `state` leaks a value that must stay invisible, if it does.
pub fn leaked_by_state(model: &Model, state: &SessionState) -> Option<String> {
    if !model.has_invisible() {
        return None;
    }
    let values = state.fields.values().filter_map(|r| r.value.as_ref());
    let elems = state.sets.values().flat_map(|s| s.entries.keys());
    values
        .chain(elems)
        .find_map(|v| model.why_invisible(v).map(str::to_owned))
}

/// The per-step invariants.
///
/// # Errors
/// The first invariant broken, with the seed.
pub fn step_invariants(world: &mut World) -> Result<(), String> {
    if let Some(e) = world.errors.first() {
        return Err(e.clone());
    }
    if let Some(sid) = &world.watch {
        for i in world.live() {
            let st = world.nodes[i].inspect(|r| r.session_state(sid.as_bytes()).cloned());
            world.log(|| format!("watch r{i} {sid:?}: {st:?}"));
        }
    }
    for i in world.live() {
        check_region(world, i)?;
    }
    for j in 0..world.nodes.len() {
        durable_claims(world, j, false)?;
    }
    Ok(())
}

/// What region `i`'s memory shows, for the checks.
struct Inspected {
    vv: VersionVector,
    /// Origins given up here (a `GIVEN_UP` mark; `vv` shows them at the seq held).
    given_up: Vec<ReplicaId>,
    /// What it holds of the retired origins not given up here.
    retired_holdings: Vec<RetiredHolding>,
    gone: Vec<SessionId>,
    ended_but_live: Vec<(Dot, String)>,
    collected: Vec<SessionId>,
}

fn inspect(world: &World, i: usize) -> Option<Inspected> {
    let now = world.now();
    let model = &world.model;
    world.nodes[i].inspect(|r| {
        let raw = r.version_vector();
        let given_up = raw
            .iter()
            .filter(|(o, _)| raw.given_up(*o).is_some())
            .map(|(o, _)| o)
            .collect();
        let vv = raw.held();
        // A fenced replica's deadlines may be stale (a restored backup, a lost tail: a
        // peer's later touch has not arrived yet), so an expiry counts only unfenced; an
        // end it holds is an end whatever its fence.
        let fenced = r.fence().is_some();
        let gone = r
            .sessions()
            .filter(|(_, s)| s.is_ended() || (!fenced && s.is_expired(now)))
            .map(|(id, _)| id.clone())
            .collect();
        let mut ended_but_live = Vec::new();
        let mut collected = Vec::new();
        for (dot, sid) in model.ends() {
            if !vv.contains(*dot) {
                continue;
            }
            match r.session_state(sid.as_bytes()) {
                // Not ended, yet nothing in it reads: a husk of tombstones no one else has
                // seen (a lost op's), left when a transfer from a replica that collected the
                // session came to one whose copy had lost the end (seed 39983 of 100,000).
                // It reads and hashes as absent; a lost end with content left is the fault.
                Some(s) if !s.is_ended() && s.has_content() => {
                    ended_but_live.push((*dot, format!("{sid:?} (end {dot:?}): {s:?}")));
                }
                Some(_) => {}
                None => collected.push(sid.clone()),
            }
        }
        let ctx = r.context();
        let retired_holdings = r
            .removed_members()
            .into_iter()
            .filter(|o| raw.given_up(*o).is_none())
            .map(|origin| RetiredHolding {
                holder: r.id(),
                origin,
                contiguous: raw.get(origin),
                top: ctx
                    .cloud_tops()
                    .find(|d| d.replica == origin)
                    .map_or(raw.get(origin), |d| d.seq),
                gaps: ctx
                    .gaps()
                    .into_iter()
                    .filter(|g| g.origin == origin)
                    .map(|g| (g.from, g.to))
                    .collect(),
            })
            .collect();
        Inspected {
            vv,
            given_up,
            retired_holdings,
            gone,
            ended_but_live,
            collected,
        }
    })
}

/// Whether some end of `session` is still known: covered by the vector of a region that is
/// up, or by what the disk of one that is down recovers. An end every copy of which is
/// gone (power cuts under `Never` and damage at rest on every region that held it) is lost
/// data, as a lost acknowledged write is, not a resurrection the protocol made.
fn end_survives(world: &World, session: &SessionId) -> bool {
    let ends: Vec<_> = world
        .model
        .ends()
        .filter(|(_, s)| *s == session)
        .map(|(d, _)| *d)
        .collect();
    (0..world.nodes.len()).any(|k| {
        let vv = if world.regions[k].is_up() {
            world.nodes[k].inspect(|r| r.version_vector().held())
        } else if world.regions[k].phase == Phase::Dead {
            None
        } else {
            world.regions[k].stop.as_ref().and_then(|s| s.truth.clone())
        };
        vv.is_some_and(|vv| ends.iter().any(|d| vv.contains(*d)))
    })
}

fn check_region(world: &mut World, i: usize) -> Result<(), String> {
    let Some(seen) = inspect(world, i) else {
        return Ok(());
    };
    // A vector never goes back, but for one case by design: an incarnation that opened
    // after the cluster gave a retired origin up (a restored backup) holds changes of it
    // past the mark, and drops them once it adopts the mark; so does a region that took
    // them from it before the mark reached it (seed 62566).
    let region = &world.regions[i];
    let returned: BTreeSet<ReplicaId> = world
        .regions
        .iter()
        .flat_map(|r| r.opened_after_give_up.iter().copied())
        .collect();
    let lower: Vec<_> = region
        .last_vv
        .iter()
        .filter(|&(o, s)| seen.vv.get(o) < s)
        .map(|(o, _)| o)
        .collect();
    let by_design = |o: &ReplicaId| seen.given_up.contains(o) && returned.contains(o);
    if !lower.iter().all(by_design) {
        return Err(world.fail(format!(
            "r{i}'s version vector went back from {:?} to {:?}",
            world.regions[i].last_vv, seen.vv
        )));
    }
    if !lower.is_empty() {
        world.count("restored changes past a give-up dropped");
    }
    match world.nodes[i].client_view() {
        Ok(view) => {
            for (sid, v) in &view {
                let collected = seen.collected.contains(sid)
                    || (world.collected.contains(sid) && end_survives(world, sid));
                if collected {
                    let what =
                        format!("I4 violated: r{i} serves {sid:?}, whose end was collected: {v:?}");
                    world.violation(Invariant::I4, what)?;
                } else if world.collected.contains(sid) {
                    world.count("ends lost on every disk");
                }
                if world.regions[i].gone_seen.contains(sid) {
                    let what =
                        format!("I4 violated: r{i} serves {sid:?}, which it had seen end: {v:?}");
                    world.violation(Invariant::I4, what)?;
                }
                let values = v.fields.values().chain(v.sets.values().flatten());
                for value in values {
                    if let Some(why) = world.model.why_invisible(value) {
                        let what = format!(
                            "I5 violated: r{i} serves {value:?} in {sid:?}, a value that must stay invisible ({why})"
                        );
                        world.violation(Invariant::I5, what)?;
                    }
                }
            }
        }
        Err(e) => match classify(&e) {
            Refusal::CatchingUp => world.count("reads refused: catching up"),
            Refusal::LogFailed => world.count("reads refused: tainted"),
            _ => return Err(world.fail(format!("r{i} refused a read: {e}"))),
        },
    }
    // Origins given up here since the last check, with what this region held of them then.
    let given_up: Vec<RetiredHolding> = world.regions[i]
        .retired_holdings
        .iter()
        .filter(|h| seen.given_up.contains(&h.origin))
        .cloned()
        .collect();
    let before = world.give_ups.count;
    {
        let last: Vec<&[RetiredHolding]> = world
            .regions
            .iter()
            .map(|r| r.retired_holdings.as_slice())
            .collect();
        world.give_ups.record(given_up, &last, &world.running_ids());
    }
    for _ in before..world.give_ups.count {
        world.count("retired origins given up over a gap (by a region)");
    }
    // An end in a gap a give-up mark covers was lost everywhere, not seen.
    let unheld = world.give_ups.unheld(&world.running_ids(), true);
    let ended_but_live = seen
        .ended_but_live
        .iter()
        .find(|(d, _)| !unheld.contains(d));
    if let Some((_, what)) = ended_but_live {
        let what =
            format!("I4 violated: r{i} holds the end of a session that is not ended: {what}");
        world.violation(Invariant::I4, what)?;
    }
    let r = &mut world.regions[i];
    r.retired_holdings = seen.retired_holdings;
    r.gone_seen.extend(seen.gone);
    r.last_vv = seen.vv;
    world.collected.extend(seen.collected);
    world.given_up_seen.extend(seen.given_up);
    Ok(())
}

/// Before a claim of region `j` counts as not durable, its disk's dry run
/// (`recovered_state`) is checked against opening a store on the same disk image: the
/// tools an operator trusts must recover what opening recovers.
///
/// # Errors
/// When opening recovers more than the dry run said (the dry run is wrong).
fn dry_run_agrees_with_opening(world: &mut World, j: usize) -> Result<(), String> {
    let opened = world.nodes[j]
        .durable_truth_by_opening()
        .map_err(|e| world.fail(e))?;
    let Some(opened) = opened else {
        return Ok(());
    };
    let r = &world.regions[j];
    if let Some(what) = excess_as(world, &opened, &r.ever_durable, "recovered_state says") {
        let why = world.nodes[j].describe_recovery();
        return Err(world.fail(format!(
            "recovered_state of r{j}'s disk says less than opening it recovers: opening holds {what}; {why}"
        )));
    }
    Ok(())
}

/// The first entry of `claimed` that `held` does not cover, described.
fn excess(world: &World, claimed: &VersionVector, held: &VersionVector) -> Option<String> {
    excess_as(world, claimed, held, "its disk holds")
}

/// [`excess`] with `held` described as `held_is`.
fn excess_as(
    world: &World,
    claimed: &VersionVector,
    held: &VersionVector,
    held_is: &str,
) -> Option<String> {
    claimed
        .iter()
        .find(|(origin, seq)| held.get(*origin) < *seq)
        .map(|(origin, seq)| {
            let name = world
                .index_of(origin)
                .map_or_else(|| origin.to_string(), |o| format!("r{o}"));
            format!("{name}:{seq} ({held_is} {name}:{})", held.get(origin))
        })
}

/// I1 for region `j`: what it claimed on the wire since it opened, and (when `force`) what
/// its peers' status says it acknowledged, is covered by what its disk was ever seen to
/// hold durably. The disk's truth is read when the claims outgrew it (at the sampled rate,
/// or always when `force`).
///
/// # Errors
/// The claim or belief that its disk does not hold.
pub fn durable_claims(world: &mut World, j: usize, force: bool) -> Result<(), String> {
    if world.regions[j].phase == Phase::Dead {
        return Ok(());
    }
    let Some(id) = world.nodes[j].id() else {
        return Ok(());
    };
    // What peers believe comes from what `j` sent (its claims, of this run of its store or
    // of an earlier one, checked when that one stopped): reading the peers' status costs a
    // status call per peer, so it is done only when forced.
    let mut believed = VersionVector::new();
    let mut believer = None;
    for i in world.live().into_iter().filter(|_| force) {
        for (peer, _, acked) in world.nodes[i].beliefs() {
            if peer == id && !believed.dominates(&acked) {
                believed.merge(&acked);
                believer = Some(i);
            }
        }
    }
    let r = &world.regions[j];
    if r.ever_durable.dominates(&r.claims) && r.ever_durable.dominates(&believed) {
        return Ok(());
    }
    let calls = world.nodes[j].disk_calls();
    if r.truth_at_calls != Some(calls) {
        if !force && !world.rng.chance(world.params.truth_pm) {
            return Ok(());
        }
        world.count("disk truth read");
        let said = world.nodes[j].durable_vector();
        match world.nodes[j].durable_cover().map_err(|e| world.fail(e))? {
            Some(vv) => world.regions[j].ever_durable.merge(&vv),
            None => {
                world.count("disk truth unreadable");
                return Ok(());
            }
        }
        world.regions[j].truth_at_calls = Some(calls);
        // What the store's status counts as durable, at the same instant.
        let over = said.and_then(|v| {
            excess(world, &v, &world.regions[j].ever_durable)?;
            Some(v)
        });
        if over.is_some() {
            dry_run_agrees_with_opening(world, j)?;
        }
        if let Some(what) = over.and_then(|v| excess(world, &v, &world.regions[j].ever_durable)) {
            let why = world.nodes[j].describe_recovery();
            let what = format!("I1 violated: r{j}'s status counts {what} durable; {why}");
            world.violation(Invariant::I1, what)?;
        }
    }
    let r = &world.regions[j];
    if excess(world, &r.claims, &r.ever_durable).is_some() {
        dry_run_agrees_with_opening(world, j)?;
    }
    let r = &world.regions[j];
    if let Some(what) = excess(world, &r.claims, &r.ever_durable) {
        let why = world.nodes[j].describe_recovery();
        let what = format!("I1 violated: r{j} put {what} on the wire; {why}");
        world.violation(Invariant::I1, what)?;
        // Skipped: count each excess once.
        let claims = world.regions[j].claims.clone();
        world.regions[j].ever_durable.merge(&claims);
    }
    let r = &world.regions[j];
    if let Some(what) = excess(world, &believed, &r.ever_durable) {
        let by = believer.map_or_else(String::new, |b| format!("r{b}"));
        let what = format!("I1 violated: {by} believes r{j} acknowledged {what}");
        world.violation(Invariant::I1, what)?;
    }
    Ok(())
}
