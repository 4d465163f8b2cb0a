//! A model test of the durable store: random writes of every kind (put, delete_field,
//! counter_add, set_add, set_remove, end, touch), snapshots and compactions, with power cuts
//! at random I/O calls (every call from there on fails; the first failing append may be
//! torn) and crashes (optionally tearing unsynced appends). After every crash the reopened
//! store equals a model `Replica` fed exactly the acknowledged writes, in order, plus at most
//! the one write that was in flight when the log failed: every write that returned Ok under
//! `WriteMode::WaitDurable` with `FsyncPolicy::Always` is there, and nothing else is. Views,
//! session ids and the digest root are compared, and every dot the store holds is in its
//! causal context.
#![allow(clippy::unwrap_used)] // test helpers panic on failure by design

mod common;

use std::sync::Arc;

use common::store::{assert_dots_known, dir, store_config, REGION, T0};
use common::within;
use proptest::prelude::*;
use session_ha::fs::{Fault, FaultyFs, Repeat};
use session_ha::replicate::Change;
use session_ha::{Error, ManualTime, Op, Replica, ReplicaConfig, Result, Store};

const IDS: [&str; 4] = ["a", "b", "c", "d"];
const KEYS: [&str; 3] = ["x", "y", "z"];

#[derive(Clone, Debug)]
enum Action {
    Put(usize, usize, u8),
    DeleteField(usize, usize),
    CounterAdd(usize, usize, i8),
    SetAdd(usize, usize, u8),
    SetRemove(usize, usize, u8),
    End(usize),
    Touch(usize, u8),
    Snapshot,
    Compact,
    /// Every I/O call from `after` calls on fails (torn: the first failing append writes half
    /// its bytes); the crash comes with the next `Crash` (or at the end).
    PowerCut {
        after: u8,
        torn: bool,
    },
    /// A power cut now, tearing unsynced appends by `tear` if given; then reopen and compare.
    Crash {
        tear: Option<u64>,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let s = 0..IDS.len();
    let k = 0..KEYS.len();
    prop_oneof![
        6 => (s.clone(), k.clone(), any::<u8>()).prop_map(|(s, k, v)| Action::Put(s, k, v)),
        2 => (s.clone(), k.clone()).prop_map(|(s, k)| Action::DeleteField(s, k)),
        3 => (s.clone(), k.clone(), any::<i8>()).prop_map(|(s, k, d)| Action::CounterAdd(s, k, d)),
        3 => (s.clone(), k.clone(), 0..4u8).prop_map(|(s, k, e)| Action::SetAdd(s, k, e)),
        2 => (s.clone(), k, 0..4u8).prop_map(|(s, k, e)| Action::SetRemove(s, k, e)),
        1 => s.clone().prop_map(Action::End),
        1 => (s, 1..40u8).prop_map(|(s, t)| Action::Touch(s, t)),
        2 => Just(Action::Snapshot),
        1 => Just(Action::Compact),
        1 => (0..60u8, any::<bool>()).prop_map(|(after, torn)| Action::PowerCut { after, torn }),
        2 => proptest::option::of(any::<u64>()).prop_map(|tear| Action::Crash { tear }),
    ]
}

/// Applies a write action to a store or to a replica (same calls, same arguments).
trait Target {
    fn put(&mut self, s: &str, k: &str, v: Vec<u8>) -> Result<Option<Op>>;
    fn delete_field(&mut self, s: &str, k: &str) -> Result<Option<Op>>;
    fn counter_add(&mut self, s: &str, k: &str, d: i64) -> Result<Option<Op>>;
    fn set_add(&mut self, s: &str, k: &str, e: Vec<u8>) -> Result<Option<Op>>;
    fn set_remove(&mut self, s: &str, k: &str, e: Vec<u8>) -> Result<Option<Op>>;
    fn end(&mut self, s: &str) -> Result<Option<Op>>;
    fn touch(&mut self, s: &str, ttl: u64) -> Result<Option<Op>>;
}

impl Target for Replica {
    fn put(&mut self, s: &str, k: &str, v: Vec<u8>) -> Result<Option<Op>> {
        Replica::put(self, s, k.to_owned(), v).map(Some)
    }
    fn delete_field(&mut self, s: &str, k: &str) -> Result<Option<Op>> {
        Replica::delete_field(self, s, k.to_owned()).map(Some)
    }
    fn counter_add(&mut self, s: &str, k: &str, d: i64) -> Result<Option<Op>> {
        Replica::counter_add(self, s, k.to_owned(), d).map(Some)
    }
    fn set_add(&mut self, s: &str, k: &str, e: Vec<u8>) -> Result<Option<Op>> {
        Replica::set_add(self, s, k.to_owned(), e).map(Some)
    }
    fn set_remove(&mut self, s: &str, k: &str, e: Vec<u8>) -> Result<Option<Op>> {
        Replica::set_remove(self, s, k.to_owned(), e).map(Some)
    }
    fn end(&mut self, s: &str) -> Result<Option<Op>> {
        Replica::end(self, s).map(Some)
    }
    fn touch(&mut self, s: &str, ttl: u64) -> Result<Option<Op>> {
        Replica::touch(self, s, ttl).map(Some)
    }
}

impl Target for &Store {
    fn put(&mut self, s: &str, k: &str, v: Vec<u8>) -> Result<Option<Op>> {
        Store::put(self, s, k.to_owned(), v).map(|_| None)
    }
    fn delete_field(&mut self, s: &str, k: &str) -> Result<Option<Op>> {
        Store::delete_field(self, s, k.to_owned()).map(|_| None)
    }
    fn counter_add(&mut self, s: &str, k: &str, d: i64) -> Result<Option<Op>> {
        Store::counter_add(self, s, k.to_owned(), d).map(|_| None)
    }
    fn set_add(&mut self, s: &str, k: &str, e: Vec<u8>) -> Result<Option<Op>> {
        Store::set_add(self, s, k.to_owned(), e).map(|_| None)
    }
    fn set_remove(&mut self, s: &str, k: &str, e: Vec<u8>) -> Result<Option<Op>> {
        Store::set_remove(self, s, k.to_owned(), e).map(|_| None)
    }
    fn end(&mut self, s: &str) -> Result<Option<Op>> {
        Store::end(self, s).map(|_| None)
    }
    fn touch(&mut self, s: &str, ttl: u64) -> Result<Option<Op>> {
        Store::touch(self, s, ttl).map(|_| None)
    }
}

/// Runs a write action on `t`; `None` for actions that are not writes.
fn apply(t: &mut impl Target, a: &Action) -> Option<Result<Option<Op>>> {
    Some(match *a {
        Action::Put(s, k, v) => t.put(IDS[s], KEYS[k], vec![v; 1 + v as usize % 5]),
        Action::DeleteField(s, k) => t.delete_field(IDS[s], KEYS[k]),
        Action::CounterAdd(s, k, d) => t.counter_add(IDS[s], KEYS[k], i64::from(d)),
        Action::SetAdd(s, k, e) => t.set_add(IDS[s], KEYS[k], vec![b'e', e]),
        Action::SetRemove(s, k, e) => t.set_remove(IDS[s], KEYS[k], vec![b'e', e]),
        Action::End(s) => t.end(IDS[s]),
        Action::Touch(s, ttl) => t.touch(IDS[s], u64::from(ttl)),
        _ => return None,
    })
}

/// One run: the store, the model, and what the model knows about durability.
struct Run {
    fs: FaultyFs,
    time: ManualTime,
    store: Option<Store>,
    /// Every incarnation the store has been, oldest first (a crash that cuts a tail makes it
    /// continue as a new one).
    incarnations: Vec<u32>,
    model: Replica,
    /// Ops acknowledged (write returned Ok), in order.
    acked: Vec<Op>,
    /// The write in flight when the log failed: applied in memory, maybe durable.
    in_flight: Option<Op>,
    /// A write failed since the last reopen: the log refuses everything until then.
    log_failed: bool,
    crashes: usize,
}

impl Run {
    fn open(fs: &FaultyFs, time: &ManualTime) -> Store {
        Store::open_with(
            Arc::new(fs.clone()),
            dir(),
            store_config(),
            Arc::new(time.clone()),
        )
        .unwrap()
        .0
    }

