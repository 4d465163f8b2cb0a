//! The durability notifier: one thread per handle that tells Erlang processes when a WAL
//! record is durable, so that no scheduler ever blocks on an fsync.
//!
//! ```text
//!  await_durable(H, Lsn, Pid, Tag)   (scheduler thread)
//!     Lsn <= durable_lsn   -> {Tag, ok} sent at once from the caller's env
//!     otherwise            -> waiter (Lsn, Pid, copy of Tag) queued, thread woken
//!  notifier thread loop
//!     wait on the queue until it holds a waiter or shutdown is set
//!     store.wait_durable(smallest queued Lsn)
//!     {Tag, ok} to every waiter at or below durable_lsn;
//!     on a log failure {Tag, {error, Reason}} to every waiter above it
//!  shutdown (close, or the handle collected)
//!     {Tag, ok} to waiters the final flush made durable, {Tag, {error, closed}} to the rest
//! ```
//!
//! Messages from this thread go out with `OwnedEnv::send_and_clear`, which the VM allows only
//! on threads it does not manage: the thread is a plain OS thread, and nothing else sends
//! queued waiters' messages.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use rustler::env::SavedTerm;
use rustler::{Encoder, LocalPid, OwnedEnv, Term};
use session_ha::{Error, Store};

use crate::atoms;
use crate::convert;

/// One process waiting for one record.
struct Waiter {
    pid: LocalPid,
    env: OwnedEnv,
    tag: SavedTerm,
}

impl Waiter {
    /// Sends `{Tag, Result}`; `result` is `None` for `ok`. A dead receiver is not an error.
    fn send(mut self, result: Option<&Error>) {
        let tag = self.tag;
        let _ = self.env.send_and_clear(&self.pid, |env| {
            let outcome = match result {
                None => atoms::ok().encode(env),
                Some(e) => convert::error(env, e),
            };
            (tag.load(env), outcome).encode(env)
        });
    }
}

#[derive(Default)]
struct Queue {
    /// Waiters by the record they wait for.
    waiters: BTreeMap<u64, Vec<Waiter>>,
    shutdown: bool,
}

impl Queue {
    /// Removes the waiters at or below `lsn`.
    fn take_through(&mut self, lsn: u64) -> Vec<Waiter> {
        let above = match lsn.checked_add(1) {
            Some(next) => self.waiters.split_off(&next),
            None => BTreeMap::new(),
        };
        let through = std::mem::replace(&mut self.waiters, above);
        through.into_values().flatten().collect()
    }

    fn take_all(&mut self) -> Vec<Waiter> {
        std::mem::take(&mut self.waiters)
            .into_values()
            .flatten()
            .collect()
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// A handle's notifier: the queue and the thread serving it.
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    /// Starts the thread. It holds its own reference to the store, so a handle collected
    /// without `close` has its store closed (flushed, unlocked) on this thread, not on the
    /// scheduler that ran the garbage collection.
    pub(crate) fn start(store: Arc<Store>) -> std::io::Result<Notifier> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("session-ha-notify".into())
            .spawn(move || run(&store, &theirs))?;
        Ok(Notifier {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a waiter for `lsn`; returns false when the notifier has shut down (the caller
    /// reports `{error, closed}`).
    pub(crate) fn register(&self, lsn: u64, pid: LocalPid, tag: Term<'_>) -> bool {
        let env = OwnedEnv::new();
        let tag = env.save(tag);
        let mut q = self.shared.queue.lock();
        if q.shutdown {
            return false;
        }
        let first = q.waiters.is_empty();
        q.waiters
            .entry(lsn)
            .or_default()
            .push(Waiter { pid, env, tag });
        drop(q);
        if first {
            self.shared.wake.notify_one();
        }
        true
    }

    /// Asks the thread to answer every waiter and exit; does not wait for it.
    pub(crate) fn shut_down(&self) {
        self.shared.queue.lock().shutdown = true;
        self.shared.wake.notify_one();
    }

    /// Shuts down and waits until every waiter has been answered.
    pub(crate) fn stop(&self) {
        self.shut_down();
        if let Some(t) = self.thread.lock().take() {
            // The thread sends messages only; a panic there leaves nothing to clean up.
            let _ = t.join();
        }
    }
}

fn run(store: &Store, shared: &Shared) {
    loop {
        let min = {
            let mut q = shared.queue.lock();
            loop {
                if q.shutdown {
                    break None;
                }
                if let Some(&lsn) = q.waiters.keys().next() {
                    break Some(lsn);
                }
                shared.wake.wait(&mut q);
            }
        };
        let Some(min) = min else { break };
        let result = store.wait_durable(min);
        let durable = store.durable_lsn();
        let (ready, failed) = {
            let mut q = shared.queue.lock();
            let ready = q.take_through(durable);
            let failed = match &result {
                Ok(()) => Vec::new(),
                // `min` was never handed out (a caller's mistake): only its waiters fail.
                Err(Error::InvalidArgument(_)) => q.waiters.remove(&min).unwrap_or_default(),
                // The log failed or closed: nothing above `durable` will become durable.
                Err(_) => q.take_all(),
            };
            (ready, failed)
        };
        for w in ready {
            w.send(None);
        }
        if let Err(e) = &result {
            for w in failed {
                w.send(Some(e));
            }
        }
    }
    // Already closed after an explicit close. After a collected handle another thread may
    // be closing it (then this returns at once) or none could be started (then this is the
    // close). Either way, wait until the closing flush is done before the last answers, so a
    // waiter it made durable hears `ok`.
    let _ = store.close();
    let pending: Vec<u64> = shared.queue.lock().waiters.keys().rev().copied().collect();
    for lsn in pending {
        // An lsn never handed out fails at once without waiting: try the next lower one.
        if !matches!(store.wait_durable(lsn), Err(Error::InvalidArgument(_))) {
            break;
        }
    }
    let durable = store.durable_lsn();
    let (ready, rest) = {
        let mut q = shared.queue.lock();
        (q.take_through(durable), q.take_all())
    };
    for w in ready {
        w.send(None);
    }
    for w in rest {
        w.send(Some(&Error::Closed));
    }
}
