//! The simulator's assertions are able to fail: after a clean run, a write that reached one
//! survivor only, content that no acknowledged op explains, and a session reading as present
//! after it was seen to end are each reported.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use session_ha_tests::sim::{check, simulate, Params, World};

/// A clean run with a dead replica and a few live sessions.
fn clean_world() -> World {
    for seed in 0..50 {
        let params = Params::for_seed(seed, 60);
        if params.death.is_none() {
            continue;
        }
        let (world, _) = simulate(params, false).unwrap();
        check::quiescent(&world).unwrap();
        if world
            .live()
            .iter()
            .all(|&i| !world.replicas[i].session_ids().is_empty())
        {
            return world;
        }
    }
    panic!("no seed gave a run with live sessions");
}

/// Replicates everything between the survivors, over the now reliable network.
fn settle(world: &mut World) {
    for _ in 0..4 {
        world.send_round(1000, 1000).unwrap();
        while world.deliver_due().unwrap() > 0 {}
    }
}

#[test]
fn a_write_only_one_survivor_holds_breaks_convergence() {
    let mut world = clean_world();
    let at = world.live()[0];
    let sid = world.replicas[at].session_ids()[0].clone();
    world.replicas[at].put(sid, "k0", "unshipped").unwrap();
    let err = check::quiescent(&world).unwrap_err();
    assert!(err.contains("digest root differs"), "{err}");
    assert!(err.contains("seed "), "{err}");
}

#[test]
fn content_no_acknowledged_op_explains_fails_the_oracle() {
    let mut world = clean_world();
    let at = world.live()[0];
    let sid = world.replicas[at].session_ids()[0].clone();
    // Replicated everywhere, so the survivors agree, but never recorded in the model.
    world.replicas[at].put(sid, "k0", "unrecorded").unwrap();
    settle(&mut world);
    let err = check::quiescent(&world).unwrap_err();
    assert!(!err.contains("digest root differs"), "{err}");
    assert!(err.contains("expected Expected"), "{err}");
}

#[test]
fn a_session_read_after_it_was_seen_to_end_is_a_resurrection() {
    let mut world = clean_world();
    let at = world.live()[0];
    let sid = world.replicas[at].session_ids()[0].clone();
    world.gone_seen[at].insert(sid);
    let err = check::step_invariants(&mut world).unwrap_err();
    assert!(err.contains("resurrected"), "{err}");
}