    fn new() -> Run {
        let fs = FaultyFs::new();
        let time = ManualTime::new(T0);
        let store = Run::open(&fs, &time);
        let incarnation = store.incarnation();
        Run {
            model: Replica::new(
                REGION,
                incarnation,
                ReplicaConfig::default(),
                Arc::new(time.clone()),
            ),
            fs,
            time,
            store: Some(store),
            incarnations: vec![incarnation],
            acked: Vec::new(),
            in_flight: None,
            log_failed: false,
            crashes: 0,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn step(&mut self, a: &Action, at: usize) {
        // Every op gets its own millisecond: timestamps never depend on clock history.
        self.time.advance(1);
        match a {
            Action::Snapshot => drop(self.store().snapshot()),
            Action::Compact => drop(self.store().compact()),
            Action::PowerCut { after, torn } => {
                let fault = if *torn {
                    Fault::TornThenEio
                } else {
                    Fault::Eio
                };
                let nth = self.fs.calls(None) + u64::from(*after);
                self.fs.fail(None, nth, fault, Repeat::FromThenOn);
            }
            Action::Crash { tear } => self.crash(*tear, at),
            write => self.write(write, at),
        }
    }

    fn write(&mut self, a: &Action, at: usize) {
        let store = self.store.as_ref().unwrap();
        let got = apply(&mut &*store, a).unwrap();
        if self.log_failed {
            let e = got.expect_err("the log failed earlier: every write is refused");
            assert!(
                matches!(e, Error::Poisoned(_) | Error::NoSpace { .. }),
                "{e:?}"
            );
        } else {
            let expected = apply(&mut self.model, a).unwrap();
            match (expected, got) {
                (Ok(op), Ok(_)) => self.acked.push(op.unwrap()),
                (Ok(op), Err(Error::Poisoned(_) | Error::NoSpace { .. })) => {
                    self.in_flight = op;
                    self.log_failed = true;
                }
                (Err(e), Err(g)) => assert_eq!(e.kind(), g.kind(), "action {at} {a:?}"),
                (e, g) => panic!("action {at} {a:?}: model {e:?}, store {g:?}"),
            }
        }
    }

    /// A replica holding exactly `ops`, as the store's current incarnation.
    fn replay(&self, ops: &[Op]) -> Replica {
        let mut r = Replica::new(
            REGION,
            self.incarnations[0],
            ReplicaConfig::default(),
            Arc::new(self.time.clone()),
        );
        for op in ops {
            r.replay(&Change::Op(op.clone()));
        }
        for &i in &self.incarnations[1..] {
            r.reincarnate(i);
        }
        r
    }

    fn same(store: &Store, model: &Replica) -> bool {
        store.digest_root().unwrap() == model.digests().root()
            && store.session_ids().unwrap() == model.session_ids()
            && IDS
                .iter()
                .all(|id| store.get(id.as_bytes()).unwrap() == model.get(id.as_bytes()))
    }

    fn crash(&mut self, tear: Option<u64>, at: usize) {
        self.crashes += 1;
        common::store::crash(&self.fs, self.store.take(), tear);
        let (store, report) = Store::open_with(
            Arc::new(self.fs.clone()),
            dir(),
            store_config(),
            Arc::new(self.time.clone()),
        )
        .unwrap_or_else(|e| panic!("crash at action {at}: reopen failed: {e}"));
        assert!(report.fallbacks.is_empty(), "{:?}", report.fallbacks);
        // Nothing on disk says where a crashed run's log ended: the store continues as a
        // new incarnation after every crash (I2).
        assert!(report.reincarnated_from.is_some(), "{report:?}");
        assert!(
            !self.incarnations.contains(&store.incarnation()),
            "{report:?}"
        );
        self.incarnations.push(store.incarnation());
        assert_eq!(Some(&store.incarnation()), self.incarnations.last());
        let acked = self.replay(&self.acked);
        let model = if Run::same(&store, &acked) {
            acked
        } else {
            let op = self.in_flight.clone().unwrap_or_else(|| {
                panic!(
                    "crash at action {at}: the store is not the acknowledged prefix \
                     ({} ops); store {:?}, model {:?}",
                    self.acked.len(),
                    IDS.iter()
                        .map(|i| store.get(i.as_bytes()))
                        .collect::<Vec<_>>(),
                    IDS.iter()
                        .map(|i| acked.get(i.as_bytes()))
                        .collect::<Vec<_>>(),
                )
            });
            self.acked.push(op);
            let with = self.replay(&self.acked);
            assert!(
                Run::same(&store, &with),
                "crash at action {at}: the store is neither the acknowledged prefix nor that \
                 plus the write in flight"
            );
            with
        };
        assert_dots_known(&store, &format!("crash at action {at}"));
        let v = store.verify().unwrap();
        assert!(v.is_intact(), "crash at action {at}: {:?}", v.problems);
        self.model = model;
        self.in_flight = None;
        self.log_failed = false;
        self.store = Some(store);
    }
}

fn run(actions: Vec<Action>) -> usize {
    let mut r = Run::new();
    for (i, a) in actions.iter().enumerate() {
        r.step(a, i);
    }
    let tear = Some(actions.len() as u64);
    r.crash(tear, actions.len());
    r.crashes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_recovered_store_is_the_acknowledged_prefix(
        actions in proptest::collection::vec(action(), 1..70)
    ) {
        within(60, move || run(actions));
    }
}
