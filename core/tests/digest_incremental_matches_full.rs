//! The digest tree is maintained incrementally (a few entry terms per op); for every session
//! it must equal the digest computed from scratch, whatever mix of ops, merges and ends.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

use std::sync::Arc;

use proptest::prelude::*;
use session_ha::digest::session_digest;
use session_ha::{ManualTime, Message, Replica, ReplicaConfig};

#[derive(Debug, Clone)]
enum Step {
    Put(u8, u8, u8),
    Delete(u8, u8),
    Count(u8, u8, i8),
    Add(u8, u8, u8),
    Remove(u8, u8, u8),
    Touch(u8, u16),
    End(u8),
    Advance(u16),
    Sync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..6, 0u8..4, any::<u8>()).prop_map(|(s, k, v)| Step::Put(s, k, v)),
        1 => (0u8..6, 0u8..4).prop_map(|(s, k)| Step::Delete(s, k)),
        2 => (0u8..6, 0u8..3, any::<i8>()).prop_map(|(s, k, d)| Step::Count(s, k, d)),
        2 => (0u8..6, 0u8..2, 0u8..4).prop_map(|(s, k, e)| Step::Add(s, k, e)),
        1 => (0u8..6, 0u8..2, 0u8..4).prop_map(|(s, k, e)| Step::Remove(s, k, e)),
        1 => (0u8..6, 1u16..500).prop_map(|(s, t)| Step::Touch(s, t)),
        1 => (0u8..6).prop_map(Step::End),
        1 => (0u16..300).prop_map(Step::Advance),
        1 => Just(Step::Sync),
    ]
}

fn check(r: &Replica) {
    for (id, state) in r.sessions() {
        assert_eq!(r.digests().get(id), session_digest(id, state), "{id:?}");
    }
}

proptest! {
    #[test]
    fn incremental_digests_equal_digests_from_scratch(steps in prop::collection::vec((any::<bool>(), step()), 1..80)) {
        let time = ManualTime::new(1_000);
        let mut a = Replica::new("a", 0, ReplicaConfig::default(), Arc::new(time.clone()));
        let mut b = Replica::new("b", 0, ReplicaConfig::default(), Arc::new(time.clone()));
        a.add_peer(b.id(), "b").unwrap();
        b.add_peer(a.id(), "a").unwrap();
        for (on_a, s) in steps {
            let r = if on_a { &mut a } else { &mut b };
            let sid = |s: u8| format!("s{s}");
            let _ = match s {
                Step::Put(s, k, v) => r.put(sid(s).as_str(), format!("k{k}"), vec![v]).map(|_| ()),
                Step::Delete(s, k) => r.delete_field(sid(s).as_str(), format!("k{k}")).map(|_| ()),
                Step::Count(s, k, d) => r.counter_add(sid(s).as_str(), format!("c{k}"), i64::from(d)).map(|_| ()),
                Step::Add(s, k, e) => r.set_add(sid(s).as_str(), format!("t{k}"), vec![e]).map(|_| ()),
                Step::Remove(s, k, e) => r.set_remove(sid(s).as_str(), format!("t{k}"), vec![e]).map(|_| ()),
                Step::Touch(s, t) => r.touch(sid(s).as_str(), u64::from(t)).map(|_| ()),
                Step::End(s) => r.end(sid(s).as_str()).map(|_| ()),
                Step::Advance(ms) => { time.advance(u64::from(ms)); r.tick(); Ok(()) }
                Step::Sync => {
                    let (from, to) = if on_a { (&mut a, &mut b) } else { (&mut b, &mut a) };
                    while let Some(f) = from.frame_for(to.id()).unwrap() {
                        let reply = to.receive(&Message::Frame(f).encode()).unwrap().reply.unwrap();
                        from.receive(&reply).unwrap();
                    }
                    Ok(())
                }
            };
            check(&a);
            check(&b);
        }
    }
}
