//! Replication, transport-agnostic and without I/O: the [`Replica`] (local API, frames,
//! acks, state transfer, membership, tombstone collection), the messages replicas exchange,
//! and the status an operator reads.

mod change;
mod config;
mod gc;
mod maintenance;
mod message;
mod oplog;
mod peer;
mod replica;
mod restore;
mod status;
mod sync;
mod transfer;

pub use change::Change;
pub use config::ReplicaConfig;
pub use message::{Ack, Frame, FrameBody, Message, MAX_NAME, MAX_SEQ};
pub use replica::Replica;
pub use status::{PeerStatus, ReplicaStatus};
pub use sync::{Applied, Received};
