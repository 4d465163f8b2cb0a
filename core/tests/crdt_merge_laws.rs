//! `Merge::merge` is a join for every CRDT of a session: commutative, associative and
//! idempotent, on realistic states (subsets of one history applied in any order, ended
//! sessions, field and set tombstones, collected tombstones). Equal here means structurally
//! equal *and* byte-identical canonical encodings.

#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod support;

use std::fmt::Debug;

use bytes::Bytes;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use session_ha::crdt::{AwSet, LwwRegister, Merge, PnCounter, Stamp};
use session_ha::{Dot, ReplicaId, SessionState, Timestamp};

fn join<T: Merge + Clone>(a: &T, b: &T) -> T {
    let mut out = a.clone();
    out.merge(b);
    out
}

fn laws<T: Merge + Clone + PartialEq + Debug>(a: &T, b: &T, c: &T) {
    assert_eq!(join(a, b), join(b, a), "commutative");
    assert_eq!(join(&join(a, b), c), join(a, &join(b, c)), "associative");
    assert_eq!(join(a, a), *a, "idempotent");
}

fn dot() -> impl Strategy<Value = Dot> {
    (1u64..=3, 1u64..=6).prop_map(|(r, seq)| Dot {
        replica: ReplicaId(r),
        seq,
    })
}

fn register() -> impl Strategy<Value = LwwRegister> {
    // Few timestamps, dots and values, so that ties (and forged duplicates) happen.
    (
        0u64..3,
        dot(),
        proptest::option::of(prop_oneof![Just("a"), Just("b")]),
    )
        .prop_map(|(ts, dot, v)| {
            LwwRegister::new(
                Stamp {
                    ts: Timestamp(ts),
                    dot,
                },
                v.map(|s: &'static str| Bytes::from_static(s.as_bytes())),
            )
        })
}

fn counter() -> impl Strategy<Value = PnCounter> {
    let side = || btree_map((1u64..=3).prop_map(ReplicaId), 1u64..20, 0..3);
    (side(), side(), side()).prop_map(|(p, n, seqs)| PnCounter { p, n, seqs })
}

fn sets() -> impl Strategy<Value = Vec<AwSet>> {
    support::states(3).prop_map(|states| {
        states
            .into_iter()
            .map(|s| s.sets.get(&b"t0"[..]).cloned().unwrap_or_default())
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn lww_register_merge_is_a_join(rs in vec(register(), 3)) {
        laws(&rs[0], &rs[1], &rs[2]);
    }

    #[test]
    fn pn_counter_merge_is_a_join(cs in vec(counter(), 3)) {
        laws(&cs[0], &cs[1], &cs[2]);
    }

    #[test]
    fn aw_set_merge_is_a_join(s in sets()) {
        laws(&s[0], &s[1], &s[2]);
    }

    #[test]
    fn session_merge_is_a_join(s in support::states(3)) {
        laws(&s[0], &s[1], &s[2]);
        let canon = |x: &SessionState| x.canonical_bytes();
        prop_assert_eq!(canon(&join(&s[0], &s[1])), canon(&join(&s[1], &s[0])));
        prop_assert_eq!(
            canon(&join(&join(&s[0], &s[1]), &s[2])),
            canon(&join(&s[0], &join(&s[1], &s[2])))
        );
    }

    #[test]
    fn an_ended_session_absorbs_every_merge(s in support::states(2)) {
        let mut ended = s[0].clone();
        let stamp = Stamp { ts: Timestamp(u64::MAX), dot: Dot { replica: ReplicaId(9), seq: 1 } };
        ended.merge(&SessionState { ended: Some(stamp), ..SessionState::default() });
        let after = join(&ended, &s[1]);
        prop_assert!(after.is_ended());
        prop_assert!(after.canonical_bytes().is_empty());
        prop_assert_eq!(join(&s[1], &ended).ended, Some(stamp));
    }
}
