//! The adapter between the simulator and the durable store: every call the simulator makes on
//! a `session_ha::Store`, on its file system (`FaultyFs`) or on the recovery tools is in this
//! module (the disk side in `disk.rs`), so that a change of the store's API is absorbed here
//! and nowhere else.
//!
//! A [`Node`] is one region: its own simulated disk, the store open on it (or none while the
//! region is down), and the configuration it reopens with. Nodes are named by index and
//! region; a node's [`ReplicaId`] is read from its store whenever it is needed, because a
//! store may come back under a new incarnation.
//!
//! A call that depends on store behaviour the contract documents but the core does not have
//! yet is marked `SHIM(...)`, written against `docs/INVARIANTS.md`, and is the place to adapt
//! when the core catches up (none is left today).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use session_ha::fs::FaultyFs;
use session_ha::store::{CompactionPolicy, RecoveryReport};
use session_ha::wal::WriterMode;
use session_ha::{
    Error, FsyncPolicy, ManualTime, RecoveryMode, Replica, ReplicaConfig, ReplicaId, SessionId,
    SessionView, Store, StoreConfig, VersionVector, WriteMode,
};

mod disk;

pub use disk::Damage;
pub use session_ha::store::Receipt;

/// One local write, as a client asks for it.
#[derive(Debug, Clone)]
pub enum Write {
    /// Set fields (one or several).
    Put(SessionId, Vec<(bytes::Bytes, bytes::Bytes)>),
    /// Delete a field.
    DeleteField(SessionId, bytes::Bytes),
    /// Add to a counter.
    Counter(SessionId, bytes::Bytes, i64),
    /// Add a set element.
    SetAdd(SessionId, bytes::Bytes, bytes::Bytes),
    /// Remove a set element.
    SetRemove(SessionId, bytes::Bytes, bytes::Bytes),
    /// Extend the session's life.
    Touch(SessionId, u64),
    /// End the session.
    End(SessionId),
}

/// Why a store refused a call, in the simulator's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The session is ended or expired.
    SessionEnded,
    /// The log failed (a dead or full disk): poisoned, no space, an I/O error, or a store
    /// tainted by such a failure.
    LogFailed,
    /// The replica is fenced while it catches up (`Error::CatchingUp`).
    CatchingUp,
    /// The sender of a message was removed from membership.
    RemovedSender,
    /// A frame arrived after a later one of its sender, or twice (the network reorders and
    /// duplicates): refused, and sent again by the protocol if it is still needed.
    Replayed,
    /// The sender is not a member of the receiver (an old incarnation it never knew, or one
    /// its own crash made it forget until the next hello).
    NotAMember(ReplicaId),
    /// Anything else: the simulator treats it as a bug.
    Other,
}

/// Sorts a store error into a [`Refusal`].
pub fn classify(e: &Error) -> Refusal {
    match e.kind() {
        "ended" => Refusal::SessionEnded,
        "poisoned" | "no_space" | "io" => Refusal::LogFailed,
        "catching_up" => Refusal::CatchingUp,
        "removed_replica" => Refusal::RemovedSender,
        "replayed_frame" => Refusal::Replayed,
        "not_a_member" => match e {
            Error::NotAMember(id) => Refusal::NotAMember(*id),
            _ => Refusal::Other,
        },
        _ => Refusal::Other,
    }
}

/// What opening a store found, in the simulator's terms.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The id the store now has.
    pub id: ReplicaId,
    /// The directory was empty (a new store).
    pub created: bool,
    /// Whether recovery reported a cut, a loss or a fallback of any kind.
    pub reported_cut: bool,
    /// The damaged directory was moved aside (`RebuildFromPeers`).
    pub quarantined: bool,
    /// The report, for traces.
    pub summary: String,
}

impl Recovery {
    fn from_report(id: ReplicaId, r: &RecoveryReport) -> Recovery {
        Recovery {
            id,
            created: r.created,
            reported_cut: r.wal.damage_cut.is_some()
                || r.lost.is_some()
                || r.reincarnated_from.is_some()
                || r.wal.bytes_truncated > 0
                || !r.fallbacks.is_empty()
                || r.quarantined.is_some(),
            quarantined: r.quarantined.is_some(),
            summary: format!(
                "gen {} boot {}{} replayed {} truncated {}B{}{}{} fence {:?} fallbacks {:?}{}",
                r.manifest_generation,
                r.boot,
                if r.clean_shutdown { " (clean)" } else { "" },
                r.wal.records_replayed,
                r.wal.bytes_truncated,
                r.wal
                    .damage_cut
                    .as_ref()
                    .map_or_else(String::new, |c| format!(
                        " cut after {} ({})",
                        c.kept_through, c.error
                    )),
                r.lost
                    .map_or_else(String::new, |(a, b)| format!(" lost {a}..={b}")),
                r.reincarnated_from
                    .map_or_else(String::new, |id| format!(" was {id}")),
                r.fence,
                r.fallbacks,
                if r.created { " (created)" } else { "" }
            ),
        }
    }
}

