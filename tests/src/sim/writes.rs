//! Random client writes on a running region, and their outcomes. The store returns no op,
//! so the op a write must have made is derived from what was asked and what the writer held
//! before (a counter's running totals, the adds a remove observes), with the dot and stamp
//! the store handed out; frames carrying it later are checked against it (a dot naming two
//! ops). Field values and most set elements are unique per write, so that a refused write's
//! value can be looked for anywhere (I5).
//!
//! Outcomes: accepted (recorded; acknowledged once durable), refused because the session
//! is gone (only when the writer sees it gone), refused by a failed log or a fence (its value
//! must never be seen), or accepted then failed before it was durable (unknown until the
//! region reopens).

use std::collections::BTreeMap;

use bytes::Bytes;
use session_ha::crdt::{FieldWrite, SessionState};
use session_ha::{Dot, Op, OpKind, SessionId, WriteMode};

use super::node::{classify, Refusal, Write};
use super::region::PendingWrite;
use super::world::World;

const KEYS: [&str; 3] = ["k0", "k1", "k2"];
const COUNTERS: [&str; 2] = ["c0", "c1"];
const SETS: [&str; 2] = ["t0", "t1"];
const ELEMS: [&str; 4] = ["e0", "e1", "e2", "e3"];

/// Which sessions writes go to: a small window of ids that slides now and then, so that
/// sessions keep being created while old ones end or expire.
#[derive(Debug, Default)]
pub struct SessionPool {
    base: u64,
}

impl SessionPool {
    /// Picks a session id, sometimes sliding the window first, and sliding past ids some
    /// region already ended (writes to those are mostly refused).
    pub fn pick(&mut self, world: &mut World) -> SessionId {
        if world.rng.chance(30) {
            self.base += 1;
        }
        for _ in 0..3 {
            let id = SessionId::from(format!("s{}", self.base + world.rng.below(5)).as_str());
            if !world.model.has_end(&id) || world.rng.chance(200) {
                return id;
            }
            self.base += 1;
        }
        SessionId::from(format!("s{}", self.base).as_str())
    }
}

/// A value no other write writes.
fn unique(world: &mut World, writer: usize, what: &str) -> Bytes {
    world.next_value += 1;
    Bytes::from(format!("r{writer}-{what}{}", world.next_value))
}

