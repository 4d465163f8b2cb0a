//! Workload W1: 100,000 sessions of 8 fields of 64 bytes, built with 800,000 one-field
//! writes, then 1,000,000 one-field updates and 1,000,000 whole-session reads, run against
//! session-ha's [`Replica`] and two references, with every final value checked.
//!
//! Run: `cargo run --release -p session-ha-benches --example w1` (all systems), or
//! `cargo run --release -p session-ha-benches --example w1 -- SYSTEM` (one system alone),
//! SYSTEM one of:
//!
//! - `plain`: `HashMap<Vec<u8>, HashMap<Vec<u8>, (Vec<u8>, u64)>>`, no CRDT, the `u64` a
//!   write counter;
//! - `crdts`: `crdts::Map<Vec<u8>, Lww, u64>` (crdts 7.3.2), `Lww` a newtype over
//!   `crdts::LWWReg<Vec<u8>, u64>` (see [`Lww`]), one register per (session, field) under
//!   the key `session/field`, one actor;
//! - `replica`: a [`Replica`] with the default [`ReplicaConfig`], written with one-field
//!   `put`s and read with `get_ref` (borrowed in place, as the NIF reads).
//!
//! Inputs come from three splitmix64 streams (build, updates, reads); a value is 64 bytes of
//! xorshift32 seeded from one draw. Every system gets the same owned session id (`Vec<u8>`)
//! and value (`Vec<u8>`) per write and consumes them as its API allows.
//!
//! For each system this reports the build time, updates/s, reads/s, `VmRSS` growth over the
//! build per session, and heap growth over the build per session (a counting allocator:
//! requested bytes live after the build minus before). Each system runs in a fresh process
//! (this program starts itself once per system), so memory freed by one cannot be reused by
//! the next, and every number in the table is measured in the same run. At the end each
//! process replays the build and update streams into a plain array and compares every
//! (session, field) value with what the system returns; any difference exits non-zero.

use std::collections::HashMap;
use std::hint::black_box;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use crdts::{CmRDT, LWWReg, ResetRemove, VClock};
use session_ha::{ManualTime, Replica, ReplicaConfig, SessionId};
use session_ha_benches::memory::{heap_held, rss, Counting};
use session_ha_benches::replicas::{EAST, EPOCH_MS};
use session_ha_benches::Rng;

const SESSIONS: u64 = 100_000;
const FIELDS: usize = 8;
const SLOTS: u64 = SESSIONS * FIELDS as u64;
const UPDATES: u64 = 1_000_000;
const READS: u64 = 1_000_000;
const FIELD_KEYS: [&[u8]; FIELDS] = [b"f0", b"f1", b"f2", b"f3", b"f4", b"f5", b"f6", b"f7"];
const SEED_BUILD: u64 = 0x5EED_0001;
const SEED_UPDATES: u64 = 0x5EED_0002;
const SEED_READS: u64 = 0x5EED_0003;
const SYSTEMS: [&str; 3] = ["plain", "crdts", "replica"];
const HEADER: &str =
    "| system | build s | updates/s | reads/s | RSS B/session | heap B/session |\n\
                      | --- | --- | --- | --- | --- | --- |";

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The 64-byte value made from one draw `x`: 16 rounds of xorshift32 from
/// `u32(x >> 32) ^ u32(x)` (`0x9E3779B9` if zero), each state appended little-endian.
fn value(x: u64) -> [u8; 64] {
    let mut s = ((x >> 32) as u32) ^ (x as u32);
    if s == 0 {
        s = 0x9E37_79B9;
    }
    let mut out = [0u8; 64];
    for chunk in out.chunks_exact_mut(4) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        chunk.copy_from_slice(&s.to_le_bytes());
    }
    out
}

/// The id of session `s`: `session-` and 8 decimal digits.
fn session_key(s: u64) -> Vec<u8> {
    format!("session-{s:08}").into_bytes()
}

/// A session store under test: one-field writes, whole-session reads.
trait Store {
    /// Sets field `field` of `session` to `value` (creating either if needed).
    fn write(&mut self, session: Vec<u8>, field: usize, value: Vec<u8>);
    /// Reads the whole session and touches every field value: returns (fields seen, the
    /// sum of each value's last byte).
    fn read(&self, session: &[u8]) -> (u64, u64);
    /// The current value of one field, for the final check.
    fn value(&self, session: &[u8], field: usize) -> Option<Vec<u8>>;
}

/// One session of [`Plain`]: field key -> (value, write counter at its last write).
type PlainFields = HashMap<Vec<u8>, (Vec<u8>, u64)>;

/// The reference without a CRDT: nested hash maps, each value with a write counter.
#[derive(Default)]
struct Plain {
    /// Session id -> field key -> (value, write counter at its last write).
    map: HashMap<Vec<u8>, PlainFields>,
    /// Writes so far.
    clock: u64,
}

