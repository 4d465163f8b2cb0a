//! session-ha: session state kept as CRDTs, made durable with a write-ahead log and
//! incremental snapshots, verified with checksums, and replicated across regions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
mod error;
/// The file-system layer every durable byte goes through: [`fs::Vfs`], the real [`fs::OsFs`]
/// and the power-cut model [`fs::FaultyFs`] used by tests.
pub mod fs;
/// The write-ahead log: checksummed segments of opaque records, group commit on a background
/// writer, recovery that cuts torn tails and reports corruption. See [`wal::Wal`].
pub mod wal;

pub use clock::{Hlc, ManualTime, ReplicaId, TimeSource, Timestamp, WallClock};
pub use error::{DecodeError, Error, Result};
