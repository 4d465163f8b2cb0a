//! Resident memory of one [`Replica`] holding 100,000 sessions of 8 fields of 64 bytes,
//! read from `VmRSS` in `/proc/self/status`, with a breakdown by part.
//!
//! Run: `cargo run --release -p session-ha-benches --example memory [-- SESSIONS]`
//!
//! Ids, keys and values are exact-size copies, as the NIF makes them from Erlang binaries
//! (`Bytes::copy_from_slice`); each put copies its key too, as a NIF call does.
//!
//! Besides `VmRSS`, a counting allocator reports the bytes the case asked the allocator for
//! (requested sizes, without malloc's own headers and rounding).
//!
//! Each case runs in a fresh process (this program starts itself once per case), so memory
//! freed by one case cannot be reused by the next. A case reads `VmRSS` before and after
//! building its structure and prints the difference:
//!
//! - `replica`: a replica written with one `put_fields` of 8 fields per session (one op per
//!   session, so the op log holds one op per session);
//! - `replica_8_puts`: the same sessions written with 8 one-field puts each (8 ops per
//!   session; the op log keeps at most its default 200,000 ops);
//! - `replica_no_log`: as `replica`, with the op log bounded to 1 op: what the log costs is
//!   the difference;
//! - `replica_no_log_no_dirty`: as `replica_no_log`, with the set of sessions dirty since the
//!   last snapshot emptied (as a store's snapshot empties it);
//! - `digest_tree`: a digest tree of the same session ids alone (the ids are allocated again
//!   here; in a replica the tree shares them with the session map);
//! - `values`: only the ids, keys and values as `Bytes`, in vectors: the payload itself.

use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use session_ha::crdt::LwwRegister;
use session_ha::{
    Digest, DigestTree, ManualTime, Op, Replica, ReplicaConfig, SessionId, SessionState,
};
use session_ha_benches::memory::{heap_held, rss, Counting};
use session_ha_benches::replicas::{field_key, session_id, EAST, EPOCH_MS};
use session_ha_benches::Rng;

const FIELDS: usize = 8;
const VALUE_LEN: usize = 64;
const CASES: [&str; 6] = [
    "replica",
    "replica_8_puts",
    "replica_no_log",
    "replica_no_log_no_dirty",
    "digest_tree",
    "values",
];

#[global_allocator]
static GLOBAL: Counting = Counting;

fn replica(log_max_ops: usize) -> Replica {
    let config = ReplicaConfig {
        log_max_ops,
        ..ReplicaConfig::default()
    };
    Replica::new(EAST, 0, config, Arc::new(ManualTime::new(EPOCH_MS)))
}

/// Bytes made as the NIF makes them from Erlang binaries: one exact-size copy each.
fn copied(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// Session `i`'s id, as the NIF makes it.
fn id(i: u64) -> SessionId {
    SessionId(copied(session_id(i).as_bytes()))
}

/// 8 fields of 64 incompressible bytes, keys and values as the NIF makes them.
fn fields(rng: &mut Rng) -> Vec<(Bytes, Bytes)> {
    (0..FIELDS)
        .map(|j| (copied(&field_key(j)), copied(&rng.bytes(VALUE_LEN))))
        .collect()
}

/// Builds the case's structure and returns a one-line description of what it holds.
fn run(case: &str, sessions: u64) -> (String, Box<dyn std::any::Any>) {
    let mut rng = Rng::new(0x3e3);
    match case {
        "replica" | "replica_no_log" | "replica_no_log_no_dirty" => {
            let mut r = replica(if case == "replica" {
                ReplicaConfig::default().log_max_ops
            } else {
                1
            });
            for i in 0..sessions {
                r.put_fields(id(i), fields(&mut rng))
                    .expect("within the default limits");
            }
            if case == "replica_no_log_no_dirty" {
                drop(r.take_dirty());
            }
            let s = r.status();
            let what = format!(
                "{} sessions, op log {} ops / {} B",
                s.sessions, s.log_ops, s.log_bytes
            );
            (what, Box::new(r))
        }
        "replica_8_puts" => {
            let mut r = replica(ReplicaConfig::default().log_max_ops);
            for i in 0..sessions {
                for (k, v) in fields(&mut rng) {
                    r.put(id(i), k, v).expect("within the default limits");
                }
            }
            let s = r.status();
            let what = format!(
                "{} sessions, op log {} ops / {} B",
                s.sessions, s.log_ops, s.log_bytes
            );
            (what, Box::new(r))
        }
        "digest_tree" => {
            let mut t = DigestTree::new();
            for i in 0..sessions {
                let d = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()) | 1;
                t.update(&id(i), Digest(d));
            }
            (format!("{sessions} members"), Box::new(t))
        }
        "values" => {
            let v: Vec<(SessionId, Vec<(Bytes, Bytes)>)> =
                (0..sessions).map(|i| (id(i), fields(&mut rng))).collect();
            (format!("{sessions} x {FIELDS} values"), Box::new(v))
        }
        other => panic!("unknown case {other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sessions: u64 = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    if let Some(case) = args.iter().find(|a| CASES.contains(&a.as_str())) {
        let (before, heap_before) = (rss(), heap_held());
        let (what, held) = run(case, sessions);
        let (after, heap_after) = (rss(), heap_held());
        println!(
            "| `{case}` | {what} | {:.1} MB | {:.1} MB | {:.1} MB |",
            (after - before) as f64 / 1e6,
            heap_after.saturating_sub(heap_before) as f64 / 1e6,
            after as f64 / 1e6
        );
        drop(held);
        return;
    }
    println!("{sessions} sessions x {FIELDS} fields x {VALUE_LEN} B");
    println!(
        "sizes: Bytes {} B, LwwRegister {} B, SessionState {} B, Op {} B\n",
        std::mem::size_of::<Bytes>(),
        std::mem::size_of::<LwwRegister>(),
        std::mem::size_of::<SessionState>(),
        std::mem::size_of::<Op>()
    );
    println!("| case | holds | VmRSS growth | heap requested | VmRSS total |");
    println!("| --- | --- | --- | --- | --- |");
    let me = std::env::current_exe().expect("the path of this program");
    for case in CASES {
        let out = Command::new(&me)
            .arg(case)
            .arg(sessions.to_string())
            .output()
            .expect("this program runs again");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
        }
    }
}
