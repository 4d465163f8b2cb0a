//! The background writer: the only code that writes to, syncs or rolls WAL segments after
//! open. Owns the active segment's file handle and the durability watermarks. No byte layout
//! of its own: it writes records (see `record`) into segments (see `segment`).
//!
//! ```text
//!  appenders ──► Queue{bodies, lens, first_seq} ──(swap, one lock)──► writer thread
//!  waiters ──► Queue{durable_wanted} (EveryMillis)                    │ Always, or a waiter under
//!                                                                     │   EveryMillis: gather as many
//!                                                                     │   records as the last sync
//!                                                                     │   covered
//!                                                                     │ encode batch
//!                                                                     │ roll if the segment is full
//!                                                                     │ one append()
//!                                                                     │ one sync_data() per policy
//!  waiters ◄── Progress{written, synced, durable} + notify_all ◄──────┘
//! ```
//!
//! Group commit under `EveryMillis` is leader/follower: the first caller to wait for a
//! record wakes the writer, which syncs the next batch at once; callers arriving while that
//! sync runs queue their records and their wish, and share the sync after it. The period
//! is the longest a record nobody waits for stays unsynced, not how long a waiter waits.
//!
//! Any failed write, sync or roll stops the writer for good: the failure is recorded in both
//! the queue (appends refuse) and the progress (waiters wake with it); an fsync is never
//! retried. On `ENOSPC` the active segment is first cut back to its last complete batch.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::MutexGuard;

use super::record::{encode_record, encode_sealed_record, RECORD_OVERHEAD};
use super::segment::{create_segment, OpenSegment};
use super::shared::{Failure, Queue, Shared};
use super::{FsyncPolicy, SegmentInfo};
use crate::crypto::{KeyRing, TAG_LEN};
use crate::fs::Vfs;

/// The segment being appended to.
#[derive(Debug)]
pub(crate) struct Active {
    pub seg: OpenSegment,
    /// Bytes in the file (header included), all written.
    pub len: u64,
    /// Bytes known to be on stable storage.
    pub synced_len: u64,
    /// Bytes holding only records reported durable: never cut by an ENOSPC truncation.
    pub acked_len: u64,
    pub records: u64,
}

/// The writer thread's state.
pub(crate) struct Writer {
    pub shared: Arc<Shared>,
    pub fs: Arc<dyn Vfs>,
    pub dir: PathBuf,
    pub policy: FsyncPolicy,
    pub segment_size: u64,
    pub active: Active,
    /// Highest seq written to the OS / fdatasync'd.
    pub written: u64,
    pub synced: u64,
    pub last_sync: Instant,
    /// How long the last fdatasync took, and how many records it covered:
    /// what the next batch waits for (see `gather`).
    pub last_sync_took: Duration,
    pub last_batch_records: usize,
    pub out: Vec<u8>,
    pub spare_bodies: Vec<u8>,
    pub spare_lens: Vec<u32>,
    /// Run by callers instead of a thread ([`super::WriterMode::Inline`]): batches are taken
    /// without waiting, and `EveryMillis` syncs only when a caller asks for one.
    pub inline: bool,
    /// New segments are encrypted under this ring's current key.
    pub keys: Option<KeyRing>,
}

struct Batch {
    bodies: Vec<u8>,
    lens: Vec<u32>,
    first_seq: u64,
    sync_requested: bool,
    durable_wanted: bool,
    closing: bool,
    killed: bool,
}

/// Marks the writer gone (and the WAL poisoned if it panicked) however the thread ends, so
/// that no waiter sleeps forever.
struct ExitGuard(Arc<Shared>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let panicked = std::thread::panicking()
            .then(|| Failure::Poisoned("the WAL writer thread panicked".into()));
        {
            let mut q = self.0.queue.lock();
            if q.failure.is_none() {
                q.failure = panicked.clone();
            }
        }
        {
            let mut p = self.0.progress.lock();
            if p.failure.is_none() {
                if panicked.is_some() {
                    self.0.failed.store(true, Ordering::Release);
                }
                p.failure = panicked;
            }
            p.writer_gone = true;
        }
        self.0.progressed.notify_all();
        self.0.space.notify_all();
    }
}

impl Writer {
    /// The thread's body: batches until closed or failed.
    pub fn run(mut self) {
        let _guard = ExitGuard(Arc::clone(&self.shared));
        loop {
            let batch = self.next_batch();
            if self.write_batch(batch) {
                return;
            }
        }
    }

    /// Processes one batch and publishes the outcome; true when the writer is done (closed,
    /// killed or failed).
    fn write_batch(&mut self, batch: Batch) -> bool {
        if batch.killed {
            return true;
        }
        let closing = batch.closing;
        let result = self.process(&batch);
        self.recycle(batch);
        match result {
            Ok(()) => {
                self.publish(None);
                closing
            }
            Err((failure, truncate_to)) => {
                self.truncate_after_no_space(&failure, truncate_to);
                self.publish(Some(failure));
                true
            }
        }
    }