/// How every node of a run is configured.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Replication tuning.
    pub replica: ReplicaConfig,
    /// When the log syncs.
    pub fsync: FsyncPolicy,
    /// Whether writes wait for durability.
    pub write_mode: WriteMode,
    /// WAL segment size.
    pub segment_size: u64,
}

/// One region: its disk, and its store when it is up.
pub struct Node {
    /// Index in the world.
    pub index: usize,
    /// Region name.
    pub region: String,
    /// Its disk.
    pub fs: FaultyFs,
    dir: PathBuf,
    config: NodeConfig,
    time: ManualTime,
    store: Option<Store>,
    /// Every id its stores have had, oldest first (the last is the current one).
    ids: Vec<ReplicaId>,
    /// Faults fired on its disk before the last power cut cleared them.
    faults_cleared: u64,
    last_sync_ms: u64,
    backups: u32,
}

fn io_err(e: Error) -> String {
    e.to_string()
}

impl Node {
    /// A node with an empty disk seeded by `seed`, not yet open.
    pub fn new(index: usize, config: NodeConfig, time: ManualTime, seed: u64) -> Node {
        Node {
            index,
            region: format!("r{index}"),
            fs: FaultyFs::with_seed(seed ^ (index as u64).wrapping_mul(0x9E37_79B9)),
            dir: PathBuf::from(format!("/data/r{index}")),
            config,
            time,
            store: None,
            ids: Vec::new(),
            faults_cleared: 0,
            last_sync_ms: 0,
            backups: 0,
        }
    }

    pub(crate) fn store_config(&self, recovery: RecoveryMode) -> StoreConfig {
        StoreConfig {
            replica: self.config.replica.clone(),
            fsync: self.config.fsync,
            write_mode: self.config.write_mode,
            snapshot_interval: None,
            tick_interval: None,
            segment_size: self.config.segment_size,
            compaction: CompactionPolicy {
                max_base_age: Duration::MAX,
                ..CompactionPolicy::default()
            },
            recovery,
            wal_writer: WriterMode::Inline,
            ..StoreConfig::new(&self.region)
        }
    }

    /// The run's fsync policy.
    pub fn fsync(&self) -> FsyncPolicy {
        self.config.fsync
    }

    /// Opens (recovering) the store.
    ///
    /// # Errors
    /// The store's refusal to open.
    pub fn open(&mut self, recovery: RecoveryMode) -> Result<Recovery, Error> {
        let config = self.store_config(recovery);
        let time: Arc<dyn session_ha::TimeSource> = Arc::new(self.time.clone());
        let (store, report) = Store::open_with(Arc::new(self.fs.clone()), &self.dir, config, time)?;
        let id = store.id();
        if self.ids.last() != Some(&id) {
            self.ids.push(id);
        }
        self.store = Some(store);
        use session_ha::TimeSource;
        self.last_sync_ms = self.time.now_ms();
        Ok(Recovery::from_report(id, &report))
    }

    /// Whether the store is open.
    pub fn is_up(&self) -> bool {
        self.store.is_some()
    }

    /// The store's id now, or the one it had when it was last open.
    pub fn id(&self) -> Option<ReplicaId> {
        self.store
            .as_ref()
            .map(Store::id)
            .or(self.ids.last().copied())
    }

    /// The ids its stores had before the current one (retired incarnations).
    pub fn old_ids(&self) -> Vec<ReplicaId> {
        let n = self.ids.len().saturating_sub(1);
        self.ids[..n].to_vec()
    }

    /// Whether this node's stores ever had `id` (old incarnations included).
    pub fn had_id(&self, id: ReplicaId) -> bool {
        self.ids.contains(&id)
    }

    fn store(&self) -> Result<&Store, String> {
        self.store
            .as_ref()
            .ok_or_else(|| format!("r{} is down", self.index))
    }

    // ----- lifecycle ------------------------------------------------------------------------

    /// Abandons the store as a power cut would (nothing more is written or synced).
    pub fn kill(&mut self) {
        if let Some(s) = self.store.take() {
            s.kill();
        }
    }

    /// Closes the store cleanly.
    ///
    /// # Errors
    /// The log's failure, if it had one.
    pub fn close(&mut self) -> Result<(), Error> {
        match self.store.take() {
            Some(s) => s.close(),
            None => Ok(()),
        }
    }

