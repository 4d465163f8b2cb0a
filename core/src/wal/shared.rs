//! The state shared by the [`Wal`](super::Wal) handle (appenders, waiters) and the writer
//! thread, and the two locks that guard it. No byte layout: records wait here as bodies.
//!
//! ```text
//!  Queue    (appenders push, writer swaps out)   bodies ‖ lens, first_seq, next_seq,
//!                                                sync/close requests, failure
//!  Progress (writer publishes, waiters sleep)    written ≥ durable, synced; failure; writer_gone
//! ```
//!
//! Lock order: never hold both. A failure is written to the queue (so appends refuse) and to
//! the progress (so waiters wake with it); it is data, because `Error` is not `Clone`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};

use parking_lot::{Condvar, Mutex};

use super::SegmentInfo;
use crate::error::Error;

/// Why the WAL refuses writes: kept as data because [`Error`] is not `Clone`.
#[derive(Clone, Debug)]
pub(crate) enum Failure {
    NoSpace(PathBuf),
    Poisoned(String),
}

impl Failure {
    pub fn from_error(e: &Error) -> Failure {
        match e {
            Error::NoSpace { path } => Failure::NoSpace(path.clone()),
            other => Failure::Poisoned(other.to_string()),
        }
    }

    pub fn to_error(&self) -> Error {
        match self {
            Failure::NoSpace(path) => Error::NoSpace { path: path.clone() },
            Failure::Poisoned(why) => Error::Poisoned(why.clone()),
        }
    }
}

/// Records appended and not yet taken by the writer.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    pub bodies: Vec<u8>,
    pub lens: Vec<u32>,
    /// Sequence number of `lens[0]`.
    pub first_seq: u64,
    /// The sequence number the next append gets.
    pub next_seq: u64,
    pub sync_requested: bool,
    /// A caller waits for a record to be durable under `EveryMillis`: the next batch syncs
    /// at once instead of at the period's end (and gathers as `Always` does).
    pub durable_wanted: bool,
    pub closing: bool,
    /// The log was abandoned without writing what is queued (a simulated crash).
    pub killed: bool,
    pub failure: Option<Failure>,
    /// While the writer gathers a batch: wake it when this many records are queued (0: no
    /// gathering, wake it on the first record only).
    pub gather_target: usize,
}

/// What the writer has achieved; waiters sleep on it.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    pub written: u64,
    pub synced: u64,
    pub durable: u64,
    pub failure: Option<Failure>,
    pub writer_gone: bool,
}

/// State shared by the [`Wal`](super::Wal) handle and its writer thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub queue: Mutex<Queue>,
    /// The writer waits here for work.
    pub work: Condvar,
    /// Appenders wait here for queue space.
    pub space: Condvar,
    pub progress: Mutex<Progress>,
    /// Waiters wait here for the watermarks to move.
    pub progressed: Condvar,
    /// Mirrors of the queue's last assigned and the progress's durable seq, for lock-free reads.
    pub last_seq: AtomicU64,
    pub durable_seq: AtomicU64,
    /// Set once a failure poisoned the log (for lock-free checks).
    pub failed: AtomicBool,
    pub segments: Mutex<Vec<SegmentInfo>>,
}