impl Store for Plain {
    fn write(&mut self, session: Vec<u8>, field: usize, value: Vec<u8>) {
        self.clock += 1;
        let fields = self.map.entry(session).or_default();
        match fields.get_mut(FIELD_KEYS[field]) {
            Some(slot) => *slot = (value, self.clock),
            None => {
                fields.insert(FIELD_KEYS[field].to_vec(), (value, self.clock));
            }
        }
    }

    fn read(&self, session: &[u8]) -> (u64, u64) {
        self.map.get(session).map_or((0, 0), |fields| {
            fields.values().fold((0, 0), |(n, sum), (v, _)| {
                (n + 1, sum + u64::from(v[v.len() - 1]))
            })
        })
    }

    fn value(&self, session: &[u8], field: usize) -> Option<Vec<u8>> {
        let (v, _) = self.map.get(session)?.get(FIELD_KEYS[field])?;
        Some(v.clone())
    }
}

/// A last-writer-wins register as a value of `crdts::Map`. crdts 7.3.2's `Map` takes only
/// values that implement `ResetRemove`, which `LWWReg` does not (it holds no clock), so the
/// register is wrapped: same layout, `CmRDT` delegated, and a reset-remove that keeps the
/// value. That is correct here because the workload never removes; the map drops an entry
/// whose own clock a remove empties either way.
#[derive(Debug, Clone, Default, PartialEq)]
struct Lww(LWWReg<Vec<u8>, u64>);

impl CmRDT for Lww {
    type Op = LWWReg<Vec<u8>, u64>;
    type Validation = crdts::lwwreg::Validation;

    fn validate_op(&self, op: &Self::Op) -> Result<(), Self::Validation> {
        self.0.validate_op(op)
    }

    fn apply(&mut self, op: Self::Op) {
        self.0.apply(op);
    }
}

impl ResetRemove<u64> for Lww {
    fn reset_remove(&mut self, _clock: &VClock<u64>) {}
}

/// The crdts reference: one map of last-writer-wins registers keyed `session/field`,
/// written by one actor, the register's marker the map's dot counter (unique, increasing).
#[derive(Default)]
struct Crdts {
    /// (session id, `/`, field key) -> register.
    map: crdts::Map<Vec<u8>, Lww, u64>,
}

/// The actor id of the one writer of [`Crdts`].
const ACTOR: u64 = 1;

/// The key of one register of [`Crdts`]: session id, `/`, field key, written into `buf`.
fn register_key(buf: &mut Vec<u8>, session: &[u8], field: usize) {
    buf.clear();
    buf.extend_from_slice(session);
    buf.push(b'/');
    buf.extend_from_slice(FIELD_KEYS[field]);
}

impl Store for Crdts {
    fn write(&mut self, mut session: Vec<u8>, field: usize, value: Vec<u8>) {
        session.push(b'/');
        session.extend_from_slice(FIELD_KEYS[field]);
        let ctx = self.map.read_ctx().derive_add_ctx(ACTOR);
        let op = self.map.update(session, ctx, |_, ctx| LWWReg {
            val: value,
            marker: ctx.dot.counter,
        });
        self.map.apply(op);
    }

    fn read(&self, session: &[u8]) -> (u64, u64) {
        let mut key = Vec::with_capacity(session.len() + 3);
        (0..FIELDS).fold((0, 0), |(n, sum), f| {
            register_key(&mut key, session, f);
            match self.map.get(&key).val {
                Some(Lww(reg)) => (n + 1, sum + u64::from(reg.val[reg.val.len() - 1])),
                None => (n, sum),
            }
        })
    }

    fn value(&self, session: &[u8], field: usize) -> Option<Vec<u8>> {
        let mut key = Vec::new();
        register_key(&mut key, session, field);
        self.map.get(&key).val.map(|Lww(reg)| reg.val)
    }
}

impl Store for Replica {
    fn write(&mut self, session: Vec<u8>, field: usize, value: Vec<u8>) {
        // The field key is copied, as the NIF copies it from an Erlang binary.
        self.put(
            SessionId::from(session),
            Bytes::copy_from_slice(FIELD_KEYS[field]),
            Bytes::from(value),
        )
        .expect("a 64-byte field is within the default limits");
    }

    fn read(&self, session: &[u8]) -> (u64, u64) {
        // Borrowed in place (`get_ref`), as the NIF encodes a session it reads.
        self.get_ref(session).map_or((0, 0), |view| {
            view.fields().fold((0, 0), |(n, sum), (_, v)| {
                (n + 1, sum + u64::from(v[v.len() - 1]))
            })
        })
    }

    fn value(&self, session: &[u8], field: usize) -> Option<Vec<u8>> {
        // Through `get_ref`, the read path the workload measures.
        self.get_ref(session)?
            .fields()
            .find(|(k, _)| *k == FIELD_KEYS[field])
            .map(|(_, v)| v.to_vec())
    }
}

