//! [`Wal`]: the handle callers hold. Owns the directory lock, the writer thread and the queue
//! it feeds; the bytes it writes are laid out in `record` and `segment`.
//!
//! ```text
//!  caller lock { apply change in memory; seq = wal.append(body) }   // seq order = apply order
//!  wal.wait_durable(seq)                                            // outside the caller lock
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::recovery::recover;
use super::shared::{Progress, Shared};
use super::writer::Writer;
use super::{FsyncPolicy, RecoveryReport, SegmentInfo, WalConfig, WriterMode};
use crate::error::{Error, Result};
use crate::fs::{create_dir_durably, DirLock, Vfs};

/// An open write-ahead log. `Send + Sync`: share it behind an `Arc`.
pub struct Wal {
    shared: Arc<Shared>,
    fs: Arc<dyn Vfs>,
    dir: PathBuf,
    config: WalConfig,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The writer itself under [`WriterMode::Inline`] (run by whoever needs it to run).
    inline: Mutex<Option<Writer>>,
    lock: Mutex<Option<DirLock>>,
}

impl fmt::Debug for Wal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.dir)
            .field("last_seq", &self.last_seq())
            .field("durable_seq", &self.durable_seq())
            .finish()
    }
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, locks the directory, recovers, and starts
    /// the writer.
    ///
    /// `apply(seq, body)` is called in order for every record with `seq > replay_after`.
    /// `replay_after` is also what a snapshot already covers: segments wholly at or below it
    /// may be missing without that being a gap, and numbering continues after it even if the
    /// log ends before it. Pass 0 to replay everything.
    ///
    /// # Errors
    /// [`Error::Locked`] if the directory is open elsewhere; [`Error::Corrupt`] for anything
    /// that fails verification other than a torn tail of the last segment (which is cut off and
    /// reported); [`Error::InvalidArgument`] for a bad config; whatever `apply` returns;
    /// [`Error::Io`] / [`Error::NoSpace`]. On error, discard what `apply` built.
    pub fn open(
        fs: Arc<dyn Vfs>,
        dir: &Path,
        config: WalConfig,
        replay_after: u64,
        mut apply: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<(Wal, RecoveryReport)> {
        config.validate()?;
        create_dir_durably(fs.as_ref(), dir)?;
        let lock = fs.lock_dir(dir)?;
        let rec = recover(fs.as_ref(), dir, &config, replay_after, &mut apply)?;
        let shared = Arc::new(Shared::default());
        let last = rec.next_seq - 1;
        {
            let mut q = shared.queue.lock();
            q.next_seq = rec.next_seq;
            q.first_seq = rec.next_seq;
        }
        {
            let mut p = shared.progress.lock();
            p.written = last;
            p.synced = last;
            p.durable = last;
        }
        shared.last_seq.store(last, Ordering::Release);
        shared.durable_seq.store(last, Ordering::Release);
        *shared.segments.lock() = rec.segments;
        let writer = Writer {
            shared: Arc::clone(&shared),
            fs: Arc::clone(&fs),
            dir: dir.to_path_buf(),
            policy: config.fsync,
            segment_size: config.segment_size,
            active: rec.active,
            written: last,
            synced: last,
            last_sync: Instant::now(),
            last_sync_took: Duration::ZERO,
            last_batch_records: 0,
            out: Vec::new(),
            spare_bodies: Vec::new(),
            spare_lens: Vec::new(),
            inline: config.writer == WriterMode::Inline,
            keys: config.encryption.clone(),
        };
        let (handle, inline) = match config.writer {
            WriterMode::Thread => {
                let handle = std::thread::Builder::new()
                    .name("session-ha-wal".into())
                    .spawn(move || writer.run())
                    .map_err(|e| Error::Io {
                        op: "start the writer thread for",
                        path: dir.to_path_buf(),
                        source: e,
                    })?;
                (Some(handle), None)
            }
            WriterMode::Inline => (None, Some(writer)),
        };
        let wal = Wal {
            shared,
            fs,
            dir: dir.to_path_buf(),
            config,
            writer: Mutex::new(handle),
            inline: Mutex::new(inline),
            lock: Mutex::new(Some(lock)),
        };
        Ok((wal, rec.report))
    }

    /// Under [`WriterMode::Inline`]: writes everything queued in the calling thread, and
    /// syncs it when `sync` (or under [`FsyncPolicy::Always`]). Under a writer thread:
    /// [`Wal::sync`] when `sync`, else nothing.
    ///
    /// # Errors
    /// The failure that poisoned the log, if one did.
    pub fn pump(&self, sync: bool) -> Result<()> {
        let mut slot = self.inline.lock();
        let Some(writer) = slot.as_mut() else {
            drop(slot);
            if sync && self.config.writer == WriterMode::Thread {
                return self.sync();
            }
            return self.failure().map_or(Ok(()), Err);
        };
        if writer.step(sync) {
            if let Some(w) = slot.take() {
                w.finish();
            }
        }
        drop(slot);
        self.failure().map_or(Ok(()), Err)
    }

    /// Whether records are written by callers ([`WriterMode::Inline`]).
    fn is_inline(&self) -> bool {
        self.config.writer == WriterMode::Inline
    }

    /// Assigns the next sequence number to `body` and queues it for the writer; does not wait
    /// for it to be written. Blocks only while the queue is over `queue_limit_bytes`.
    ///
    /// # Errors
    /// [`Error::ValueTooLarge`] over `max_record_size`; [`Error::Poisoned`] /
    /// [`Error::NoSpace`] after a failed write or sync; [`Error::Closed`] after close.
    pub fn append(&self, body: &[u8]) -> Result<u64> {
        let (seq, wake) = self.append_quiet(body)?;
        if wake {
            self.wake_writer();
        }
        Ok(seq)
    }

    /// [`Wal::append`] without waking the writer: returns the seq and whether the writer must
    /// be woken, which the caller does with [`Wal::wake_writer`] once it has released its own
    /// lock (so that the wake-up, a system call, is not made while others wait for that lock).
    ///
    /// # Errors
    /// As [`Wal::append`].
    pub fn append_quiet(&self, body: &[u8]) -> Result<(u64, bool)> {
        let max = self.config.max_record_size as usize;
        if body.len() > max {
            return Err(Error::ValueTooLarge {
                len: body.len(),
                max,
            });
        }
        let mut q = self.shared.queue.lock();
        loop {
            if let Some(f) = &q.failure {
                return Err(f.to_error());
            }
            if q.closing {
                return Err(Error::Closed);
            }
            if q.bodies.is_empty() || q.bodies.len() + body.len() <= self.config.queue_limit_bytes {
                break;
            }
            if self.is_inline() {
                // Nobody else drains the queue: write it out here (never holding both locks).
                drop(q);
                self.pump(false)?;
                q = self.shared.queue.lock();
                continue;
            }
            self.shared.space.wait(&mut q);
        }
        let was_empty = q.lens.is_empty();
        if was_empty {
            q.first_seq = q.next_seq;
        }
        q.bodies.extend_from_slice(body);
        q.lens.push(body.len() as u32);
        let seq = q.next_seq;
        q.next_seq += 1;
        self.shared.last_seq.store(seq, Ordering::Release);
        let wake = !self.is_inline() && (was_empty || q.lens.len() == q.gather_target);
        Ok((seq, wake))
    }

    /// Wakes the writer thread (after [`Wal::append_quiet`] said so).
    pub fn wake_writer(&self) {
        self.shared.work.notify_one();
    }

    /// Blocks until record `seq` is durable under the fsync policy.
    ///
    /// # Errors
    /// [`Error::Poisoned`] / [`Error::NoSpace`] if a write or sync failed before it became
    /// durable; [`Error::Closed`] if the writer stopped first; [`Error::InvalidArgument`] for
    /// a `seq` never handed out by [`append`](Wal::append).
    pub fn wait_durable(&self, seq: u64) -> Result<()> {
        if seq <= self.shared.durable_seq.load(Ordering::Acquire) {
            return Ok(());
        }
        let last = self.last_seq();
        if seq > last {
            return Err(Error::InvalidArgument(format!(
                "seq {seq} was not appended (last is {last})"
            )));
        }
        if self.is_inline() {
            // Writing is enough under `Never`; the others need a sync.
            self.pump(self.config.fsync != FsyncPolicy::Never)?;
        } else if matches!(self.config.fsync, FsyncPolicy::EveryMillis(_)) {
            // Group commit: the first waiter has the writer sync at once; waiters arriving
            // while that sync runs share the next one. The period only bounds how long a
            // record nobody waits for stays unsynced.
            let mut q = self.shared.queue.lock();
            if !q.durable_wanted {
                q.durable_wanted = true;
                drop(q);
                self.shared.work.notify_one();
            }
        }
        self.wait_for(|p| p.durable >= seq)
    }

    fn wait_for(&self, reached: impl Fn(&Progress) -> bool) -> Result<()> {
        let mut p = self.shared.progress.lock();
        loop {
            if reached(&p) {
                return Ok(());
            }
            if let Some(f) = &p.failure {
                return Err(f.to_error());
            }
            if p.writer_gone {
                return Err(Error::Closed);
            }
            self.shared.progressed.wait(&mut p);
        }
    }

    /// Forces an fdatasync covering everything appended before the call, whatever the policy,
    /// and waits for it.
    ///
    /// # Errors
    /// As [`wait_durable`](Wal::wait_durable).
    pub fn sync(&self) -> Result<()> {
        let target = {
            let mut q = self.shared.queue.lock();
            if let Some(f) = &q.failure {
                return Err(f.to_error());
            }
            if q.closing {
                return Err(Error::Closed);
            }
            q.sync_requested = true;
            q.next_seq - 1
        };
        if self.is_inline() {
            self.pump(true)?;
        }
        self.shared.work.notify_one();
        self.wait_for(|p| p.synced >= target)
    }

    /// The sequence number of the last record appended (0 if none ever was).
    pub fn last_seq(&self) -> u64 {
        self.shared.last_seq.load(Ordering::Acquire)
    }

    /// Every record up to this sequence number is durable under the policy.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// The segment files, oldest first; the last one is being appended to.
    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.shared.segments.lock().clone()
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration the log was opened with.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// Deletes the oldest segments whose records all have sequence numbers below `seq` (a
    /// snapshot covers them), never the active segment, then syncs the directory. Returns how
    /// many were deleted. Segments are deleted oldest first, so a failure leaves no hole.
    ///
    /// # Errors
    /// [`Error::Io`]; segments deleted before the failure stay deleted.
    pub fn remove_segments_before(&self, seq: u64) -> Result<usize> {
        let mut segs = self.shared.segments.lock();
        // Never the file being appended to, whatever the list says.
        let active = segs.last().map(|s| s.path.clone());
        let removable = segs
            .windows(2)
            .take_while(|pair| pair[1].first_seq <= seq && Some(&pair[0].path) != active.as_ref())
            .count();
        let mut removed = 0;
        let mut result = Ok(());
        for info in segs.iter().take(removable) {
            if let Err(e) = self.fs.remove_file(&info.path) {
                result = Err(e);
                break;
            }
            removed += 1;
        }
        segs.drain(..removed);
        drop(segs);
        result?;
        if removed > 0 {
            self.fs.sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Whether a failure poisoned the log (without taking a lock).
    pub fn has_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Acquire)
    }

    /// The failure that poisoned the log, if one did: every append and wait now fails with it
    /// until the log is reopened.
    pub fn failure(&self) -> Option<Error> {
        self.shared
            .progress
            .lock()
            .failure
            .as_ref()
            .map(|f| f.to_error())
    }

    /// Stops accepting appends, lets the writer write and sync everything queued (whatever the
    /// policy), stops it and releases the directory lock. Idempotent; also done on drop.
    ///
    /// # Errors
    /// The failure that poisoned the log, if one did (it is closed either way).
    pub fn close(&self) -> Result<()> {
        self.shared.queue.lock().closing = true;
        self.stop_writer()
    }

    /// Abandons the log as a crash would: whatever is queued is never written, nothing more
    /// is synced, the writer stops and the directory lock is released. For simulations.
    ///
    /// # Errors
    /// The failure that poisoned the log, if one did.
    #[doc(hidden)]
    pub fn kill(&self) -> Result<()> {
        {
            let mut q = self.shared.queue.lock();
            q.killed = true;
            q.closing = true;
        }
        self.stop_writer()
    }

    /// Lets the writer see `closing` (or `killed`) and stop, then releases the lock.
    fn stop_writer(&self) -> Result<()> {
        self.shared.work.notify_one();
        self.shared.space.notify_all();
        let handle = self.writer.lock().take();
        if let Some(h) = handle {
            // The exit guard has already reported a panic as poison.
            let _ = h.join();
        }
        let inline = self.inline.lock().take();
        if let Some(mut w) = inline {
            w.step(true);
            w.finish();
        }
        self.lock.lock().take();
        match &self.shared.progress.lock().failure {
            Some(f) => Err(f.to_error()),
            None => Ok(()),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}
