//! The Erlang NIF of session-ha: module `erlmcp_session_ha_nif`, a thin adapter over
//! [`session_ha::Store`]. The Erlang stubs, specs and docs are in
//! `erlang/src/erlmcp_session_ha_nif.erl`.
//!
//! Conventions:
//! - A handle is a resource holding the store (or nothing once closed) and a durability
//!   notifier thread (`notifier.rs`). After `close/1` every call returns `{error, closed}`.
//! - Wrong argument types (not a binary, not a handle, a negative or too large integer, an
//!   improper list, a bad option) raise `badarg`. Everything else is `{error, Reason}`:
//!   `Reason` is the atom of `session_ha::Error::kind`, or `{Kind, Details :: binary()}`
//!   for `corrupt`, `io`, `data_loss`, `poisoned`, `bad_frame` and `invalid_argument`.
//! - The store runs `WriteMode::Queued`: writes return once applied and queued for the log,
//!   never after an fsync. Durability is awaited with `await_durable/4`, which answers by
//!   message.
//! - Schedulers: normal for calls that take a lock briefly and copy little (writes, reads,
//!   `durable_lsn`, `await_durable`, `heartbeat`, `rewind`, `add_peer`, `digest_root`,
//!   `info`); dirty CPU for frames, digests, lists of every session and `tick`; dirty I/O
//!   for `open`, `close`, `status`, `remove_member`, `set_frame_keys` (it may read a key
//!   file), snapshots, verification and backups. `hello` and `open_hello` run on normal
//!   schedulers (a hello is a few dozen bytes).
//!   `put_fields/3` runs on a normal scheduler up to 64 pairs and 64 KiB, on a dirty CPU
//!   scheduler above (see `sessions.rs`). Normal-scheduler NIFs charge the calling process
//!   for the time they took (`handle::with`), so a process making many calls yields on time.
//!
//! No `unwrap`, `expect` or `unsafe` here: every decode is typed, and rustler owns the FFI.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod atoms;
mod convert;
mod handle;
mod lifecycle;
mod notifier;
mod options;
mod replication;
mod reports;
mod sessions;
mod trust;

rustler::init!("erlmcp_session_ha_nif");