/// Runs the workload on the store `make` builds, prints its table row and returns how many
/// final values differ from the expected ones.
fn run<S: Store>(name: &str, make: impl FnOnce() -> S) -> u64 {
    let (rss_before, heap_before) = (rss(), heap_held());
    let mut store = make();
    let mut build = Rng::new(SEED_BUILD);
    let start = Instant::now();
    for s in 0..SESSIONS {
        for f in 0..FIELDS {
            store.write(session_key(s), f, value(build.next_u64()).to_vec());
        }
    }
    let build_s = start.elapsed().as_secs_f64();
    let (rss_after, heap_after) = (rss(), heap_held());

    let mut updates = Rng::new(SEED_UPDATES);
    let start = Instant::now();
    for _ in 0..UPDATES {
        let p = updates.next_u64() % SLOTS;
        let v = value(updates.next_u64()).to_vec();
        store.write(
            session_key(p / FIELDS as u64),
            (p % FIELDS as u64) as usize,
            v,
        );
    }
    let updates_s = start.elapsed().as_secs_f64();

    let mut reads = Rng::new(SEED_READS);
    let (mut seen, mut sum) = (0u64, 0u64);
    let start = Instant::now();
    for _ in 0..READS {
        let (n, s) = store.read(black_box(&session_key(reads.next_u64() % SESSIONS)));
        seen += n;
        sum = sum.wrapping_add(s);
    }
    let reads_s = start.elapsed().as_secs_f64();
    black_box(sum);

    let per_session = |after: u64, before: u64| after.saturating_sub(before) as f64 / 1e5;
    println!(
        "| {name} | {build_s:.3} | {:.0} | {:.0} | {:.0} | {:.0} |",
        UPDATES as f64 / updates_s,
        READS as f64 / reads_s,
        per_session(rss_after, rss_before),
        per_session(heap_after as u64, heap_before as u64),
    );
    let mut mismatches = u64::from(seen != READS * FIELDS as u64);
    if seen != READS * FIELDS as u64 {
        eprintln!(
            "{name}: reads saw {seen} fields, expected {}",
            READS * FIELDS as u64
        );
    }
    mismatches += check(name, &store);
    mismatches
}

/// Replays the build and update streams into a plain array and compares every final value
/// with what `store` returns; prints the outcome and returns the number of differences.
fn check(name: &str, store: &impl Store) -> u64 {
    let mut expected = vec![[0u8; 64]; SLOTS as usize];
    let mut build = Rng::new(SEED_BUILD);
    for slot in expected.iter_mut() {
        *slot = value(build.next_u64());
    }
    let mut updates = Rng::new(SEED_UPDATES);
    for _ in 0..UPDATES {
        let p = updates.next_u64() % SLOTS;
        expected[p as usize] = value(updates.next_u64());
    }
    let mut differ = 0u64;
    for (p, want) in expected.iter().enumerate() {
        let (s, f) = (p as u64 / FIELDS as u64, p % FIELDS);
        let got = store.value(&session_key(s), f);
        if got.as_deref() != Some(&want[..]) {
            if differ == 0 {
                eprintln!("{name}: session {s} field f{f}: got {got:?}, expected {want:?}");
            }
            differ += 1;
        }
    }
    if differ == 0 {
        println!("check {name}: all {SLOTS} final values match");
    } else {
        println!("check {name}: {differ} of {SLOTS} final values DIFFER");
    }
    differ
}

/// Runs one system in this process; true when every final value matched.
fn run_one(system: &str) -> bool {
    let mismatches = match system {
        "plain" => run(system, Plain::default),
        "crdts" => run(system, Crdts::default),
        "replica" => run(system, || {
            let time = Arc::new(ManualTime::new(EPOCH_MS));
            Replica::new(EAST, 0, ReplicaConfig::default(), time)
        }),
        other => panic!("unknown system {other}; expected one of {SYSTEMS:?}"),
    };
    mismatches == 0
}

/// The 1, 5 and 15 minute load averages.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(system) = args.iter().find(|a| SYSTEMS.contains(&a.as_str())) {
        if !args.iter().any(|a| a == "--child") {
            println!("{HEADER}");
        }
        std::process::exit(if run_one(system) { 0 } else { 1 });
    }
    println!("W1: {SESSIONS} sessions x {FIELDS} fields x 64 B; {UPDATES} updates, {READS} reads");
    println!("load average before: {}\n", load());
    let me = std::env::current_exe().expect("the path of this program");
    let (mut rows, mut checks, mut ok) = (Vec::new(), Vec::new(), true);
    for system in SYSTEMS {
        let out = Command::new(&me)
            .args([system, "--child"])
            .stderr(Stdio::inherit())
            .output()
            .expect("this program runs again");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        rows.extend(
            stdout
                .lines()
                .filter(|l| l.starts_with('|'))
                .map(String::from),
        );
        checks.extend(
            stdout
                .lines()
                .filter(|l| l.starts_with("check"))
                .map(String::from),
        );
        if !out.status.success() {
            checks.push(format!("{system}: exited with {}", out.status));
            ok = false;
        }
    }
    println!("{HEADER}");
    for row in &rows {
        println!("{row}");
    }
    println!();
    for line in &checks {
        println!("{line}");
    }
    println!("\nload average after: {}", load());
    if !ok {
        eprintln!("value check FAILED");
        std::process::exit(1);
    }
    println!("value check passed for {}", SYSTEMS.join(", "));
}
