//! Shared fixtures for the criterion benchmarks in `benches/`: replicas with sessions and
//! ops already in place, and pairs of digest trees that differ in known sessions.
//!
//! Everything is deterministic (a fixed pseudo-random sequence, and a manual clock wherever
//! a bench does not need real time), so that frame sizes and diff results are the same on
//! every run and every machine. Building a fixture is setup: benches build them outside the
//! measured code.

pub mod digests;
pub mod memory;
pub mod replicas;
mod rng;

pub use rng::Rng;
