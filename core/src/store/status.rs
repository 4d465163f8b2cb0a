//! [`StoreStatus`]: the replica's status plus the state of the log and the snapshots, in
//! one call.

use std::path::PathBuf;

use super::Store;
use crate::replicate::ReplicaStatus;

/// The write-ahead log, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalStatus {
    /// Last sequence number appended.
    pub last_seq: u64,
    /// Everything up to this is durable.
    pub durable_seq: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes in all segments.
    pub bytes: u64,
    /// Why the log refuses writes, if it does (a failed write or fsync, a full disk).
    pub failure: Option<String>,
}

/// The snapshots, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotStatus {
    /// Installed manifest generation.
    pub generation: u64,
    /// WAL records up to this are in the snapshot chain.
    pub covers_seq: u64,
    /// Base snapshot file.
    pub base: Option<String>,
    /// Delta snapshots chained on it.
    pub deltas: usize,
    /// Bytes of base and deltas.
    pub bytes: u64,
    /// When the last snapshot succeeded (Unix ms), since open.
    pub last_ok_ms: Option<u64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// A store, for operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStatus {
    /// The directory.
    pub dir: PathBuf,
    /// The replica's incarnation.
    pub incarnation: u32,
    /// The replica: vectors, peers, lag, tombstones.
    pub replica: ReplicaStatus,
    /// The log.
    pub wal: WalStatus,
    /// The snapshots.
    pub snapshot: SnapshotStatus,
}

impl Store {
    /// Everything an operator needs about this store, in one call.
    pub fn status(&self) -> StoreStatus {
        let replica = {
            let mut st = self.inner.state.write();
            self.inner.note_durable(&mut st);
            st.replica.status()
        };
        let wal = &self.inner.wal;
        let segments = wal.segments();
        let wal = WalStatus {
            last_seq: wal.last_seq(),
            durable_seq: wal.durable_seq(),
            segments: segments.len(),
            bytes: segments.iter().map(|s| s.bytes).sum(),
            failure: wal.failure().map(|e| e.to_string()),
        };
        let snap = self.inner.snap.lock();
        let m = &snap.manifest;
        let snapshot = SnapshotStatus {
            generation: m.generation,
            covers_seq: m.covers_seq(),
            base: m.base.as_ref().map(|b| b.file.clone()),
            deltas: m.deltas.len(),
            bytes: m.chain().map(|r| r.bytes).sum(),
            last_ok_ms: snap.last_ok_ms,
            last_error: snap.last_error.clone(),
        };
        StoreStatus {
            dir: self.inner.dir.clone(),
            incarnation: self.inner.incarnation,
            replica,
            wal,
            snapshot,
        }
    }
}
