//! session-ha: session state kept as CRDTs, made durable with a write-ahead log and
//! incremental snapshots, verified with checksums, and replicated across regions.
//!
//! The in-memory core is a [`Replica`]: local writes return the [`Op`] to persist and ship;
//! [`Replica::frame_for`] and [`Replica::receive`] exchange [`Message`]s with peers over any
//! transport; [`Replica::status`] tells the truth about lag and consistency.
//!
//! ```
//! use std::sync::Arc;
//! use session_ha::{Message, Replica, ReplicaConfig, WallClock};
//!
//! let time = Arc::new(WallClock);
//! let mut east = Replica::new("us-east-1", 0, ReplicaConfig::default(), time.clone());
//! let mut west = Replica::new("us-west-2", 0, ReplicaConfig::default(), time);
//! east.add_peer(west.id(), west.name()).unwrap();
//! west.add_peer(east.id(), east.name()).unwrap();
//!
//! east.put("session-1", "user", "alice").unwrap();
//! east.counter_add("session-1", "requests", 3).unwrap();
//!
//! // Ship what west lacks; west answers with an ack.
//! let frame = east.frame_for(west.id()).unwrap().expect("something to send");
//! let received = west.receive(&Message::Frame(frame).encode()).unwrap();
//! east.receive(&received.reply.expect("an ack")).unwrap();
//!
//! let seen = west.get(b"session-1").expect("replicated");
//! assert_eq!(seen.fields[&b"user"[..]], "alice");
//! assert_eq!(seen.counters[&b"requests"[..]], 3);
//! assert_eq!(east.digests().root(), west.digests().root());
//! assert_eq!(east.status().peers[0].pending_ops, 0);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod causal;
pub mod clock;
#[doc(hidden)]
pub mod codec;
pub mod crdt;
pub mod crypto;
pub mod digest;
mod error;
mod format_v1;
mod format_v2;
mod format_v3;
pub mod fs; // documented by its own //! header
mod limits;
pub mod replicate;
pub mod snapshot;
pub mod store;
pub mod wal; // documented by its own //! header

pub use auth::{FrameKey, FrameKeys};
pub use causal::{CausalContext, Dot, Gap, VersionVector};
pub use clock::{Hlc, ManualTime, ReplicaId, TimeSource, Timestamp, WallClock};
pub use crdt::{Op, OpKind, SessionId, SessionRef, SessionState, SessionView};
pub use crypto::{KeyId, KeyRing};
pub use digest::{Digest, DigestTree};
pub use error::{AuthFailure, DecodeError, Error, Result};
pub use limits::Limits;
pub use replicate::{
    Ack, Applied, Change, Frame, FrameBody, Message, PeerStatus, Received, Replica, ReplicaConfig,
    ReplicaStatus,
};
pub use store::{RecoveryMode, Store, StoreConfig, StoreStatus, WriteMode};
pub use wal::FsyncPolicy;

/// The README's Rust quickstart, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
