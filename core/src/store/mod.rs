//! [`Store`]: a [`Replica`] made durable in its own directory. Every change is applied in
//! memory and appended to the WAL under one lock (so log order is apply order); a write
//! returns once its record is durable ([`WriteMode::WaitDurable`]); an ack to a peer is sent
//! only once what it acknowledges is durable; own ops reach peers only once durable (a crash
//! can never make a sequence number be reused). A background thread runs maintenance
//! ([`Replica::tick`]) and the incremental snapshots. Layout on disk: `layout.rs`.

mod backup;
mod config;
mod dry_run;
mod layout;
mod open;
mod recovery;
mod replication;
mod snapshotter;
mod status;
mod verify;
mod writes;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

pub use backup::{restore_backup, restore_backup_with_keys, BackupReport, RestoreReport};
pub use config::{CompactionPolicy, RecoveryMode, StoreConfig, WriteMode};
pub use dry_run::{
    dry_run_recovery, dry_run_recovery_with_keys, recovered_state, recovered_state_with_keys,
    RecoveredState, RecoveryPlan,
};
pub use recovery::RecoveryReport;
pub use replication::Receipt;
pub use snapshotter::SnapshotReport;
pub use status::{OpenStatus, SnapshotStatus, StoreStatus, WalStatus};
pub use verify::{verify_dir, verify_dir_with_keys, FileCheck, VerifyReport};

use crate::clock::{ReplicaId, TimeSource, WallClock};
use crate::codec;
use crate::crdt::SessionId;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fs::{DirLock, OsFs, Vfs};
use crate::replicate::change::encode_refs;
use crate::replicate::{encode_changes, Change, Replica};
use crate::wal::Wal;
use snapshotter::SnapState;

thread_local! {
    static LOCK_BUDGET: std::cell::Cell<Option<Duration>> = const { std::cell::Cell::new(None) };
}

/// Makes the calling thread give up with [`Error::Busy`] (having done nothing) when a write
/// or read of any store would wait longer than `budget` for the store's lock; `None` (the
/// default) waits as long as it takes. The NIF sets a budget on the Erlang VM's normal
/// schedulers, which must never be held for long, and retries busy calls on a dirty one.
pub fn set_thread_lock_budget(budget: Option<Duration>) {
    LOCK_BUDGET.with(|b| b.set(budget));
}

/// State under the store's lock: the replica.
pub(crate) struct State {
    pub(crate) replica: Replica,
}

pub(crate) struct Inner {
    pub(crate) fs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    pub(crate) config: StoreConfig,
    pub(crate) incarnation: u32,
    pub(crate) state: RwLock<State>,
    pub(crate) wal: Wal,
    pub(crate) snap: Mutex<SnapState>,
    /// Set when the log failed with changes applied in memory that no durable record holds:
    /// from then on nothing is served from memory (I5).
    pub(crate) tainted: AtomicBool,
    /// What the last open found (for the status).
    pub(crate) opened: OpenStatus,
    /// The frame keys messages are signed and checked with (read without the state lock:
    /// messages are decoded outside it). The replica's configuration holds the same.
    pub(crate) frame_keys: RwLock<Option<crate::auth::FrameKeys>>,
    closed: AtomicBool,
    stop: Mutex<bool>,
    wake: Condvar,
    lock: Mutex<Option<DirLock>>,
}

/// A durable replica in a directory.
pub struct Store {
    inner: Arc<Inner>,
    background: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("dir", &self.inner.dir)
            .field("region", &self.inner.config.region)
            .finish()
    }
}

impl Store {
    /// Opens (recovering) or creates the store in `dir` on the real disk.
    ///
    /// # Errors
    /// [`Error::Locked`] when the directory is open elsewhere; [`Error::DataLoss`] or
    /// [`Error::Corrupt`] when damage leaves no generation to recover from (see
    /// [`RecoveryMode`]); [`Error::InvalidArgument`] when `dir` holds another region; I/O errors.
    pub fn open(dir: impl AsRef<Path>, config: StoreConfig) -> Result<(Store, RecoveryReport)> {
        Store::open_with(Arc::new(OsFs), dir.as_ref(), config, Arc::new(WallClock))
    }