/// A random live `(session, set, element)` region `at` holds, if any.
fn seen_element(world: &mut World, at: usize) -> Option<(SessionId, Bytes, Bytes)> {
    let now = world.now();
    let seen: Vec<(SessionId, Bytes, Bytes)> = world.nodes[at]
        .inspect(|r| {
            r.sessions()
                .filter(|(_, st)| st.is_live(now))
                .flat_map(|(sid, st)| {
                    st.sets.iter().flat_map(move |(k, set)| {
                        set.elements()
                            .map(move |e| (sid.clone(), k.clone(), e.clone()))
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    (!seen.is_empty()).then(|| seen[world.rng.index(seen.len())].clone())
}

/// What the writer held before the write: its own sequence number and its state of the
/// session.
struct Before {
    id: session_ha::ReplicaId,
    own_seq: u64,
    state: Option<SessionState>,
}

/// The write to make, the op it must make, and the unique value it writes.
fn choose(
    world: &mut World,
    at: usize,
    session: &SessionId,
    target: Option<(Bytes, Bytes)>,
    roll: u64,
    before: &Before,
) -> (Write, OpKind, Option<Bytes>) {
    let s = session.clone();
    let key = Bytes::from_static(world.rng.pick(&KEYS).as_bytes());
    match roll {
        0..=34 => {
            let n = if roll < 25 { 1 } else { world.rng.range(1, 3) };
            let mut fields = Vec::new();
            for _ in 0..n {
                let k = Bytes::from_static(world.rng.pick(&KEYS).as_bytes());
                fields.push((k, unique(world, at, "v")));
            }
            let by_key: BTreeMap<Bytes, Bytes> = fields.iter().cloned().collect();
            // A value overwritten within the call is never stored: track single puts only.
            let value = (n == 1).then(|| fields[0].1.clone());
            let expect = by_key
                .into_iter()
                .map(|(key, v)| FieldWrite {
                    key,
                    value: Some(v),
                })
                .collect();
            (Write::Put(s, fields), OpKind::Put(expect), value)
        }
        35..=44 => (
            Write::DeleteField(s, key.clone()),
            OpKind::Put(vec![FieldWrite { key, value: None }]),
            None,
        ),
        45..=59 => {
            let key = Bytes::from_static(world.rng.pick(&COUNTERS).as_bytes());
            let delta = world.rng.range(0, 10) as i64 - 5;
            let (mut p, mut n) = before
                .state
                .as_ref()
                .and_then(|st| st.counters.get(&key))
                .map_or((0, 0), |c| c.totals(before.id));
            if delta >= 0 {
                p += delta.unsigned_abs();
            } else {
                n += delta.unsigned_abs();
            }
            let expect = OpKind::Counter {
                key: key.clone(),
                p,
                n,
            };
            (Write::Counter(s, key, delta), expect, None)
        }
        60..=74 => {
            let set = Bytes::from_static(world.rng.pick(&SETS).as_bytes());
            let (elem, value) = if world.rng.chance(500) {
                let e = unique(world, at, "e");
                (e.clone(), Some(e))
            } else {
                (Bytes::from_static(world.rng.pick(&ELEMS).as_bytes()), None)
            };
            let expect = OpKind::SetAdd {
                key: set.clone(),
                elem: elem.clone(),
            };
            (Write::SetAdd(s, set, elem), expect, value)
        }
        75..=86 => {
            let (set, elem) = target.unwrap_or_else(|| {
                (
                    Bytes::from_static(world.rng.pick(&SETS).as_bytes()),
                    Bytes::from_static(world.rng.pick(&ELEMS).as_bytes()),
                )
            });
            let dots = before
                .state
                .as_ref()
                .and_then(|st| st.sets.get(&set))
                .map(|st| st.dots_of(&elem))
                .unwrap_or_default();
            let expect = OpKind::SetRemove {
                key: set.clone(),
                elem: elem.clone(),
                dots,
            };
            (Write::SetRemove(s, set, elem), expect, None)
        }
        87..=96 => {
            let ttl = world.rng.range(150, 2_500);
            let deadline_ms = world.now() + ttl;
            (Write::Touch(s, ttl), OpKind::Touch { deadline_ms }, None)
        }
        _ => (Write::End(s), OpKind::End, None),
    }
}

/// Whether region `at` must not write to `session`: its end was collected somewhere (a
/// write would start a new session under an id the cluster forgot, which erlmcp never
/// does), or some region ended it and `at` has never heard of it. Writes to an ended
/// session the writer holds (refused) or still holds live (concurrent with the end) stay.
fn off_limits(world: &World, session: &SessionId, before: &Before) -> bool {
    let ended_here = before.state.as_ref().is_some_and(SessionState::is_ended);
    (world.collected.contains(session) && !ended_here)
        || (world.model.has_end(session) && before.state.is_none())
}

/// Makes one random write on region `at` and bookkeeps its outcome.
///
/// # Errors
/// When the store refuses a valid write on a live session, accepts one on a session it
/// sees as gone, makes a number of ops other than one, or uses a dot twice.
pub fn random_write(world: &mut World, pool: &mut SessionPool, at: usize) -> Result<(), String> {
    if !world.regions[at].is_up() {
        return Ok(());
    }
    let roll = world.rng.below(100);
    // A remove mostly targets an element the writer sees, so that it observes adds.
    let target = if (75..=86).contains(&roll) && world.rng.chance(800) {
        seen_element(world, at)
    } else {
        None
    };
    let session = match &target {
        Some((sid, _, _)) => sid.clone(),
        None => pool.pick(world),
    };
    let before = world.nodes[at]
        .inspect(|r| Before {
            id: r.id(),
            own_seq: r.version_vector().get(r.id()),
            state: r.session_state(session.as_bytes()).cloned(),
        })
        .ok_or_else(|| world.fail(format!("r{at} is down")))?;
    if off_limits(world, &session, &before) {
        world.count("skipped: id ended elsewhere or collected");
        return Ok(());
    }
    let now = world.now();
    // Writable unless ended or past its deadline (an emptied session may be written again).
    let was_live = before
        .state
        .as_ref()
        .is_none_or(|s| !s.is_ended() && !s.is_expired(now));
    let target = target.map(|(_, set, elem)| (set, elem));
    let (write, kind, value) = choose(world, at, &session, target, roll, &before);
    let result = world.nodes[at].write(&write);
    let (id, after, ts) = world.nodes[at]
        .inspect(|r| (r.id(), r.version_vector().get(r.id()), r.clock_last()))
        .ok_or_else(|| world.fail(format!("r{at} went down during a write")))?;
    let made = after.saturating_sub(before.own_seq);
    let op = Op {
        dot: Dot {
            replica: id,
            seq: after,
        },
        ts,
        session: session.clone(),
        kind,
    };
    match result {
        Ok(lsn) => {
            if made != 1 {
                return Err(world.fail(format!("r{at} made {made} ops for one write {write:?}")));
            }
            if !was_live && !matches!(op.kind, OpKind::End) {
                return Err(world.fail(format!(
                    "r{at} accepted {op:?} on a session it sees as gone"
                )));
            }
            world.log(|| {
                format!(
                    "r{at} writes r{at}:{} {:?} {:?}",
                    op.dot.seq, op.session, op.kind
                )
            });
            world.count("writes");
            if matches!(&op.kind, OpKind::SetRemove { dots, .. } if !dots.is_empty()) {
                world.count("set removes that observed adds");
            }
            world.record_op(&op, &format!("r{at} wrote"))?;
            world.regions[at].pending.push(PendingWrite {
                lsn,
                dot: op.dot,
                value,
            });
            if world.params.write_modes[at] == WriteMode::WaitDurable {
                if world.nodes[at].durable_lsn() < lsn {
                    return Err(world.fail(format!(
                        "r{at} returned a waiting write before its record {lsn} was durable"
                    )));
                }
                world.on_durable(at);
            }
            Ok(())
        }
        Err(e) => {
            let refusal = classify(&e);
            match refusal {
                Refusal::SessionEnded if !was_live && made == 0 => {
                    world.count("refused: ended");
                    Ok(())
                }
                Refusal::LogFailed | Refusal::CatchingUp if made == 0 => {
                    world.log(|| format!("r{at} refused {write:?}: {e}"));
                    world.count("writes refused");
                    if let Some(v) = value {
                        world
                            .model
                            .make_invisible(v, format!("r{at} refused it: {e}"));
                    }
                    if refusal == Refusal::LogFailed {
                        world.on_log_failed(at, &e.to_string());
                    }
                    Ok(())
                }
                Refusal::LogFailed if made == 1 => {
                    // Taken by the log, then its sync failed: unknown until reopen.
                    world.log(|| {
                        format!("r{at} write r{at}:{} failed after logging: {e}", op.dot.seq)
                    });
                    world.count("writes of unknown outcome");
                    world.record_op(&op, &format!("r{at} wrote"))?;
                    world.regions[at].pending.push(PendingWrite {
                        lsn: u64::MAX,
                        dot: op.dot,
                        value,
                    });
                    world.on_log_failed(at, &e.to_string());
                    Ok(())
                }
                _ => Err(world.fail(format!(
                    "r{at} refused {write:?} on {session:?} ({made} ops made): {e}"
                ))),
            }
        }
    }
}
