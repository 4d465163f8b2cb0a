//! [`Change`]: what a replica asks its caller to make durable. Every call that changes a
//! replica returns the changes it made, in order; replaying them (after a snapshot) with
//! [`crate::Replica::replay`] rebuilds the same state without emitting anything new.
//!
//! A WAL record body is a list of changes ([`encode_changes`]):
//!
//! ```text
//!  format 2   0xFF  2  bincode Vec<Change>
//!  format 1   bincode Vec<format_v1::ChangeV1>      (read only)
//! ```
//!
//! A format-1 body starts with bincode's varint length of the list, which is never 0xFF, so
//! the first byte tells the formats apart. Format 2 grows by variants appended at the end
//! (`RetiredRuns` is the latest): a record of an older build reads as it was; a build older
//! than a variant refuses a record holding it as undecodable, not misread.

use serde::{Deserialize, Serialize};

use super::fence::FenceReason;
use crate::causal::{SeqRun, VersionVector};
use crate::clock::ReplicaId;
use crate::codec;
use crate::crdt::{Op, SessionId, SessionState};
use crate::error::DecodeError;
use crate::format_v1::ChangeV1;

/// One durable change. Format 2 of the WAL's record bodies is the bincode of a
/// `Vec<Change>`; format 1 had the first four variants, with format-1 session states.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// A session's state was set to exactly this (the result of a causal merge; `None`:
    /// the session is gone).
    Replace {
        /// The session.
        session: SessionId,
        /// Its state now.
        state: Option<SessionState>,
    },
    /// A replica joined membership.
    Member {
        /// Its id.
        id: ReplicaId,
        /// Its region name.
        name: String,
    },
    /// Reads and writes are refused until the replica has caught up with a member.
    Fence(FenceReason),
    /// The catch-up fence was lifted.
    Unfence,
    /// Per retired origin, the highest seq another member was reported to hold of it (see
    /// `Replica::give_up_retired`); replayed as a join.
    RetiredHeld(VersionVector),
    /// Per retired origin, the runs of seqs another member was reported to hold out of
    /// order (see `Replica::give_up_retired`); replayed as a union.
    RetiredRuns(Vec<SeqRun>),
}

/// First byte of a format-2 record body (never the first byte of a bincode varint).
const BODY_MARK: u8 = 0xFF;
/// Record body format written by this build.
pub const BODY_VERSION: u8 = 2;

/// Encodes a list of changes as one WAL record body (format 2).
pub fn encode_changes(changes: &[Change]) -> Vec<u8> {
    encode_refs(&changes.iter().collect::<Vec<_>>())
}

/// Encodes changes given by reference (a part of a longer list).
pub(crate) fn encode_refs(changes: &[&Change]) -> Vec<u8> {
    let mut out = vec![BODY_MARK, BODY_VERSION];
    out.extend_from_slice(&codec::to_bytes(changes));
    out
}

/// Decodes a WAL record body of either format.
///
/// # Errors
/// [`DecodeError`] for a body that decodes in neither format, or names a newer one.
pub fn decode_changes(body: &[u8]) -> Result<Vec<Change>, DecodeError> {
    match body {
        [BODY_MARK, BODY_VERSION, rest @ ..] => codec::from_bytes(rest),
        [BODY_MARK, v, ..] => Err(DecodeError::UnsupportedVersion {
            found: u16::from(*v),
            supported: u16::from(BODY_VERSION),
        }),
        _ => {
            let v1: Vec<ChangeV1> = codec::from_bytes(body)?;
            Ok(v1.into_iter().map(Change::from).collect())
        }
    }
}