    /// [`Store::open`] over any file system and time source (tests use a fault-injecting
    /// file system and a manual clock).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(
        fs: Arc<dyn Vfs>,
        dir: &Path,
        config: StoreConfig,
        time: Arc<dyn TimeSource>,
    ) -> Result<(Store, RecoveryReport)> {
        let opened = open::open(&fs, dir, &config, &time)?;
        let (recovered, lock) = (opened.recovered, opened.lock);
        let report = recovered.report.clone();
        let now = Instant::now();
        let snap = SnapState {
            manifest: recovered.manifest,
            previous: recovered.previous,
            base_since: now,
            last_ok_ms: None,
            last_error: None,
            next_due: now + config.snapshot_interval.unwrap_or(Duration::MAX / 4),
        };
        let inner = Arc::new(Inner {
            fs,
            dir: dir.to_path_buf(),
            incarnation: report.incarnation,
            frame_keys: RwLock::new(config.replica.frame_keys.clone()),
            config,
            state: RwLock::new(State {
                replica: recovered.replica,
            }),
            tainted: AtomicBool::new(false),
            opened: OpenStatus {
                boot: report.boot,
                clean_shutdown: report.clean_shutdown,
                bytes_cut: report.wal.bytes_truncated,
                lost: report.lost,
                reincarnated_from: report.reincarnated_from,
                quarantined: report.quarantined.clone(),
            },
            wal: recovered.wal,
            snap: Mutex::new(snap),
            closed: AtomicBool::new(false),
            stop: Mutex::new(false),
            wake: Condvar::new(),
            lock: Mutex::new(Some(lock)),
        });
        let background = spawn_background(&inner)?;
        Ok((
            Store {
                inner,
                background: Mutex::new(background),
            },
            report,
        ))
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// This replica's id.
    pub fn id(&self) -> ReplicaId {
        self.inner.state.read().replica.id()
    }

    /// The region name.
    pub fn region(&self) -> &str {
        &self.inner.config.region
    }

    /// The incarnation of this replica.
    pub fn incarnation(&self) -> u32 {
        self.inner.incarnation
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    // ----- digests -------------------------------------------------------------------------

    /// Root of the digest tree.
    ///
    /// # Errors
    /// The log's failure while the store is tainted (I5).
    pub fn digest_root(&self) -> Result<Digest> {
        self.serving(|r| r.digests().root())
    }

    /// Leaf sums of the digest tree (what a peer needs to find differing buckets).
    ///
    /// # Errors
    /// As [`Store::digest_root`].
    pub fn digest_leaves(&self) -> Result<Vec<u128>> {
        self.serving(|r| r.digests().leaves().to_vec())
    }

    /// Sessions and digests in the given leaf buckets.
    ///
    /// # Errors
    /// As [`Store::digest_root`].
    pub fn digest_entries(&self, leaves: &[u16]) -> Result<Vec<(SessionId, Digest)>> {
        self.serving(|r| r.digests().entries(leaves))
    }

    /// Runs `f` on the digest tree (middle sums, leaves under them, ...) unless the store is
    /// tainted.
    ///
    /// # Errors
    /// As [`Store::digest_root`].
    pub fn with_digests<T>(&self, f: impl FnOnce(&crate::digest::DigestTree) -> T) -> Result<T> {
        self.serving(|r| f(r.digests()))
    }

    // ----- durability ----------------------------------------------------------------------

    /// Takes an incremental snapshot now (a new base when the compaction policy says so).
    ///
    /// # Errors
    /// I/O errors; the sessions it would have written stay dirty for the next attempt.
    pub fn snapshot(&self) -> Result<SnapshotReport> {
        self.check_open()?;
        self.inner.snapshot_now(false)
    }

    /// Compacts now: writes a new base snapshot of every session.
    ///
    /// # Errors
    /// As [`Store::snapshot`].
    pub fn compact(&self) -> Result<SnapshotReport> {
        self.check_open()?;
        self.inner.snapshot_now(true)
    }

    /// Stops the background thread, makes everything logged durable, and releases the
    /// directory. Also done (without the error) on drop.
    ///
    /// # Errors
    /// The failure that poisoned the log, if one did.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        *self.inner.stop.lock() = true;
        self.inner.wake.notify_all();
        if let Some(h) = self.background.lock().take() {
            let _ = h.join();
        }
        let mut result = self.inner.wal.close();
        if result.is_ok() {
            result = self.record_clean_close();
        }
        self.inner.lock.lock().take();
        result
    }

    /// After the log closed cleanly: the manifest records exactly where it ends (I3), unless
    /// memory holds changes the log refused.
    fn record_clean_close(&self) -> Result<()> {
        let st = self.inner.state.read();
        // A replica that crashed knowing no member must still be fenced when it meets its
        // first one: a clean close would make the next open forget that it crashed.
        if self.inner.is_tainted(&st)
            || st.replica.has_unlogged_changes()
            || st.replica.fence_at_first_member
        {
            return Ok(());
        }
        let fence = st.replica.fence();
        let now_ms = st.replica.now_ms();
        drop(st);
        let mut snap = self.inner.snap.lock();
        let log_end = self.inner.wal.last_seq();
        let m = open::record_clean_close(
            self.inner.fs.as_ref(),
            &self.inner.dir,
            &snap.manifest,
            log_end,
            fence,
            now_ms,
        )?;
        snap.manifest = m;
        Ok(())
    }

    /// Stops the store as a crash would: nothing queued is written, nothing more is synced
    /// or installed, and the directory is released. For simulations and crash tests.
    #[doc(hidden)]
    pub fn kill(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        *self.inner.stop.lock() = true;
        self.inner.wake.notify_all();
        if let Some(h) = self.background.lock().take() {
            let _ = h.join();
        }
        let _ = self.inner.wal.kill();
        self.inner.lock.lock().take();
    }

    /// Under [`crate::wal::WriterMode::Inline`]: writes what is queued and syncs when `sync`
    /// (see [`Wal::pump`](crate::wal::Wal::pump)).
    ///
    /// # Errors
    /// The failure that poisoned the log, if one did.
    #[doc(hidden)]
    pub fn pump_wal(&self, sync: bool) -> Result<()> {
        self.inner.wal.pump(sync)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

impl Inner {
    /// The state, locked for writing within this thread's lock budget.
    pub(crate) fn lock_write(&self) -> Result<parking_lot::RwLockWriteGuard<'_, State>> {
        match LOCK_BUDGET.with(std::cell::Cell::get) {
            None => Ok(self.state.write()),
            Some(budget) => self.state.try_write_for(budget).ok_or(Error::Busy),
        }
    }

    /// The state, locked for reading within this thread's lock budget.
    pub(crate) fn lock_read(&self) -> Result<parking_lot::RwLockReadGuard<'_, State>> {
        match LOCK_BUDGET.with(std::cell::Cell::get) {
            None => Ok(self.state.read()),
            Some(budget) => self.state.try_read_for(budget).ok_or(Error::Busy),
        }
    }

    fn tick(&self) -> Result<()> {
        let mut st = self.state.write();
        self.note_durable(&mut st);
        let changes = st.replica.tick();
        self.log_changes(&mut st, &changes).map(|_| ())
    }

    /// Logs changes made under the lock (by a frame, an ack or maintenance); returns the WAL
    /// sequence number, if anything was logged.
    ///
    /// Changes too large for one record (a completed state transfer of a big store) go into
    /// several consecutive records, in order; the transfer's `Adopt` is the last change, so
    /// a crash between them leaves merged sessions but not the claim to hold them all.
    pub(crate) fn log_changes(&self, st: &mut State, changes: &[Change]) -> Result<Option<u64>> {
        if changes.is_empty() {
            return Ok(None);
        }
        match self.append_changes(changes) {
            Ok(lsn) => {
                st.replica.note_logged(lsn);
                Ok(Some(lsn))
            }
            Err(e) => {
                // The changes are applied in memory and no record holds them.
                self.tainted.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    fn append_changes(&self, changes: &[Change]) -> Result<u64> {
        let body = encode_changes(changes);
        let limit = self.wal.config().max_record_size as usize / 2;
        if body.len() <= limit || changes.len() == 1 {
            return self.wal.append(&body);
        }
        let mut last = 0;
        let mut batch: Vec<&Change> = Vec::new();
        let mut size = 0;
        for c in changes {
            let len = codec::to_bytes(c).len();
            if !batch.is_empty() && size + len > limit {
                last = self.wal.append(&encode_refs(&batch))?;
                batch.clear();
                size = 0;
            }
            batch.push(c);
            size += len;
        }
        if !batch.is_empty() {
            last = self.wal.append(&encode_refs(&batch))?;
        }
        Ok(last)
    }

    /// Tells the replica how far the log is durable.
    pub(crate) fn note_durable(&self, st: &mut State) {
        st.replica.note_durable(self.wal.durable_seq());
    }

    /// Whether memory may hold changes the log did not take (I5): the log failed with
    /// changes applied and not durable.
    pub(crate) fn is_tainted(&self, st: &State) -> bool {
        if !self.wal.has_failed() {
            return false;
        }
        self.tainted.load(Ordering::Acquire)
            || st.replica.has_unlogged_changes()
            || st.replica.logged_lsn() > self.wal.durable_seq()
    }

    /// Refuses while tainted, with the log's failure.
    pub(crate) fn check_serving(&self, st: &State) -> Result<()> {
        if self.is_tainted(st) {
            self.tainted.store(true, Ordering::Release);
            return Err(self
                .wal
                .failure()
                .unwrap_or_else(|| Error::Poisoned("the log failed".into())));
        }
        Ok(())
    }
}

fn spawn_background(inner: &Arc<Inner>) -> Result<Option<JoinHandle<()>>> {
    let (tick, snap) = (inner.config.tick_interval, inner.config.snapshot_interval);
    if tick.is_none() && snap.is_none() {
        return Ok(None);
    }
    let inner = Arc::clone(inner);
    let dir = inner.dir.clone();
    std::thread::Builder::new()
        .name("session-ha-maint".into())
        .spawn(move || background(&inner))
        .map(Some)
        .map_err(|source| Error::Io {
            op: "start the maintenance thread for",
            path: dir,
            source,
        })
}

fn background(inner: &Inner) {
    let tick_every = inner.config.tick_interval;
    let snap_every = inner.config.snapshot_interval;
    let mut next_tick = Instant::now() + tick_every.unwrap_or(Duration::from_secs(3600));
    loop {
        let next_snap = inner.snap.lock().next_due;
        let wake_at = if tick_every.is_some() {
            next_tick.min(next_snap)
        } else {
            next_snap
        };
        {
            let mut stop = inner.stop.lock();
            if *stop {
                return;
            }
            let _ = inner.wake.wait_until(&mut stop, wake_at);
            if *stop {
                return;
            }
        }
        let now = Instant::now();
        if let Some(every) = tick_every {
            if now >= next_tick {
                // A failed tick means the log failed: status reports it, writes refuse.
                let _ = inner.tick();
                next_tick = now + every;
            }
        }
        if let Some(every) = snap_every {
            if now >= next_snap {
                // A failed snapshot is recorded in the status and retried next interval.
                let _ = inner.snapshot_now(false);
                inner.snap.lock().next_due = Instant::now() + every;
            }
        }
    }
}
