//! Reading what format 1 wrote. Stores written by earlier builds keep opening: their
//! manifests, snapshot entries and WAL record bodies decode through the types here and
//! become today's types. Nothing is ever written in format 1.
//!
//! What changed in format 2 (everything else is the same bincode):
//!
//! ```text
//!  session state    counters: p, n          ->  p, n, seqs (the dot behind each total)
//!                   expires_at              ->  expires_at, touched_by (the winning touch)
//!  WAL record body  bincode Vec<ChangeV1>   ->  0xFF, 2, bincode Vec<Change>
//!                   (4 kinds of change)         (+ Replace, Member, Fence, Unfence)
//!  snapshot meta    ...                     ->  ..., members, fence
//!  manifest         one chain, wal_from     ->  boot, chain, fallback chain, log_end, clean
//! ```
//!
//! Dots that format 1 did not keep are unknown after conversion; a causal merge never drops
//! an entry whose dot is unknown (see `crdt::causal_merge`).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;

use crate::causal::{CausalContext, VersionVector};
use crate::clock::{ReplicaId, Timestamp};
use crate::crdt::{AwSet, LwwRegister, Op, PnCounter, SessionId, SessionState, Stamp};
use crate::replicate::Change;
use crate::snapshot::{SnapEntry, SnapRef, SnapshotMeta};

/// A counter as format 1 kept it: totals without the dots behind them.
#[derive(Deserialize)]
struct PnCounterV1 {
    p: BTreeMap<ReplicaId, u64>,
    n: BTreeMap<ReplicaId, u64>,
}

/// A session state as format 1 kept it.
#[derive(Deserialize)]
pub(crate) struct SessionStateV1 {
    fields: BTreeMap<Bytes, LwwRegister>,
    counters: BTreeMap<Bytes, PnCounterV1>,
    sets: BTreeMap<Bytes, AwSet>,
    expires_at: Option<u64>,
    ended: Option<Stamp>,
}

impl From<SessionStateV1> for SessionState {
    fn from(s: SessionStateV1) -> SessionState {
        SessionState {
            fields: s.fields,
            counters: s
                .counters
                .into_iter()
                .map(|(k, c)| {
                    let counter = PnCounter {
                        p: c.p,
                        n: c.n,
                        seqs: BTreeMap::new(),
                    };
                    (k, counter)
                })
                .collect(),
            sets: s.sets,
            expires_at: s.expires_at,
            touched_by: None,
            ended: s.ended,
        }
    }
}

/// A WAL change as format 1 wrote it.
#[derive(Deserialize)]
pub(crate) enum ChangeV1 {
    Op(Op),
    Merge {
        session: SessionId,
        state: SessionStateV1,
    },
    Adopt(VersionVector),
    Removed(ReplicaId),
}

impl From<ChangeV1> for Change {
    fn from(c: ChangeV1) -> Change {
        match c {
            ChangeV1::Op(op) => Change::Op(op),
            ChangeV1::Merge { session, state } => Change::Merge {
                session,
                state: state.into(),
            },
            ChangeV1::Adopt(vv) => Change::Adopt(vv),
            ChangeV1::Removed(id) => Change::Removed(id),
        }
    }
}

/// Snapshot meta as format 1 wrote it.
#[derive(Deserialize)]
pub(crate) struct SnapshotMetaV1 {
    region: String,
    incarnation: u32,
    context: CausalContext,
    clock: Timestamp,
    removed: Vec<ReplicaId>,
    created_ms: u64,
}

/// A snapshot entry as format 1 wrote it.
#[derive(Deserialize)]
pub(crate) enum SnapEntryV1 {
    Session(SessionId, SessionStateV1),
    Gone(SessionId),
    Meta(SnapshotMetaV1),
}

impl From<SnapEntryV1> for SnapEntry {
    fn from(e: SnapEntryV1) -> SnapEntry {
        match e {
            SnapEntryV1::Session(id, state) => SnapEntry::Session(id, state.into()),
            SnapEntryV1::Gone(id) => SnapEntry::Gone(id),
            SnapEntryV1::Meta(m) => SnapEntry::Meta(SnapshotMeta {
                region: m.region,
                incarnation: m.incarnation,
                context: m.context,
                clock: m.clock,
                removed: m.removed,
                created_ms: m.created_ms,
                members: Vec::new(),
                fence: None,
                retired_held: crate::causal::VersionVector::new(),
                retired_runs: Vec::new(),
            }),
        }
    }
}

/// A manifest as format 1 wrote it.
#[derive(Deserialize)]
pub(crate) struct ManifestV1 {
    pub(crate) generation: u64,
    pub(crate) region: String,
    pub(crate) incarnation: u32,
    pub(crate) base: Option<SnapRef>,
    pub(crate) deltas: Vec<SnapRef>,
    pub(crate) wal_from: u64,
    pub(crate) created_ms: u64,
}
