//! Random local writes on a running replica. Each successful write is checked against what
//! was asked (and, for counters, the writer's running totals) and recorded in the model; a
//! refusal is only accepted when the writer itself sees the session ended or expired.

use bytes::Bytes;
use session_ha::crdt::FieldWrite;
use session_ha::{Error, Op, OpKind, SessionId};

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
    /// replica already ended (writes to those are mostly refused).
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

fn value(world: &mut World, writer: usize) -> Bytes {
    let len = world.rng.range(0, 12) as usize;
    let mut v = format!("r{writer}-").into_bytes();
    v.extend((0..len).map(|_| b'a' + world.rng.below(26) as u8));
    Bytes::from(v)
}

/// Whether replica `at` holds an end of `session` and has already forgotten the session.
fn collected_here(world: &World, at: usize, session: &SessionId) -> bool {
    let r = &world.replicas[at];
    r.session_state(session.as_bytes()).is_none()
        && world.model.has_end(session)
        && world
            .model
            .ends()
            .iter()
            .any(|(dot, sid)| sid == session && r.version_vector().contains(*dot))
}

/// A random live `(session, set, element)` replica `at` holds, if any.
fn seen_element(world: &mut World, at: usize) -> Option<(SessionId, Bytes, Bytes)> {
    let now = world.now();
    let seen: Vec<(SessionId, Bytes, Bytes)> = world.replicas[at]
        .sessions()
        .filter(|(_, st)| st.is_live(now))
        .flat_map(|(sid, st)| {
            st.sets.iter().flat_map(move |(k, set)| {
                set.elements()
                    .map(move |e| (sid.clone(), k.clone(), e.clone()))
            })
        })
        .collect();
    (!seen.is_empty()).then(|| seen[world.rng.index(seen.len())].clone())
}

/// Makes one random write on replica `at` and records it.
///
/// # Errors
/// When the engine refuses a valid write on a live session, accepts one on a session it
/// sees as gone, or returns an op that is not the write asked for.
pub fn random_write(world: &mut World, pool: &mut SessionPool, at: usize) -> Result<(), String> {
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
    if collected_here(world, at, &session) {
        // Session ids are never reused (erlmcp's are random): a replica that already
        // collected this session's end would take a write to it for a new session.
        world.count("skipped: id collected");
        return Ok(());
    }
    let now = world.now();
    // Writable unless ended or past its deadline (an emptied session may be written again).
    let was_live = world.replicas[at]
        .session_state(session.as_bytes())
        .is_none_or(|s| !s.is_ended() && !s.is_expired(now));
    let key = Bytes::from_static(world.rng.pick(&KEYS).as_bytes());
    let (result, expect): (Result<Op, Error>, Option<OpKind>) = match roll {
        0..=24 => {
            let v = value(world, at);
            let expect = OpKind::Put(vec![FieldWrite {
                key: key.clone(),
                value: Some(v.clone()),
            }]);
            (
                world.replicas[at].put(session.clone(), key, v),
                Some(expect),
            )
        }
        25..=34 => {
            let mut fields = Vec::new();
            for _ in 0..world.rng.range(1, 3) {
                let k = Bytes::from_static(world.rng.pick(&KEYS).as_bytes());
                fields.push((k, value(world, at)));
            }
            let mut by_key = std::collections::BTreeMap::new();
            for (k, v) in &fields {
                by_key.insert(k.clone(), v.clone());
            }
            let expect = by_key
                .into_iter()
                .map(|(key, v)| FieldWrite {
                    key,
                    value: Some(v),
                })
                .collect();
            (
                world.replicas[at].put_fields(session.clone(), fields),
                Some(OpKind::Put(expect)),
            )
        }
        35..=44 => {
            let expect = OpKind::Put(vec![FieldWrite {
                key: key.clone(),
                value: None,
            }]);
            (
                world.replicas[at].delete_field(session.clone(), key),
                Some(expect),
            )
        }
        45..=59 => {
            let key = Bytes::from_static(world.rng.pick(&COUNTERS).as_bytes());
            let delta = world.rng.range(0, 10) as i64 - 5;
            let result = world.replicas[at].counter_add(session.clone(), key.clone(), delta);
            let expect = match &result {
                Ok(_) => {
                    let origin = world.replicas[at].id();
                    let (p, n) = world.model.counter_totals(origin, &session, &key, delta);
                    Some(OpKind::Counter { key, p, n })
                }
                Err(_) => None,
            };
            (result, expect)
        }
        60..=74 => {
            let set = Bytes::from_static(world.rng.pick(&SETS).as_bytes());
            let elem = Bytes::from_static(world.rng.pick(&ELEMS).as_bytes());
            let expect = OpKind::SetAdd {
                key: set.clone(),
                elem: elem.clone(),
            };
            (
                world.replicas[at].set_add(session.clone(), set, elem),
                Some(expect),
            )
        }
        75..=86 => {
            let (set, elem) = match target {
                Some((_, set, elem)) => (set, elem),
                None => (
                    Bytes::from_static(world.rng.pick(&SETS).as_bytes()),
                    Bytes::from_static(world.rng.pick(&ELEMS).as_bytes()),
                ),
            };
            let dots = world.replicas[at]
                .session_state(session.as_bytes())
                .and_then(|s| s.sets.get(&set))
                .map(|s| s.dots_of(&elem))
                .unwrap_or_default();
            let expect = OpKind::SetRemove {
                key: set.clone(),
                elem: elem.clone(),
                dots,
            };
            (
                world.replicas[at].set_remove(session.clone(), set, elem),
                Some(expect),
            )
        }
        87..=96 => {
            let ttl = world.rng.range(150, 2_500);
            let expect = OpKind::Touch {
                deadline_ms: now + ttl,
            };
            (world.replicas[at].touch(session.clone(), ttl), Some(expect))
        }
        _ => (world.replicas[at].end(session.clone()), Some(OpKind::End)),
    };
    match result {
        Ok(op) => {
            let ended_anyway = matches!(op.kind, OpKind::End);
            if !was_live && !ended_anyway {
                return Err(world.fail(format!(
                    "r{at} accepted {op:?} on a session it sees as gone"
                )));
            }
            if Some(&op.kind) != expect.as_ref() || op.session != session {
                return Err(world.fail(format!(
                    "r{at} made {op:?}, asked for {expect:?} on {session:?}"
                )));
            }
            if op.dot.replica != world.replicas[at].id() {
                return Err(world.fail(format!("r{at} made an op with a foreign dot {op:?}")));
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
            world.model.record(&op).map_err(|e| world.fail(e))
        }
        Err(Error::SessionEnded) if !was_live => {
            world.count("refused: ended");
            Ok(())
        }
        Err(e) => Err(world.fail(format!("r{at} refused a write on {session:?}: {e}"))),
    }
}
