//! Criterion benchmarks of session-ha: one `main`, one suite per subsystem.
//!
//! - [`replica`]: local writes and reads on one replica;
//! - [`sync`]: building, encoding, decoding and applying a frame of 1,000 ops;
//! - [`digest`]: finding the differing sessions among a million.
//!
//! `cargo bench -p session-ha-benches --bench session_ha` measures (a few minutes);
//! `cargo bench -p session-ha-benches -- --test` runs every bench once, checking that each
//! still compiles, runs and produces what it claims to (frames of 1,000 ops, diffs of exactly
//! 100 sessions). Fixtures live in the `session_ha_benches` library.

use criterion::criterion_main;

mod digest;
mod replica;
mod sync;

criterion_main!(replica::benches, sync::benches, digest::benches);
