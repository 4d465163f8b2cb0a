//! [`StoreStatus`]: the replica's status plus the state of the log and the snapshots, in
//! one call.

use std::path::PathBuf;

use super::Store;
use crate::clock::ReplicaId;
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

/// What the last open found, for operators (the figures of its [`super::RecoveryReport`] an
/// incident needs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenStatus {
    /// This run's boot number.
    pub boot: u64,
    /// Whether the previous run closed cleanly.
    pub clean_shutdown: bool,
    /// Bytes cut off the end of the log (a torn write after a crash, or damage).
    pub bytes_cut: u64,
    /// Records that were durable and are gone, `(first, last)` (only with
    /// [`super::RecoveryMode::RebuildFromPeers`]; peers refill them).
    pub lost: Option<(u64, u64)>,
    /// The incarnation it was before it continued as a new one, if it did.
    pub reincarnated_from: Option<ReplicaId>,
    /// Where a damaged directory was moved, if it was.
    pub quarantined: Option<PathBuf>,
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
    /// What the last open found.
    pub open: OpenStatus,
    /// Set when memory may hold changes the log refused (I5): nothing is served until the
    /// store is reopened, and `replica` shows only what is durable (its `vv` is the durable
    /// vector, its digest root 0).
    pub tainted: Option<String>,
}

impl Store {
    /// Everything an operator needs about this store, in one call.
    pub fn status(&self) -> StoreStatus {
        let (replica, tainted) = {
            let mut st = self.inner.state.write();
            self.inner.note_durable(&mut st);
            let mut replica = st.replica.status();
            let tainted = self.inner.is_tainted(&st).then(|| {
                replica.vv = replica.durable_vv.clone();
                replica.digest_root = crate::digest::Digest(0);
                self.inner
                    .wal
                    .failure()
                    .map_or_else(|| "the log failed".to_string(), |e| e.to_string())
            });
            (replica, tainted)
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
            open: self.inner.opened.clone(),
            tainted,
        }
    }
}
