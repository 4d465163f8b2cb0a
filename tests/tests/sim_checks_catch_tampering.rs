//! The simulator's checks are able to fail. After a clean run (no crash, damage or
//! restore), each test breaks one thing behind the store's back or in what the simulator
//! knows, and the check that owns it reports it: convergence, the oracle, I1 (a claim the
//! disk does not hold), I2 (a dot naming two ops, also when the first op was lost in a crash
//! after a frame carried it; an op nobody saw may lose its dot), I3 (damage after a clean
//! close that lost records), durability across a restart, I4 (a session served after its end
//! was seen or collected, or holding content under an end its region has seen) and I5 (a refused value served).

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use bytes::Bytes;
use session_ha::{Dot, Op, OpKind, SessionId};
use session_ha_tests::sim::node::Write;
use session_ha_tests::sim::region::Phase;
use session_ha_tests::sim::{check, quiescence, simulate, Params, World};

/// A clean run in which every region holds live sessions.
fn clean_world() -> World {
    for seed in 0..50 {
        let (mut world, _) = simulate(Params::calm(seed, 40), false).unwrap();
        quiescence::quiescent(&mut world).unwrap();
        let all_hold = world
            .live()
            .iter()
            .all(|&i| world.nodes[i].client_view().is_ok_and(|v| !v.is_empty()));
        if all_hold {
            return world;
        }
    }
    panic!("no seed gave a run with live sessions");
}

/// A live session held by region `at`.
fn held_session(world: &World, at: usize) -> SessionId {
    world.nodes[at].client_view().unwrap()[0].0.clone()
}

/// Replicates everything between the regions, over the now reliable network.
fn settle(world: &mut World) {
    for _ in 0..4 {
        for at in world.live() {
            world.pump(at, true);
            world.send_from(at, 1000, 1000).unwrap();
        }
        while world.deliver_due().unwrap() > 0 {
            for at in world.live() {
                world.pump(at, true);
            }
        }
    }
}

fn put(world: &mut World, at: usize, value: &str) -> SessionId {
    let sid = held_session(world, at);
    let w = Write::Put(
        sid.clone(),
        vec![(Bytes::from("k0"), Bytes::from(value.to_string()))],
    );
    world.nodes[at].write(&w).unwrap();
    world.pump(at, true);
    sid
}

#[test]
fn a_write_only_one_survivor_holds_breaks_convergence() {
    let mut world = clean_world();
    put(&mut world, 0, "unshipped");
    let err = quiescence::quiescent(&mut world).unwrap_err();
    assert!(err.contains("digest root differs"), "{err}");
    assert!(err.contains("replay: SIM_SEED="), "{err}");
}

#[test]
fn content_no_recorded_op_explains_is_reported() {
    let mut world = clean_world();
    // Replicated everywhere, so the regions agree, but never recorded in the model.
    put(&mut world, 0, "unrecorded");
    settle(&mut world);
    let err = quiescence::quiescent(&mut world).unwrap_err();
    assert!(!err.contains("digest root differs"), "{err}");
    assert!(
        err.contains("on its own") || err.contains("expected Expected"),
        "{err}"
    );
}

#[test]
fn a_session_served_after_it_was_seen_to_end_is_a_resurrection() {
    let mut world = clean_world();
    let sid = held_session(&world, 0);
    world.regions[0].gone_seen.insert(sid);
    let err = check::step_invariants(&mut world).unwrap_err();
    assert!(
        err.contains("I4 violated") && err.contains("had seen end"),
        "{err}"
    );
}

#[test]
fn a_session_served_after_its_end_was_collected_is_a_resurrection() {
    let mut world = clean_world();
    let sid = held_session(&world, 1);
    // An end under the dot of a write only region 2 holds yet: the end survives there.
    put(&mut world, 2, "not-shipped");
    let end = world.nodes[2]
        .inspect(|r| session_ha::Dot {
            replica: r.id(),
            seq: r.version_vector().get(r.id()),
        })
        .unwrap();
    world.model.note_end(end, sid.clone());
    world.collected.insert(sid);
    let err = check::step_invariants(&mut world).unwrap_err();
    assert!(
        err.contains("I4 violated") && err.contains("collected"),
        "{err}"
    );
}

#[test]
fn an_end_a_region_has_seen_while_its_session_keeps_content_is_a_resurrection() {
    let mut world = clean_world();
    let sid = held_session(&world, 1);
    // Region 1 holds region 2's latest op (the run settled), so it has seen the "end" the
    // model is told of, while its copy of the session still has content.
    let end = world.nodes[2]
        .inspect(|r| session_ha::Dot {
            replica: r.id(),
            seq: r.version_vector().get(r.id()),
        })
        .unwrap();
    world.model.note_end(end, sid);
    let err = check::step_invariants(&mut world).unwrap_err();
    assert!(
        err.contains("I4 violated") && err.contains("holds the end of a session that is not ended"),
        "{err}"
    );
}

#[test]
fn a_collected_end_no_disk_holds_any_more_is_lost_data_not_a_resurrection() {
    let mut world = clean_world();
    let sid = held_session(&world, 1);
    // The end's dot is covered by no region: every copy of it was lost.
    let end = session_ha::Dot {
        replica: session_ha::ReplicaId::from_region("nowhere", 9),
        seq: 1,
    };
    world.model.note_end(end, sid.clone());
    world.collected.insert(sid);
    check::step_invariants(&mut world).unwrap();
    assert_eq!(world.stats.get("ends lost on every disk"), Some(&3));
}

