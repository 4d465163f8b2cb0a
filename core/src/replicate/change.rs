//! [`Change`]: what a replica asks its caller to make durable. Every call that changes a
//! replica returns the changes it made, in order; replaying them (after a snapshot) with
//! [`crate::Replica::replay`] rebuilds the same state without emitting anything new.

use serde::{Deserialize, Serialize};

use crate::causal::VersionVector;
use crate::clock::ReplicaId;
use crate::crdt::{Op, SessionId, SessionState};

/// One durable change.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Change {
    /// An op (local, or applied from a peer).
    Op(Op),
    /// A session's full state merged in (state transfer or repair).
    Merge {
        /// The session.
        session: SessionId,
        /// The state merged.
        state: SessionState,
    },
    /// A state transfer completed: everything this vector covers is now held.
    Adopt(VersionVector),
    /// A replica was removed from membership for good.
    Removed(ReplicaId),
}