    // ----- writes and the log ---------------------------------------------------------------

    /// Makes a local write; returns its WAL sequence number (durable once
    /// [`Node::durable_lsn`] reaches it; at once under `WaitDurable`).
    ///
    /// # Errors
    /// The store's refusal.
    pub fn write(&self, w: &Write) -> Result<u64, Error> {
        let Some(s) = self.store.as_ref() else {
            return Err(Error::Closed);
        };
        match w.clone() {
            Write::Put(sid, fields) if fields.len() == 1 => {
                let (k, v) = fields.into_iter().next().unwrap_or_default();
                s.put(sid, k, v)
            }
            Write::Put(sid, fields) => s.put_fields(sid, fields),
            Write::DeleteField(sid, k) => s.delete_field(sid, k),
            Write::Counter(sid, k, d) => s.counter_add(sid, k, d),
            Write::SetAdd(sid, k, e) => s.set_add(sid, k, e),
            Write::SetRemove(sid, k, e) => s.set_remove(sid, k, e),
            Write::Touch(sid, ttl) => s.touch(sid, ttl),
            Write::End(sid) => s.end(sid),
        }
    }

    /// Lets the inline WAL writer run: writes what is queued, and syncs as the policy says
    /// at simulated time `now_ms` (`EveryMillis(n)`: when `n` ms passed since the last sync),
    /// or whatever the policy when `force_sync`.
    ///
    /// # Errors
    /// The log's failure.
    pub fn pump(&mut self, now_ms: u64, force_sync: bool) -> Result<(), Error> {
        let sync = force_sync
            || match self.config.fsync {
                FsyncPolicy::Always => true,
                FsyncPolicy::EveryMillis(n) => now_ms >= self.last_sync_ms + u64::from(n),
                FsyncPolicy::Never => false,
            };
        if sync {
            self.last_sync_ms = now_ms;
        }
        match self.store.as_ref() {
            Some(s) => s.pump_wal(sync),
            None => Ok(()),
        }
    }

    /// WAL sequence number up to which the store says everything is durable.
    pub fn durable_lsn(&self) -> u64 {
        self.store.as_ref().map_or(0, Store::durable_lsn)
    }

    /// Why the log refuses writes, if it does.
    pub fn log_failure(&self) -> Option<String> {
        self.store.as_ref().and_then(|s| s.status().wal.failure)
    }

    // ----- replication ----------------------------------------------------------------------

    /// The peers the store knows, with their region names.
    pub fn peers(&self) -> Vec<(ReplicaId, String)> {
        self.inspect(Replica::peers).unwrap_or_default()
    }

    /// Registers a peer.
    ///
    /// # Errors
    /// The store's refusal (a removed id, its own id).
    pub fn add_peer(&self, id: ReplicaId, region: &str) -> Result<(), String> {
        self.store()?.add_peer(id, region).map_err(io_err)
    }

    /// Removes a replica from membership for good.
    ///
    /// # Errors
    /// The store's refusal.
    pub fn remove_member(&self, id: ReplicaId) -> Result<(), Error> {
        match self.store.as_ref() {
            Some(s) => s.remove_member(id),
            None => Err(Error::Closed),
        }
    }

    /// Forgets what was sent to `peer` and not acknowledged (a reconnect).
    ///
    /// # Errors
    /// The store's refusal.
    pub fn rewind(&self, peer: ReplicaId) -> Result<(), String> {
        self.store()?.rewind(peer).map_err(io_err)
    }

    /// The next encoded frame for `peer`, if any.
    ///
    /// # Errors
    /// The store's refusal.
    pub fn frame_for(&self, peer: ReplicaId) -> Result<Option<Vec<u8>>, Error> {
        self.store.as_ref().ok_or(Error::Closed)?.frame_for(peer)
    }

    /// An encoded heartbeat for `peer`.
    ///
    /// # Errors
    /// The store's refusal.
    pub fn heartbeat(&self, peer: ReplicaId) -> Result<Vec<u8>, Error> {
        self.store.as_ref().ok_or(Error::Closed)?.heartbeat(peer)
    }

    /// Applies an encoded message; the reply may be sent once `lsn` is durable.
    ///
    /// # Errors
    /// The store's refusal.
    pub fn receive(&self, bytes: &[u8]) -> Result<Receipt, Error> {
        self.store
            .as_ref()
            .ok_or(Error::Closed)?
            .receive_deferred(bytes)
    }