#[test]
fn a_served_value_of_a_refused_write_breaks_i5() {
    let mut world = clean_world();
    put(&mut world, 0, "refused-after-all");
    world
        .model
        .make_invisible(Bytes::from("refused-after-all"), "tampered".into());
    let err = check::step_invariants(&mut world).unwrap_err();
    assert!(
        err.contains("I5 violated") && err.contains("tampered"),
        "{err}"
    );
}

#[test]
fn a_claim_the_disk_does_not_hold_breaks_i1() {
    let mut world = clean_world();
    let id = world.nodes[2].id().unwrap();
    let seq = world.own_seq(2);
    world.regions[2].claims.raise(id, seq + 5);
    let err = check::durable_claims(&mut world, 2, true).unwrap_err();
    assert!(err.contains("I1 violated: r2 put r2:"), "{err}");
}

#[test]
fn a_dot_naming_two_ops_breaks_i2() {
    let mut world = clean_world();
    let op = world.model.ops().next().unwrap().clone();
    let other = Op {
        kind: OpKind::Touch { deadline_ms: 1 },
        ..op
    };
    let err = world.record_op(&other, "tampered").unwrap_err();
    assert!(
        err.contains("I2 violated") && err.contains("names two ops"),
        "{err}"
    );
}

/// A write on region `at` with its op as the model would record it.
fn write_op(world: &mut World, at: usize, value: &str) -> Op {
    let sid = held_session(world, at);
    let key = Bytes::from("k1");
    let w = Write::Put(
        sid.clone(),
        vec![(key.clone(), Bytes::from(value.to_string()))],
    );
    world.nodes[at].write(&w).unwrap();
    let id = world.nodes[at].id().unwrap();
    let dot = Dot {
        replica: id,
        seq: world.own_seq(at),
    };
    let ts = world.nodes[at].inspect(|r| r.clock_last()).unwrap();
    let kind = OpKind::Put(vec![session_ha::crdt::FieldWrite {
        key,
        value: Some(Bytes::from(value.to_string())),
    }]);
    Op {
        dot,
        ts,
        session: sid,
        kind,
    }
}

#[test]
fn an_own_op_a_peer_may_hold_that_a_crash_took_must_not_lose_its_dot() {
    let mut world = clean_world();
    // Not pumped: the power cut takes it. Tell the model a frame carried it.
    let lost = write_op(&mut world, 0, "lost");
    world.record_op(&lost, "test").unwrap();
    world.model.mark_shipped(lost.dot);
    world.power_cut(0).unwrap();
    world.start(0).unwrap();
    assert!(world.model.get(lost.dot).is_some(), "the model forgot it");
    // The store comes back under a new id (I2), so it cannot make the op below: an op with
    // the lost op's dot and other content, as a store that reused the dot would make.
    assert_ne!(world.nodes[0].id().unwrap(), lost.dot.replica);
    let next = Op {
        kind: OpKind::Put(vec![session_ha::crdt::FieldWrite {
            key: Bytes::from("k1"),
            value: Some(Bytes::from("next")),
        }]),
        ..lost
    };
    let err = world.record_op(&next, "r0 wrote").unwrap_err();
    assert!(
        err.contains("I2 violated") && err.contains("names two ops"),
        "{err}"
    );
}

#[test]
fn an_own_op_nobody_saw_that_a_crash_took_may_lose_its_dot() {
    let mut world = clean_world();
    let lost = write_op(&mut world, 0, "lost");
    world.record_op(&lost, "test").unwrap();
    world.power_cut(0).unwrap();
    world.start(0).unwrap();
    assert!(world.model.get(lost.dot).is_none(), "the model kept it");
    let next = Op {
        kind: OpKind::Put(vec![session_ha::crdt::FieldWrite {
            key: Bytes::from("k1"),
            value: Some(Bytes::from("next")),
        }]),
        ..lost
    };
    world.record_op(&next, "r0 wrote").unwrap();
}

#[test]
fn records_lost_silently_after_a_clean_close_break_i3() {
    let mut world = clean_world();
    world.clean_stop(1).unwrap();
    let stop = world.regions[1].stop.as_mut().unwrap();
    // As if damage had taken the end of the log: the disk held more than recovery finds.
    stop.damage = Some("tampered".into());
    let mut more = stop.truth.clone().unwrap();
    let id = stop.id;
    more.raise(id, more.get(id) + 3);
    stop.truth = Some(more);
    world.regions[1].phase = Phase::Down { until: 0 };
    let err = world.start(1).unwrap_err();
    assert!(err.contains("I3 violated: after a clean close"), "{err}");
}

#[test]
fn records_lost_across_a_plain_restart_are_reported() {
    let mut world = clean_world();
    world.clean_stop(2).unwrap();
    let stop = world.regions[2].stop.as_mut().unwrap();
    let mut more = stop.truth.clone().unwrap();
    let id = stop.id;
    more.raise(id, more.get(id) + 1);
    stop.truth = Some(more);
    let err = world.start(2).unwrap_err();
    assert!(
        err.contains("reopened without records its disk held"),
        "{err}"
    );
}