    /// Inline mode: writes everything queued now (syncing under `Always`, or when `sync`),
    /// in the caller's thread. Returns true when the writer is done for good; the caller
    /// then drops it, marking it gone.
    pub fn step(&mut self, sync: bool) -> bool {
        let shared = Arc::clone(&self.shared);
        let batch = {
            let mut q = shared.queue.lock();
            q.sync_requested |= sync;
            self.take_batch(&mut q)
        };
        shared.space.notify_all();
        self.write_batch(batch)
    }

    /// Marks the writer gone, as its thread's exit guard does (inline mode).
    pub fn finish(self) {
        drop(ExitGuard(Arc::clone(&self.shared)));
    }

    /// When an `EveryMillis` sync is due, if anything is waiting for one.
    fn sync_deadline(&self) -> Option<Instant> {
        match self.policy {
            FsyncPolicy::EveryMillis(ms) if self.written > self.synced => {
                Some(self.last_sync + Duration::from_millis(u64::from(ms)))
            }
            _ => None,
        }
    }

    /// Sleeps until there is something to do, then takes everything queued.
    fn next_batch(&mut self) -> Batch {
        let shared = Arc::clone(&self.shared);
        let mut q = shared.queue.lock();
        loop {
            let deadline = self.sync_deadline();
            let due = deadline.is_some_and(|d| Instant::now() >= d);
            let wanted = q.sync_requested || q.durable_wanted;
            if !q.lens.is_empty() || wanted || q.closing || q.killed || due {
                break;
            }
            match deadline {
                Some(d) => {
                    shared.work.wait_until(&mut q, d);
                }
                None => shared.work.wait(&mut q),
            }
        }
        self.gather(&shared, &mut q);
        let batch = self.take_batch(&mut q);
        drop(q);
        shared.space.notify_all();
        batch
    }

    /// Swaps everything queued out into a batch.
    fn take_batch(&mut self, q: &mut Queue) -> Batch {
        let mut bodies = std::mem::take(&mut self.spare_bodies);
        let mut lens = std::mem::take(&mut self.spare_lens);
        std::mem::swap(&mut q.bodies, &mut bodies);
        std::mem::swap(&mut q.lens, &mut lens);
        Batch {
            bodies,
            lens,
            first_seq: q.first_seq,
            sync_requested: std::mem::take(&mut q.sync_requested),
            durable_wanted: std::mem::take(&mut q.durable_wanted),
            closing: q.closing,
            killed: q.killed,
        }
    }

    /// Group commit under `Always`: the waiters released by the last sync append their next
    /// records one by one as they get CPU time, so a batch taken at the first of them would
    /// hold one record and make the rest wait a whole extra fdatasync. When fewer records are
    /// queued than the last sync covered, wait for that many, but never longer than the
    /// last fdatasync took (capped at 1 ms). A lone writer (batches of one) never waits.
    /// The same under `EveryMillis` when a caller waits for durability (the batch syncs).
    fn gather(&self, shared: &Shared, q: &mut MutexGuard<'_, Queue>) {
        let want = self.last_batch_records;
        let syncs = match self.policy {
            FsyncPolicy::Always => true,
            FsyncPolicy::EveryMillis(_) => q.durable_wanted,
            FsyncPolicy::Never => false,
        };
        if !syncs || q.lens.is_empty() || q.lens.len() >= want || q.sync_requested || q.closing {
            return;
        }
        let deadline = Instant::now() + self.last_sync_took.min(Duration::from_millis(1));
        q.gather_target = want;
        while q.lens.len() < want && !q.closing && !q.sync_requested {
            if shared.work.wait_until(q, deadline).timed_out() {
                break;
            }
        }
        q.gather_target = 0;
    }

    fn recycle(&mut self, mut batch: Batch) {
        batch.bodies.clear();
        batch.lens.clear();
        self.spare_bodies = batch.bodies;
        self.spare_lens = batch.lens;
    }

