//! Instruction counts per operation on the paths the safety work touches, for a repeatable
//! before/after comparison on a noisy machine: run it under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=<fn>` or simply compare
//! whole-program counts (`valgrind --tool=callgrind`): each phase runs a fixed number of
//! times with fixed inputs, so the counts are the same run after run.
//!
//! `cargo run --release -p session-ha-benches --example op_counts -- PHASE N` with PHASE one
//! of `put` (Replica::put), `get` (Replica::get), `get_ref` (Replica::get_ref, every field
//! visited), `encode` / `decode` / `receive` (a frame of
//! 1,000 ops; `encode_signed` / `decode_signed` / `receive_signed`: the same with a MAC under
//! a frame key), `store_put` (Store::put, queued), `store_put_encrypted` (the same with
//! encryption at rest), each done N times after a fixed setup. The
//! count of one operation is (count at 2N - count at N) / N: the setup cancels out.

#![allow(clippy::unwrap_used)] // a measurement tool: a failure is a wrong measurement, stop

use std::hint::black_box;
use std::sync::Arc;

use session_ha::{
    FrameKey, FrameKeys, ManualTime, Message, Replica, ReplicaConfig, Store, StoreConfig, WriteMode,
};

fn replica(name: &str, time: &ManualTime) -> Replica {
    keyed(name, time, None)
}

fn keyed(name: &str, time: &ManualTime, keys: Option<&FrameKeys>) -> Replica {
    let config = ReplicaConfig {
        frame_keys: keys.cloned(),
        ..ReplicaConfig::default()
    };
    Replica::new(name, 1, config, Arc::new(time.clone()))
}

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![0u8; 64];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v
}

fn main() {
    let phase = std::env::args().nth(1).unwrap_or_else(|| "put".into());
    let n: u64 = std::env::args()
        .nth(2)
        .map_or(1_000, |s| s.parse().expect("N is a number"));
    let time = ManualTime::new(1_700_000_000_000);
    match phase.as_str() {
        "put" | "get" | "get_ref" => {
            let mut r = replica("east", &time);
            for i in 0..10_000u64 {
                for f in 0..8u64 {
                    r.put(format!("s{i:05}").into_bytes(), format!("f{f}"), value(i))
                        .unwrap();
                }
            }
            for i in 0..n {
                let sid = format!("s{:05}", (i * 7919) % 10_000);
                if phase == "put" {
                    r.put(sid.clone().into_bytes(), format!("f{}", i % 8), value(i))
                        .unwrap();
                } else if phase == "get" {
                    black_box(r.get(sid.as_bytes()));
                } else {
                    // Borrowed in place and every field visited, as the NIF encodes it.
                    let view = r.get_ref(sid.as_bytes());
                    black_box(
                        view.map(|v| v.fields().map(|(k, x)| k.len() + x.len()).sum::<usize>()),
                    );
                }
            }
        }
        "encode" | "decode" | "receive" | "encode_signed" | "decode_signed" | "receive_signed" => {
            let signed = phase.ends_with("_signed");
            let keys = signed.then(|| FrameKeys::new(FrameKey::from_secret(b"bench key")));
            let mut east = keyed("east", &time, keys.as_ref());
            let west_id = replica("west", &time).id();
            east.add_peer(west_id, "west").unwrap();
            for i in 0..1_000u64 {
                east.put(
                    format!("s{:03}", i % 100).into_bytes(),
                    format!("f{}", i % 8),
                    value(i),
                )
                .unwrap();
            }
            let frame = east.frame_for(west_id).unwrap().unwrap();
            let msg = Message::Frame(frame);
            let bytes = msg.encode_with(keys.as_ref());
            let limits = session_ha::Limits::default();
            for _ in 0..n {
                match phase.trim_end_matches("_signed") {
                    "encode" => drop(black_box(msg.encode_with(keys.as_ref()))),
                    "decode" => drop(black_box(
                        Message::decode_with(&bytes, &limits, keys.as_ref()).unwrap(),
                    )),
                    _ => {
                        let mut w = keyed("west", &time, keys.as_ref());
                        w.add_peer(east.id(), "east").unwrap();
                        black_box(w.receive(&bytes).unwrap());
                    }
                }
            }
        }
        "store_put" | "store_put_encrypted" => {
            let dir = std::env::temp_dir().join(format!("op_counts_{}", std::process::id()));
            let config = StoreConfig {
                write_mode: WriteMode::Queued,
                snapshot_interval: None,
                tick_interval: None,
                encryption: (phase == "store_put_encrypted")
                    .then(|| session_ha::KeyRing::new([0x42; 32], []).unwrap()),
                ..StoreConfig::new("east")
            };
            let (store, _) = Store::open(&dir, config).unwrap();
            for i in 0..n {
                store
                    .put(
                        format!("s{:05}", (i * 7919) % 10_000).into_bytes(),
                        format!("f{}", i % 8),
                        value(i),
                    )
                    .unwrap();
            }
            store.close().unwrap();
            drop(store);
            let _ = std::fs::remove_dir_all(&dir);
        }
        other => panic!("unknown phase {other}"),
    }
}