    /// Encoded repair frames carrying the full states of `ids` (or their absence) for `peer`.
    ///
    /// # Errors
    /// The store's refusal.
    pub fn repair_frames(&self, peer: ReplicaId, ids: &[SessionId]) -> Result<Vec<Vec<u8>>, Error> {
        self.store
            .as_ref()
            .ok_or(Error::Closed)?
            .repair_frames(peer, ids)
    }

    /// The sessions whose digests differ between this node and `other` (the digest exchange
    /// a repair starts with).
    ///
    /// # Errors
    /// The refusal, with the index of the node that refused.
    pub fn differing_sessions(&self, other: &Node) -> Result<Vec<SessionId>, (usize, Error)> {
        // Top down, as the wire does it: middle sums, the leaves under the middle buckets
        // that differ, the session digests in the leaves that differ.
        let (mine, yours) = (self.index, other.index);
        let a = self.store.as_ref().ok_or((mine, Error::Closed))?;
        let b = other.store.as_ref().ok_or((yours, Error::Closed))?;
        let their_mids = b
            .with_digests(|t| t.mids().to_vec())
            .map_err(|e| (yours, e))?;
        let mids = a
            .with_digests(|t| t.differing_mids(&their_mids))
            .map_err(|e| (mine, e))?;
        if mids.is_empty() {
            return Ok(Vec::new());
        }
        let their_leaves = b
            .with_digests(|t| t.leaves_under(&mids))
            .map_err(|e| (yours, e))?;
        let leaves = a
            .with_digests(|t| t.differing_leaves_under(&mids, &their_leaves))
            .map_err(|e| (mine, e))?;
        if leaves.is_empty() {
            return Ok(Vec::new());
        }
        let ours = a.digest_entries(&leaves).map_err(|e| (mine, e))?;
        let theirs = b.digest_entries(&leaves).map_err(|e| (yours, e))?;
        let mut ids: Vec<SessionId> = ours
            .iter()
            .filter(|e| !theirs.contains(e))
            .chain(theirs.iter().filter(|e| !ours.contains(e)))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Lifts a replica's catch-up fence by hand (an operator's call when no member is left).
    ///
    /// # Errors
    /// The store's refusal.
    pub fn lift_fence(&self) -> Result<(), Error> {
        self.store.as_ref().ok_or(Error::Closed)?.lift_fence()
    }

    /// Why the store refuses reads and writes until it has caught up, if it does.
    pub fn fence(&self) -> Option<String> {
        self.inspect(|r| r.fence().map(|f| f.to_string())).flatten()
    }

    // ----- maintenance and durability -------------------------------------------------------

    /// Runs maintenance (expiry, resends, tombstone collection).
    ///
    /// # Errors
    /// The store's refusal.
    pub fn tick(&self) -> Result<(), Error> {
        self.store.as_ref().ok_or(Error::Closed)?.tick()
    }

    /// Takes an incremental snapshot, or a new base when `compact`.
    ///
    /// # Errors
    /// The store's refusal.
    pub fn snapshot(&self, compact: bool) -> Result<(), Error> {
        let s = self.store.as_ref().ok_or(Error::Closed)?;
        if compact {
            s.compact().map(drop)
        } else {
            s.snapshot().map(drop)
        }
    }

    // ----- what the store holds -------------------------------------------------------------

    /// Runs `f` on the in-memory replica (the simulator's view from inside, for checks;
    /// never what a client sees). `None` when the node is down.
    pub fn inspect<T>(&self, f: impl FnOnce(&Replica) -> T) -> Option<T> {
        self.store.as_ref().map(|s| s.read(f))
    }

    /// What the store's peers are believed to hold, as its status reports it:
    /// `(peer id, region, acknowledged vector)`. Read from inside (the store's own status
    /// call would also bring its bookkeeping up to date, which a check must not do).
    pub fn beliefs(&self) -> Vec<(ReplicaId, String, VersionVector)> {
        self.inspect(|r| {
            r.status()
                .peers
                .into_iter()
                .map(|p| (p.id, p.name, p.acked.held()))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The vector the store says it holds durably (what it acknowledges, I1).
    pub fn durable_vector(&self) -> Option<VersionVector> {
        self.inspect(|r| r.status().durable_vv.held())
    }

    /// Every session a client reading this store sees, or the store's refusal to serve reads.
    ///
    /// # Errors
    /// The store's refusal (fenced or tainted).
    pub fn client_view(&self) -> Result<Vec<(SessionId, SessionView)>, Error> {
        let s = self.store.as_ref().ok_or(Error::Closed)?;
        let mut view = Vec::new();
        for id in s.session_ids()? {
            if let Some(v) = s.get(id.as_bytes())? {
                view.push((id, v));
            }
        }
        Ok(view)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // A simulated node never syncs on its way out: the world is gone with it.
        self.kill();
    }
}