    /// Writes a batch (rolling segments as needed) and syncs per policy. On failure returns
    /// what went wrong and where an `ENOSPC` may cut the active segment back to.
    fn process(&mut self, batch: &Batch) -> Result<(), (Failure, u64)> {
        let mut at = 0usize;
        let mut pending = 0u64;
        self.out.clear();
        for (seq, &len) in (batch.first_seq..).zip(&batch.lens) {
            let body = &batch.bodies[at..at + len as usize];
            at += len as usize;
            let tag = if self.active.seg.cipher.is_some() {
                TAG_LEN
            } else {
                0
            };
            let encoded = (RECORD_OVERHEAD + tag + len as usize) as u64;
            let full = self.active.len + self.out.len() as u64 + encoded > self.segment_size;
            if full && self.active.records + pending > 0 {
                self.flush(pending)?;
                pending = 0;
                self.roll(seq)?;
            }
            let salt = self.active.seg.header.salt;
            match &self.active.seg.cipher {
                Some(c) => encode_sealed_record(&mut self.out, salt, seq, body, c),
                None => encode_record(&mut self.out, salt, seq, body),
            }
            pending += 1;
        }
        self.flush(pending)?;
        let unsynced = self.written > self.synced;
        let sync = unsynced
            && match self.policy {
                FsyncPolicy::Always => true,
                FsyncPolicy::EveryMillis(ms) => {
                    batch.sync_requested
                        || batch.durable_wanted
                        || batch.closing
                        || (!self.inline
                            && self.last_sync.elapsed() >= Duration::from_millis(u64::from(ms)))
                }
                FsyncPolicy::Never => batch.sync_requested || batch.closing,
            };
        if sync {
            // The records this sync covers (under `EveryMillis`, some were written by
            // earlier batches): what the next batch gathers for.
            let covered = (self.written - self.synced) as usize;
            let started = Instant::now();
            self.sync_active()?;
            self.last_sync_took = started.elapsed();
            self.last_batch_records = covered;
        }
        Ok(())
    }

    /// Appends the encoded records in `out` to the active segment.
    fn flush(&mut self, records: u64) -> Result<(), (Failure, u64)> {
        if self.out.is_empty() {
            return Ok(());
        }
        let before = self.active.len;
        if let Err(e) = self.active.seg.file.append(&self.out) {
            return Err((Failure::from_error(&e), before));
        }
        self.active.len += self.out.len() as u64;
        self.active.records += records;
        self.written += records;
        if self.policy == FsyncPolicy::Never {
            self.active.acked_len = self.active.len;
        }
        self.out.clear();
        if let Some(last) = self.shared.segments.lock().last_mut() {
            last.bytes = self.active.len;
        }
        Ok(())
    }

    fn sync_active(&mut self) -> Result<(), (Failure, u64)> {
        if let Err(e) = self.active.seg.file.sync_data() {
            return Err((Failure::from_error(&e), self.active.acked_len));
        }
        self.last_sync = Instant::now();
        self.synced = self.written;
        self.active.synced_len = self.active.len;
        self.active.acked_len = self.active.len;
        Ok(())
    }

    /// Closes the full active segment (synced, whatever the policy, so that every segment but
    /// the last is wholly durable) and starts segment `first_seq`.
    fn roll(&mut self, first_seq: u64) -> Result<(), (Failure, u64)> {
        if self.active.len > self.active.synced_len {
            self.sync_active()?;
        }
        let seg = match create_segment(self.fs.as_ref(), &self.dir, first_seq, self.keys.as_ref()) {
            Ok(seg) => seg,
            // The old segment is complete and synced: nothing to cut.
            Err(e) => return Err((Failure::from_error(&e), self.active.len)),
        };
        let len = seg.header.len() as u64;
        self.shared.segments.lock().push(SegmentInfo {
            path: seg.path.clone(),
            first_seq,
            bytes: len,
        });
        self.active = Active {
            seg,
            len,
            synced_len: len,
            acked_len: len,
            records: 0,
        };
        Ok(())
    }

    /// On `ENOSPC`, cuts the active segment back to `len` (the end of the last complete
    /// batch, never below what was acknowledged) so that the disk holds no half batch. Not
    /// synced: no fsync is issued after a failure. A failure here changes nothing that matters:
    /// recovery treats the half batch as a torn tail.
    fn truncate_after_no_space(&mut self, failure: &Failure, len: u64) {
        if matches!(failure, Failure::NoSpace(_))
            && len >= self.active.acked_len
            && self.active.seg.file.set_len(len).is_ok()
        {
            self.active.len = len;
        }
    }

    /// Publishes the watermarks (and a failure) and wakes every waiter.
    fn publish(&self, failure: Option<Failure>) {
        let durable = match self.policy {
            FsyncPolicy::Never => self.written,
            _ => self.synced,
        };
        if let Some(f) = &failure {
            self.shared.queue.lock().failure = Some(f.clone());
            self.shared.failed.store(true, Ordering::Release);
        }
        {
            let mut p = self.shared.progress.lock();
            p.written = self.written;
            p.synced = self.synced;
            p.durable = durable;
            if failure.is_some() {
                p.failure = failure;
            }
        }
        self.shared.durable_seq.store(durable, Ordering::Release);
        self.shared.progressed.notify_all();
        self.shared.space.notify_all();
    }
}
