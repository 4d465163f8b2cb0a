//! Snapshot entries as format 3 wrote them, read by this build and converted: format 4 added
//! the meta's `retired_runs` (none for a format-3 file: what members hold out of order is
//! heard again from their next acks).

use serde::Deserialize;

use crate::causal::{CausalContext, VersionVector};
use crate::clock::{ReplicaId, Timestamp};
use crate::crdt::{SessionId, SessionState};
use crate::replicate::FenceReason;
use crate::snapshot::{SnapEntry, SnapshotMeta};

/// A snapshot meta as format 3 wrote it.
#[derive(Deserialize)]
pub(crate) struct SnapshotMetaV3 {
    region: String,
    incarnation: u32,
    context: CausalContext,
    clock: Timestamp,
    removed: Vec<ReplicaId>,
    created_ms: u64,
    members: Vec<(ReplicaId, String)>,
    fence: Option<FenceReason>,
    retired_held: VersionVector,
}

/// A snapshot entry as format 3 wrote it.
#[derive(Deserialize)]
pub(crate) enum SnapEntryV3 {
    Session(SessionId, SessionState),
    Gone(SessionId),
    Meta(SnapshotMetaV3),
}

impl From<SnapEntryV3> for SnapEntry {
    fn from(e: SnapEntryV3) -> SnapEntry {
        match e {
            SnapEntryV3::Session(id, state) => SnapEntry::Session(id, state),
            SnapEntryV3::Gone(id) => SnapEntry::Gone(id),
            SnapEntryV3::Meta(m) => SnapEntry::Meta(SnapshotMeta {
                region: m.region,
                incarnation: m.incarnation,
                context: m.context,
                clock: m.clock,
                removed: m.removed,
                created_ms: m.created_ms,
                members: m.members,
                fence: m.fence,
                retired_held: m.retired_held,
                retired_runs: Vec::new(),
            }),
        }
    }
}
