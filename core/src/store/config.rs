//! [`StoreConfig`]: how a durable store syncs, snapshots, compacts and recovers.

use std::time::Duration;

use crate::crypto::KeyRing;
use crate::replicate::ReplicaConfig;
use crate::wal::{FsyncPolicy, WriterMode};

/// Whether a write call returns before or after its record is durable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WriteMode {
    /// Return once the record is durable under the fsync policy (the default).
    WaitDurable,
    /// Return once the change is applied and queued for the log; call
    /// [`crate::Store::wait_durable`] with the returned sequence number to wait.
    Queued,
}

/// What recovery does when the newest data on disk does not verify and no older manifest
/// generation can stand in for it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RecoveryMode {
    /// Refuse to open, with an error that says exactly what is damaged (the default).
    Strict,
    /// Move the damaged directory aside (`<dir>.quarantine-<ms>`, never deleted) and start
    /// empty as a new incarnation of the region, to be refilled from its peers by state
    /// transfer. Only for a replica whose peers hold the data.
    RebuildFromPeers,
}

/// When a new base snapshot replaces the chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CompactionPolicy {
    /// Most delta snapshots chained on one base.
    pub max_chain: usize,
    /// Compact when the deltas' bytes exceed this percentage of the base's bytes.
    pub max_delta_percent: u64,
    /// Compact when the base is older than this.
    pub max_base_age: Duration,
}

impl Default for CompactionPolicy {
    fn default() -> CompactionPolicy {
        CompactionPolicy {
            max_chain: 8,
            max_delta_percent: 100,
            max_base_age: Duration::from_secs(3600),
        }
    }
}

/// How a durable store behaves. `StoreConfig::default()` is what erlmcp runs.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Region name; must match the directory's when it already holds a store.
    pub region: String,
    /// Replication and size limits.
    pub replica: ReplicaConfig,
    /// When the write-ahead log fsyncs.
    pub fsync: FsyncPolicy,
    /// When write calls return.
    pub write_mode: WriteMode,
    /// How often an incremental snapshot is taken (`None`: only on request).
    pub snapshot_interval: Option<Duration>,
    /// How often expiry, resends and tombstone collection run (`None`: only on request).
    pub tick_interval: Option<Duration>,
    /// WAL segment size in bytes.
    pub segment_size: u64,
    /// When the snapshot chain is compacted into a new base.
    pub compaction: CompactionPolicy,
    /// What to do when data on disk is damaged beyond every fallback.
    pub recovery: RecoveryMode,
    /// Who writes the log (a thread, or the callers for deterministic simulations).
    pub wal_writer: WriterMode,
    /// Encryption at rest (`None`, the default: off). With a key ring, WAL record bodies,
    /// snapshot chunks and backups are written encrypted under its current key, and files
    /// encrypted under any of its keys are read; see [`KeyRing::from_file`] for the key file
    /// and `docs/DECISIONS.md` for rotation. Without one, a store holding encrypted files
    /// that must be read refuses to open with [`crate::Error::MissingKey`].
    pub encryption: Option<KeyRing>,
}

impl StoreConfig {
    /// The defaults for `region`: fsync every 10 ms, writes wait for durability, a snapshot
    /// every 60 s, maintenance every 200 ms, 64 MiB segments.
    pub fn new(region: &str) -> StoreConfig {
        StoreConfig {
            region: region.to_string(),
            replica: ReplicaConfig::default(),
            fsync: FsyncPolicy::EveryMillis(10),
            write_mode: WriteMode::WaitDurable,
            snapshot_interval: Some(Duration::from_secs(60)),
            tick_interval: Some(Duration::from_millis(200)),
            segment_size: 64 << 20,
            compaction: CompactionPolicy::default(),
            recovery: RecoveryMode::Strict,
            wal_writer: WriterMode::Thread,
            encryption: None,
        }
    }
}
