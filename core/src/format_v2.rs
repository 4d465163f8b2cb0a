//! Snapshot entries as format 2 wrote them, read by this build and converted: format 3 added
//! the meta's `retired_held` (an empty vector for a format-2 file: what was heard before the
//! upgrade is heard again from the members' next acks).

use serde::Deserialize;

use crate::causal::{CausalContext, VersionVector};
use crate::clock::{ReplicaId, Timestamp};
use crate::crdt::{SessionId, SessionState};
use crate::replicate::FenceReason;
use crate::snapshot::{SnapEntry, SnapshotMeta};

/// A snapshot meta as format 2 wrote it.
#[derive(Deserialize)]
pub(crate) struct SnapshotMetaV2 {
    region: String,
    incarnation: u32,
    context: CausalContext,
    clock: Timestamp,
    removed: Vec<ReplicaId>,
    created_ms: u64,
    members: Vec<(ReplicaId, String)>,
    fence: Option<FenceReason>,
}

/// A snapshot entry as format 2 wrote it.
#[derive(Deserialize)]
pub(crate) enum SnapEntryV2 {
    Session(SessionId, SessionState),
    Gone(SessionId),
    Meta(SnapshotMetaV2),
}

impl From<SnapEntryV2> for SnapEntry {
    fn from(e: SnapEntryV2) -> SnapEntry {
        match e {
            SnapEntryV2::Session(id, state) => SnapEntry::Session(id, state),
            SnapEntryV2::Gone(id) => SnapEntry::Gone(id),
            SnapEntryV2::Meta(m) => SnapEntry::Meta(SnapshotMeta {
                region: m.region,
                incarnation: m.incarnation,
                context: m.context,
                clock: m.clock,
                removed: m.removed,
                created_ms: m.created_ms,
                members: m.members,
                fence: m.fence,
                retired_held: VersionVector::new(),
                retired_runs: Vec::new(),
            }),
        }
    }
}
