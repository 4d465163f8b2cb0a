//! [`Store`]: a [`Replica`] made durable in its own directory. Every change is applied in
//! memory and appended to the WAL under one lock (so log order is apply order); a write
//! returns once its record is durable ([`WriteMode::WaitDurable`]); an ack to a peer is sent
//! only once what it acknowledges is durable; own ops reach peers only once durable (a crash
//! can never make a sequence number be reused). A background thread runs maintenance
//! ([`Replica::tick`]) and the incremental snapshots. Layout on disk: `layout.rs`.

mod backup;
mod config;
mod layout;
mod recovery;
mod replication;
mod snapshotter;
mod status;
mod verify;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

pub use backup::{restore_backup, BackupReport, RestoreReport};
pub use config::{CompactionPolicy, RecoveryMode, StoreConfig, WriteMode};
pub use recovery::RecoveryReport;
pub use replication::Receipt;
pub use snapshotter::SnapshotReport;
pub use status::{SnapshotStatus, StoreStatus, WalStatus};
pub use verify::{
    dry_run_recovery, recovered_state, verify_dir, FileCheck, RecoveredState, RecoveryPlan,
    VerifyReport,
};

use crate::clock::{ReplicaId, TimeSource, WallClock};
use crate::codec;
use crate::crdt::{Op, SessionId, SessionView};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::fs::{DirLock, OsFs, Vfs};
use crate::replicate::{Change, Replica};
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

/// State under the store's lock: the replica and the own ops waiting for durability.
pub(crate) struct State {
    pub(crate) replica: Replica,
    /// `(wal seq, own seq)` of records holding own ops not yet known durable.
    own_pending: VecDeque<(u64, u64)>,
}

pub(crate) struct Inner {
    pub(crate) fs: Arc<dyn Vfs>,
    pub(crate) dir: PathBuf,
    pub(crate) config: StoreConfig,
    pub(crate) incarnation: u32,
    pub(crate) state: RwLock<State>,
    pub(crate) wal: Wal,
    pub(crate) snap: Mutex<SnapState>,
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
        crate::fs::create_dir_durably(fs.as_ref(), dir)?;
        let lock = fs.lock_dir(dir)?;
        let (recovered, lock) = match recovery::recover(&fs, dir, &config, &time) {
            Ok(r) => (r, lock),
            Err(e)
                if recovery::is_damage(&e) && config.recovery == RecoveryMode::RebuildFromPeers =>
            {
                let moved = quarantine(&fs, dir, time.now_ms())?;
                drop(lock);
                crate::fs::create_dir_durably(fs.as_ref(), dir)?;
                let lock = fs.lock_dir(dir)?;
                let mut r = recovery::recover(&fs, dir, &config, &time)?;
                r.report.fallbacks.push(format!("moved aside after: {e}"));
                r.report.quarantined = Some(moved);
                (r, lock)
            }
            Err(e) => return Err(e),
        };
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
            config,
            state: RwLock::new(State {
                replica: recovered.replica,
                own_pending: VecDeque::new(),
            }),
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

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Applies a local change and logs it; returns its WAL sequence number once durable
    /// (or once queued, under [`WriteMode::Queued`]).
    fn write(&self, f: impl FnOnce(&mut Replica) -> Result<Op>) -> Result<u64> {
        self.check_open()?;
        let (lsn, wake) = {
            let mut st = self.inner.lock_write()?;
            if let Some(why) = self.inner.wal.failure() {
                return Err(why);
            }
            let op = f(&mut st.replica)?;
            let own = op.dot.seq;
            let (lsn, wake) = self
                .inner
                .wal
                .append_quiet(&codec::to_bytes(&[Change::Op(op)][..]))?;
            st.own_pending.push_back((lsn, own));
            self.release_durable(&mut st);
            (lsn, wake)
        };
        if wake {
            self.inner.wal.wake_writer();
        }
        if self.inner.config.write_mode == WriteMode::WaitDurable {
            self.inner.wal.wait_durable(lsn)?;
        }
        Ok(lsn)
    }

    /// Waits until the record `lsn` (from a write under [`WriteMode::Queued`]) is durable.
    ///
    /// # Errors
    /// [`Error::Poisoned`] / [`Error::NoSpace`] when the log failed, [`Error::Closed`].
    pub fn wait_durable(&self, lsn: u64) -> Result<()> {
        self.inner.wal.wait_durable(lsn)
    }

    /// WAL sequence number up to which everything is durable.
    pub fn durable_lsn(&self) -> u64 {
        self.inner.wal.durable_seq()
    }

