//! session-ha: session state kept as CRDTs, made durable with a write-ahead log and
//! incremental snapshots, verified with checksums, and replicated across regions.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
mod error;
pub mod fs; // documented by its own //! header
pub mod wal; // documented by its own //! header

pub use clock::{Hlc, ManualTime, ReplicaId, TimeSource, Timestamp, WallClock};
pub use error::{DecodeError, Error, Result};
