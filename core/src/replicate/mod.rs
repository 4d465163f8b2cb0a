//! Replication, transport-agnostic and without I/O: the [`Replica`] (local API, frames,
//! acks, state transfer, membership, tombstone collection), the messages replicas exchange,
//! and the status an operator reads.

pub(crate) mod change;
mod config;
mod durability;
mod fence;
mod gc;
mod give_up;
mod incarnation;
mod local;
mod maintenance;
mod message;
mod oplog;
mod peer;
mod replica;
mod restore;
mod sessions;
mod status;
mod sync;
mod transfer;
mod trust;

pub use change::{decode_changes, encode_changes, Change, BODY_VERSION};
pub use config::ReplicaConfig;
pub use fence::FenceReason;
pub use local::LocalWrite;
pub use message::{Ack, Frame, FrameBody, Hello, Message, MAX_NAME, MAX_SEQ};
pub use replica::Replica;
pub use status::{PeerStatus, ReplicaStatus, RetiredStatus};
pub use sync::{Applied, Received};
pub use trust::{RefusalCounts, MAX_COUNTED_SENDERS};