    /// Sets one field. See [`Replica::put`].
    ///
    /// # Errors
    /// As [`Replica::put`], plus log failures ([`Error::Poisoned`], [`Error::NoSpace`]) and
    /// [`Error::Closed`].
    pub fn put(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<u64> {
        let (s, k, v) = (session.into(), key.into(), value.into());
        self.write(|r| r.put(s, k, v))
    }

    /// Sets several fields in one change. See [`Replica::put_fields`].
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn put_fields(
        &self,
        session: impl Into<SessionId>,
        fields: Vec<(Bytes, Bytes)>,
    ) -> Result<u64> {
        let s = session.into();
        self.write(|r| r.put_fields(s, fields))
    }

    /// Deletes one field. See [`Replica::delete_field`].
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn delete_field(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
    ) -> Result<u64> {
        let (s, k) = (session.into(), key.into());
        self.write(|r| r.delete_field(s, k))
    }

    /// Ends (deletes) a session for good. See [`Replica::end`].
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn end(&self, session: impl Into<SessionId>) -> Result<u64> {
        let s = session.into();
        self.write(|r| r.end(s))
    }

    /// Extends a session's life. See [`Replica::touch`].
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn touch(&self, session: impl Into<SessionId>, ttl_ms: u64) -> Result<u64> {
        let s = session.into();
        self.write(|r| r.touch(s, ttl_ms))
    }

    /// Adds to a counter. See [`Replica::counter_add`].
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn counter_add(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        delta: i64,
    ) -> Result<u64> {
        let (s, k) = (session.into(), key.into());
        self.write(|r| r.counter_add(s, k, delta))
    }

    /// Adds a set element. See [`Replica::set_add`].
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn set_add(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<u64> {
        let (s, k, e) = (session.into(), key.into(), elem.into());
        self.write(|r| r.set_add(s, k, e))
    }

    /// Removes a set element. See [`Replica::set_remove`].
    ///
    /// # Errors
    /// As [`Store::put`].
    pub fn set_remove(
        &self,
        session: impl Into<SessionId>,
        key: impl Into<Bytes>,
        elem: impl Into<Bytes>,
    ) -> Result<u64> {
        let (s, k, e) = (session.into(), key.into(), elem.into());
        self.write(|r| r.set_remove(s, k, e))
    }

    /// A session as a reader sees it. See [`Replica::get`].
    pub fn get(&self, session: &[u8]) -> Option<SessionView> {
        self.inner.state.read().replica.get(session)
    }

    /// One field's value. See [`Replica::get_field`].
    pub fn get_field(&self, session: &[u8], key: &[u8]) -> Option<Bytes> {
        self.inner.state.read().replica.get_field(session, key)
    }

    /// [`Store::get`] within this thread's lock budget.
    ///
    /// # Errors
    /// [`Error::Busy`] (see [`set_thread_lock_budget`]).
    pub fn try_get(&self, session: &[u8]) -> Result<Option<SessionView>> {
        Ok(self.inner.lock_read()?.replica.get(session))
    }

    /// [`Store::get_field`] within this thread's lock budget.
    ///
    /// # Errors
    /// [`Error::Busy`] (see [`set_thread_lock_budget`]).
    pub fn try_get_field(&self, session: &[u8], key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.inner.lock_read()?.replica.get_field(session, key))
    }

    /// Ids of the sessions a reader sees, in order.
    pub fn session_ids(&self) -> Vec<SessionId> {
        self.inner.state.read().replica.session_ids()
    }

    /// Runs `f` on the replica under the read lock (for reads this API does not wrap).
    pub fn read<T>(&self, f: impl FnOnce(&Replica) -> T) -> T {
        f(&self.inner.state.read().replica)
    }

    // ----- digests -------------------------------------------------------------------------

    /// Root of the digest tree.
    pub fn digest_root(&self) -> Digest {
        self.inner.state.read().replica.digests().root()
    }

    /// Leaf sums of the digest tree (what a peer needs to find differing buckets).
    pub fn digest_leaves(&self) -> Vec<u128> {
        self.inner.state.read().replica.digests().leaves().to_vec()
    }

    /// Sessions and digests in the given leaf buckets.
    pub fn digest_entries(&self, leaves: &[u16]) -> Vec<(SessionId, Digest)> {
        self.inner.state.read().replica.digests().entries(leaves)
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
        let result = self.inner.wal.close();
        self.inner.lock.lock().take();
        result
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
        let changes = st.replica.tick();
        self.log_changes(&mut st, &changes).map(|_| ())
    }

    /// Logs changes made under the lock (by a frame, an ack or maintenance); returns the WAL
    /// sequence number, if anything was logged.
    ///
    /// Changes too large for one record (a completed state transfer of a big store) go into
    /// several consecutive records, in order; the transfer's `Adopt` is the last change, so
    /// a crash between them leaves merged sessions but not the claim to hold them all.
    fn log_changes(&self, st: &mut State, changes: &[Change]) -> Result<Option<u64>> {
        if changes.is_empty() {
            return Ok(None);
        }
        let body = codec::to_bytes(&changes);
        let limit = self.wal.config().max_record_size as usize / 2;
        let lsn = if body.len() <= limit || changes.len() == 1 {
            self.wal.append(&body)?
        } else {
            let mut last = 0;
            let mut batch: Vec<&Change> = Vec::new();
            let mut size = 0;
            for c in changes {
                let len = codec::to_bytes(c).len();
                if !batch.is_empty() && size + len > limit {
                    last = self.wal.append(&codec::to_bytes(&batch))?;
                    batch.clear();
                    size = 0;
                }
                batch.push(c);
                size += len;
            }
            if !batch.is_empty() {
                last = self.wal.append(&codec::to_bytes(&batch))?;
            }
            last
        };
        let me = st.replica.id();
        let own = changes.iter().filter_map(|c| match c {
            Change::Op(op) if op.dot.replica == me => Some(op.dot.seq),
            _ => None,
        });
        if let Some(seq) = own.max() {
            st.own_pending.push_back((lsn, seq));
        }
        Ok(Some(lsn))
    }
}

/// Moves a damaged store directory aside; returns where.
fn quarantine(fs: &Arc<dyn Vfs>, dir: &Path, now_ms: u64) -> Result<PathBuf> {
    let mut name = dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".quarantine-{now_ms}"));
    let to = dir.with_file_name(name);
    fs.rename(dir, &to)?;
    fs.sync_dir(crate::fs::parent_dir(dir))?;
    Ok(to)
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
